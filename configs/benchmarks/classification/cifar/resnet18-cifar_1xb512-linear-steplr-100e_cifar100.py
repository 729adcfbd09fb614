# CIFAR-100 linear probe, ContrastiveCrop protocol: see
# resnet18-cifar_1xb512-linear-steplr-100e_cifar10.py.
_base_ = './resnet18-cifar_1xb512-linear-steplr-100e_cifar10.py'

data_preprocessor = dict(
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418])
model = dict(head=dict(num_classes=100))
train_dataloader = dict(
    dataset=dict(type='CIFAR100', data_root='data/cifar100'))
val_dataloader = dict(
    dataset=dict(type='CIFAR100', data_root='data/cifar100'))
test_dataloader = val_dataloader
