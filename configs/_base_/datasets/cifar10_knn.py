# Weighted-kNN monitor on CIFAR-10, added to a pre-training config as a
# second data base (`_base_ = [..., '../_base_/datasets/cifar10_knn.py']`):
# the 50,000 training images (no augmentation) form the labelled bank, the
# 10,000 test images are classified by a weighted vote of their k nearest
# bank features (backbone, pooled), `exp(sim / sigma)` per neighbour.
# K=200, sigma=0.07 as NPID / InvP; CLD uses sigma = its instance
# temperature. Set `train_cfg.val_interval` in the config (every epoch by
# default). `tools/test.py CONFIG CKPT` runs the same protocol once.
_knn_test_pipeline = [dict(type='PackInputs')]
_knn_loader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))

val_dataloader = dict(
    dataset=dict(type='CIFAR10', data_root='data/cifar10/', split='test',
                 pipeline=_knn_test_pipeline),
    **_knn_loader)
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(
    type='KNNValLoop',
    bank_dataloader=dict(
        dataset=dict(type='CIFAR10', data_root='data/cifar10/',
                     split='train', pipeline=_knn_test_pipeline),
        **_knn_loader),
    k=200,
    sigma=0.07)

test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(val_cfg, type='KNNTestLoop')
