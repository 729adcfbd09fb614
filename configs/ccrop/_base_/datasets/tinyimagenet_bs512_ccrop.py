# Tiny-ImageNet-200 train split (100,000 images, 64x64), read as a CustomDataset from data/tiny-imagenet-200/train/ (labels unused).
# ContrastiveCrop small-scale data recipe (authors' configs/small): crop
# (ContrastiveCrop in place of RandomResizedCrop, scale (0.2, 1)) -> HFlip 0.5
# -> ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8 -> Grayscale p=0.2; no blur.
# alpha=0.1 as released (their issue #20); the paper uses alpha=0.6.
# The box refresh runs the test pipeline below (native size, no augment).
dataset_type = 'CustomDataset'
data_root = 'data/tiny-imagenet-200/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[0.4802 * 255, 0.4481 * 255, 0.3975 * 255],
    std=[0.2302 * 255, 0.2265 * 255, 0.2262 * 255],
    to_rgb=False)

view_pipeline = [
    dict(type='ContrastiveCrop', scale=64, alpha=0.1,
         crop_ratio_range=(0.2, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
# used by ContrastiveCropHook (native size)
ccrop_test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=512,
    num_workers=4,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ContrastiveCropDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix='train',
            with_label=False,
            pipeline=train_pipeline)))
