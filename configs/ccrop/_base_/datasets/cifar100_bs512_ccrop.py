# CIFAR-100 (50,000 train images, 32x32). Mean/std: the usual CIFAR-100 values (not read in the authors' file).
# ContrastiveCrop small-scale data recipe (authors' configs/small): crop
# (ContrastiveCrop in place of RandomResizedCrop, scale (0.2, 1)) -> HFlip 0.5
# -> ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8 -> Grayscale p=0.2; no blur.
# alpha=0.1 as released (their issue #20); the paper uses alpha=0.6.
# The box refresh runs the test pipeline below (native size, no augment).
dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[0.5071 * 255, 0.4865 * 255, 0.4409 * 255],
    std=[0.2673 * 255, 0.2564 * 255, 0.2762 * 255],
    to_rgb=False)

view_pipeline = [
    dict(type='ContrastiveCrop', scale=32, alpha=0.1,
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
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
# used by ContrastiveCropHook (images are in memory)
ccrop_test_pipeline = [dict(type='PackInputs')]

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
            split='train',
            pipeline=train_pipeline)))
