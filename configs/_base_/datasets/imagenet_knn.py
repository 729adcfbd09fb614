# Weighted-kNN monitor on ImageNet-1k that any pre-training config can add
# as a second data base:
#
#   _base_ = [..., '../_base_/datasets/imagenet_knn.py']
#   train_cfg = dict(val_interval=10)   # epochs between two kNN runs
#
# The training images (Resize 256 -> CenterCrop 224, no augmentation) form
# the labelled bank, the 50,000 validation images are classified by a
# weighted vote of their k nearest bank features (backbone, pooled):
# K=200, sigma=0.07 (NPID / InvP). One run extracts 1.33M images, about a
# sixth of a two-view training epoch, so monitor every few epochs;
# `tools/test.py CONFIG CKPT` runs it once on a checkpoint.
# MMPretrain has no kNN or feature-extraction base; the test pipeline is
# that of its `imagenet_bs32_pil_resize.py` (which also defines a training
# set, so it cannot be a second base).
# A config that defines its own val loop cannot add this file as a second
# base (duplicate keys); InvP inherits it and swaps in its memory-bank loop.
_knn_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
_knn_loader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))

val_dataloader = dict(
    dataset=dict(type='ImageNet', data_root='data/imagenet/', split='val',
                 pipeline=_knn_test_pipeline),
    **_knn_loader)
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(
    type='KNNValLoop',
    bank_dataloader=dict(
        dataset=dict(type='ImageNet', data_root='data/imagenet/',
                     split='train', pipeline=_knn_test_pipeline),
        **_knn_loader),
    k=200,
    sigma=0.07)

test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(val_cfg, type='KNNTestLoop')
