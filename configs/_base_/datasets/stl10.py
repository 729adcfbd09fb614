# STL-10 train+unlabeled for self-supervised pre-training: 105,000 images,
# 96x96. MMPretrain has no STL-10 type: export the 5,000 train and 100,000
# unlabeled images as PNG files under data/stl10/train+unlabeled/ (read as a
# `CustomDataset` without labels; see docs/getting_started.md).
# The images are read from files by `LoadImageFromFile` (mmcv: BGR order),
# hence:
#   * the data preprocessor converts to RGB before normalising with the RGB
#     statistics (to_rgb=True);
#   * RandomGrayscale weights in BGR order (0.114 B + 0.587 G + 0.2989 R).
# Default view as in the CIFAR-10 base, at 96 px.
dataset_type = 'CustomDataset'
data_root = 'data/stl10/'
crop_size = 96
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[0.4406 * 255, 0.4273 * 255, 0.3858 * 255],
    std=[0.2312 * 255, 0.2265 * 255, 0.2237 * 255],
    to_rgb=True)

load_pipeline = [dict(type='LoadImageFromFile')]
view_pipeline = [
    dict(type='RandomResizedCrop', scale=crop_size,
         crop_ratio_range=(0.2, 1.), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),  # BGR order
]
train_pipeline = [
    *load_pipeline,
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
test_pipeline = [*load_pipeline, dict(type='PackInputs')]  # native size

train_dataloader = dict(
    batch_size=512,
    num_workers=4,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train+unlabeled',
        with_label=False,
        pipeline=train_pipeline))
