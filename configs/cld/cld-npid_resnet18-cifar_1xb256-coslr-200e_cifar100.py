# NPID + CLD on CIFAR-100 (scripts/cifar/train_cifar100_npid_cld.sh): as the
# CIFAR-10 recipe with K=200 groups (CIFAR-10 normalisation statistics, as
# the authors' loader).
_base_ = ['./cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar10.py']

dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_cfg = dict(
    bank_dataloader=dict(
        dataset=dict(type=dataset_type, data_root=data_root)))
test_dataloader = val_dataloader
test_cfg = val_cfg

model = dict(group_head=dict(num_groups=200))
