# CIFAR-100 for self-supervised pre-training: 50,000 training images, 32x32.
# The CIFAR-10 base (RGB arrays in memory, same default view) with
# CIFAR-100's data set, root and statistics (those of MMPretrain's
# `cifar100_bs16.py`). InvP and CLD normalise CIFAR-100 with the CIFAR-10
# statistics, as their authors' loaders do: their CIFAR-100 recipes inherit
# their CIFAR-10 recipes instead of this file.
_base_ = ['./cifar10.py']

dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
data_preprocessor = dict(
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418])
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
