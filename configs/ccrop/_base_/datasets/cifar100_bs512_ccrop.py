# CIFAR-100 (50,000 train images, 32x32): the CIFAR-10 ContrastiveCrop data
# recipe with CIFAR-100's data set, root and normalisation.
# Mean/std: the usual CIFAR-100 values (not read in the authors' file).
_base_ = ['./cifar10_bs512_ccrop.py']

dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
data_preprocessor = dict(
    mean=[0.5071 * 255, 0.4865 * 255, 0.4409 * 255],
    std=[0.2673 * 255, 0.2564 * 255, 0.2762 * 255])
train_dataloader = dict(
    dataset=dict(dataset=dict(type=dataset_type, data_root=data_root)))
