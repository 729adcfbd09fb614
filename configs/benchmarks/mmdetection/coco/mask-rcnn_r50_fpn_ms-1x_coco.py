# Detection / instance-segmentation transfer, MMSelfSup benchmark protocol:
# Mask R-CNN R50-FPN on COCO 2017, 1x schedule (12 epochs, batch 16,
# SGD lr 0.02, x0.1 at epochs 8 and 11), multi-scale training (short side
# 640-800), SyncBN in backbone, FPN and heads (4conv1fc box head), nothing
# frozen, BN statistics updated (norm_eval=False).
#
# The backbone is initialised from the backbone-only checkpoint of
# tools/model_converters/extract_backbone_weights.py (path or URL):
#   bash tools/benchmarks/mmdetection/dist_train_fpn.sh \
#       configs/benchmarks/mmdetection/coco/mask-rcnn_r50_fpn_ms-1x_coco.py \
#       PRETRAIN.pth 8
# or tools/dist_train.sh with
#   --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
# Runs in MMDetection's scope (default_scope='mmdet', inherited).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

pretrained = 'work_dirs/pretrain_backbone.pth'  # set with --cfg-options
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix=None)),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, s) for s in range(640, 801, 32)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

custom_imports = dict(imports=['mmssl_ext'], allow_failed_imports=False)
