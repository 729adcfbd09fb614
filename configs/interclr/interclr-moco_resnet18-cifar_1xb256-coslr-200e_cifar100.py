# InterCLR (MoCo v2 base), CIFAR ResNet-18 stem, CIFAR-100, 1 GPU x 256,
# 200 epochs. OUR SETTINGS, NOT THE AUTHORS' (no published CIFAR recipe):
# the CIFAR-10 recipe of this folder with the CIFAR-100 data set of
# configs/_base_/datasets/cifar100.py (root, statistics); K = 400 clusters
# (N/K ~ 128, also try 1000), rest unchanged.
_base_ = ['interclr-moco_resnet18-cifar_1xb256-coslr-200e_cifar10.py']

dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    to_rgb=False)
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
extract_dataloader = dict(
    _base_.extract_dataloader,
    dataset=dict(_base_.extract_dataloader.dataset, type=dataset_type,
                 data_root=data_root))
model = dict(
    data_preprocessor=data_preprocessor,
    memory=dict(length=50000, num_clusters=400))
custom_hooks = [
    dict(_base_.custom_hooks[0], extract_dataloader=extract_dataloader),
    _base_.custom_hooks[1],
]
