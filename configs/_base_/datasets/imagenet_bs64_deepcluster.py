# ImageNet-1k with DeepCluster's augmentation, shared by DeepCluster and ODC
# (MMSelfSup 0.x `imagenet_deepcluster.py` / `imagenet_odc.py`, identical
# pipelines): RandomResizedCrop 224 -> flip -> rotation +-2 degrees ->
# ColorJitter(0.4, 0.4, 1.0, 0.5) -> grayscale p=0.2; one view.
# Kept here because MMPretrain 1.2 has no DeepCluster / ODC and no base with
# this pipeline. Images come from `LoadImageFromFile` (BGR): the data
# preprocessor converts to RGB, the grayscale weights are in BGR order.
# `extract_dataloader` is the clustering hooks' feature pass (Resize 256 ->
# CenterCrop 224, every training image once, in order).
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='NumpyToPIL', to_rgb=True),
    dict(type='torchvision/RandomRotation', degrees=2),
    dict(type='PILToNumpy', to_bgr=True),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=1.0,
         hue=0.5),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='PackInputs'),  # keeps sample_idx (pseudo-label / memory row)
]
extract_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    drop_last=True,
    # safe: pseudo-labels live in the model, not in the workers' data set
    persistent_workers=True,
    sampler=dict(type='ClusterSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
extract_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=extract_pipeline))
