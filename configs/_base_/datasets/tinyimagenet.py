# Tiny-ImageNet-200 for self-supervised pre-training: the 100,000 training
# images, 64x64, read as a `CustomDataset` from
# data/tiny-imagenet-200/train/ (class folders; labels unused).
# Image files as STL-10 (BGR after `LoadImageFromFile`: to_rgb=True, BGR
# grayscale weights): the STL-10 base with Tiny-ImageNet's root, split,
# statistics and crop size.
_base_ = ['./stl10.py']

data_root = 'data/tiny-imagenet-200/'
crop_size = 64
data_preprocessor = dict(
    mean=[0.4802 * 255, 0.4481 * 255, 0.3975 * 255],
    std=[0.2302 * 255, 0.2265 * 255, 0.2262 * 255])

view_pipeline = [
    dict(_base_.view_pipeline[0], scale=crop_size),
    *_base_.view_pipeline[1:],
]
train_pipeline = [
    *_base_.load_pipeline,
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
