# CIFAR-10 for self-supervised pre-training: 50,000 training images, 32x32.
# MMPretrain's `CIFAR10` decodes the pickled arrays into memory in RGB order
# (no file is read), hence:
#   * normalisation with RGB statistics and no channel swap (to_rgb=False);
#   * RandomGrayscale weights in RGB order (0.2989 R + 0.587 G + 0.114 B);
#   * ColorJitterRGB (MMPretrain's ColorJitter computes its gray with BGR
#     weights).
# MMPretrain's `cifar10_bs16.py` is a supervised recipe (classification
# preprocessor, RandomCrop pipeline, Accuracy evaluator), so it is not
# inherited; the statistics are the same.
#
# Default view: the small-data SimCLR / MoCo v2 augmentation without blur
# (RandomResizedCrop 0.2-1 -> flip -> ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8
# -> grayscale p=0.2), as in the ContrastiveCrop and Un-Mix CIFAR code.
# A method whose authors augment differently overrides `view_pipeline` and
# rebuilds `train_pipeline` / `train_dataloader.dataset.pipeline`; the batch
# size is overridden per method.
dataset_type = 'CIFAR10'
data_root = 'data/cifar10/'
crop_size = 32
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[125.307, 122.961, 113.8575],  # (0.4914, 0.4822, 0.4465) x 255
    std=[51.5865, 50.847, 51.255],  # (0.2023, 0.1994, 0.2010) x 255
    to_rgb=False)

load_pipeline = []  # the images are already in memory
view_pipeline = [
    dict(type='RandomResizedCrop', scale=crop_size,
         crop_ratio_range=(0.2, 1.), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitterRGB', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.2989, 0.587, 0.114)),  # RGB order
]
train_pipeline = [
    *load_pipeline,
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),  # keeps sample_idx (memory-bank index)
]
# native size, no augmentation: kNN monitors, clustering and box refresh
test_pipeline = [*load_pipeline, dict(type='PackInputs')]

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
        split='train',
        pipeline=train_pipeline))
