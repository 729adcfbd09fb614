# InterCLR (MoCo v2 base), CIFAR ResNet-18 stem, CIFAR-100, 1 GPU x 256,
# 200 epochs. OUR SETTINGS, NOT THE AUTHORS' (no published CIFAR recipe):
# the CIFAR-10 recipe of this folder (spec section 2.6 proposal) with the
# CIFAR-100 data; K = 400 clusters (N/K ~ 128, also try 1000), rest unchanged.
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
    batch_size=512,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=[dict(type='PackInputs')]))
model = dict(
    data_preprocessor=data_preprocessor,
    memory=dict(length=50000, num_clusters=400))
custom_hooks = [
    dict(type='InterCLRHook',
         extract_dataloader=extract_dataloader,
         clustering=dict(num_iters=20, normalize=True, pca_dim=-1),
         centroids_update_interval=10,
         deal_with_small_clusters_interval=1,
         evaluate_interval=50,
         warmup_epochs=0,
         initial=True,
         interval=10)
]
