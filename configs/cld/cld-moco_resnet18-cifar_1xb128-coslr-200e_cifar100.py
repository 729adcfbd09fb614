# MoCo + CLD on CIFAR-100 (scripts/cifar/train_cifar100_moco_cld.sh): batch
# 128, lr 0.03, wd 7e-4, queue 4,096, K=100 groups, lambda 0.25, tau_G 0.2,
# tau_I 0.07, NormedLinear; the default CIFAR augmentation (no --aug-plus,
# no --erasing), three views.
_base_ = ['./cld-moco_resnet18-cifar_1xb256-coslr-200e_cifar10.py']

dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'

view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='ColorJitterRGB', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.4),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.2989, 0.587, 0.114)),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='MultiView', num_views=3, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=128,
    dataset=dict(type=dataset_type, data_root=data_root,
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_cfg = dict(
    bank_dataloader=dict(
        dataset=dict(type=dataset_type, data_root=data_root)))
test_dataloader = val_dataloader
test_cfg = val_cfg

model = dict(
    queue_len=4096,
    group_head=dict(num_groups=100, loss_weight=0.25))
optim_wrapper = dict(optimizer=dict(lr=0.03, weight_decay=7e-4))
auto_scale_lr = dict(base_batch_size=128)
