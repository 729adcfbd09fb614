# Detection transfer, MMSelfSup benchmark protocol: Faster R-CNN R50-C4 on
# PASCAL VOC07+12 trainval, evaluated on VOC07 test (11-point mAP), 24k
# iterations with batch 16 (8 GPUs x 2), SGD lr 0.02, lr x0.1 at 18k and 22k,
# multi-scale training (short side 480-800), SyncBN everywhere, nothing
# frozen, pytorch-style ResNet with ImageNet mean/std (RGB), and an extra
# norm after the C5 shared head (MMPretrain's ResLayerExtraNorm).
#
# The backbone AND the C5 shared head (layer4) are initialised from the
# backbone-only checkpoint of tools/model_converters/extract_backbone_weights.py
# (keys conv1.*, layer1-4.*; path or URL):
#   bash tools/benchmarks/mmdetection/dist_train_c4.sh \
#       configs/benchmarks/mmdetection/voc0712/faster-rcnn_r50-c4_ms-24k_voc0712.py \
#       PRETRAIN.pth 8
# or tools/dist_train.sh with
#   --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth \
#                 model.roi_head.shared_head.init_cfg.checkpoint=BACKBONE.pth
# Runs in MMDetection's scope (default_scope='mmdet', inherited).
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py'

pretrained = 'work_dirs/pretrain_backbone.pth'  # set with --cfg-options
norm_cfg = dict(type='SyncBN', requires_grad=True)

data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        style='pytorch',
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix=None)),
    roi_head=dict(
        shared_head=dict(
            type='ResLayerExtraNorm',
            style='pytorch',
            norm_cfg=norm_cfg,
            norm_eval=False,
            init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                          prefix=None)),
        bbox_head=dict(num_classes=20)))

_multiscale = [(1333, s) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=_multiscale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(
            type='VOCDataset',
            data_root='data/VOCdevkit/',
            ann_file='VOC2007/ImageSets/Main/trainval.txt',
            data_prefix=dict(sub_data_root='VOC2007/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline),
        dict(
            type='VOCDataset',
            data_root='data/VOCdevkit/',
            ann_file='VOC2012/ImageSets/Main/trainval.txt',
            data_prefix=dict(sub_data_root='VOC2012/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline),
    ]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='VOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator

max_iters = 24000
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=2000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[18000, 22000], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2000))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=16)

# ResLayerExtraNorm lives in MMPretrain and registers into MMDetection's
# registry; mmssl_ext makes mmengine checkpoints loadable under torch>=2.6.
custom_imports = dict(
    imports=['mmpretrain.models.utils.res_layer_extra_norm', 'mmssl_ext'],
    allow_failed_imports=False)
