# Tiny MoCo v2 on synthetic images for smoke tests of tools/train.py,
# tools/dist_train.sh and the kNN loop (seconds on a CPU).
_base_ = ['../../../configs/_base_/default_runtime.py']

_pack = [dict(type='PackInputs')]
_view = [dict(type='RandomResizedCrop', scale=16, crop_ratio_range=(0.5, 1.0),
              backend='pillow')]
model = dict(
    type='MoCo',
    queue_len=16,
    feat_dim=8,
    momentum=0.01,
    data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3,
                           std=[127.5] * 3, to_rgb=False),
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                  base_channels=4, norm_cfg=dict(type='BN')),
    neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
              out_channels=8, with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
              temperature=0.2))
_data = dict(type='SyntheticImageDataset', num_samples=32, num_classes=6,
             img_size=16)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(_data, pipeline=[
        dict(type='MultiView', num_views=2, transforms=[_view]),
        dict(type='PackInputs')]))
_knn_loader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                   sampler=dict(type='DefaultSampler', shuffle=False),
                   collate_fn=dict(type='default_collate'))
val_dataloader = dict(dataset=dict(_data, seed=1, pipeline=_pack),
                      **_knn_loader)
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(type='KNNValLoop', k=20, sigma=0.07,
               bank_dataloader=dict(dataset=dict(_data, pipeline=_pack),
                                    **_knn_loader))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(val_cfg, type='KNNTestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                                    weight_decay=1e-4))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=2)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=1))
randomness = dict(seed=0)
