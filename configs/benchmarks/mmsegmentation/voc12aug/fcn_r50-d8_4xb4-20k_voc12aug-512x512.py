# Segmentation transfer, MMSelfSup benchmark protocol: FCN (dilated
# ResNet-50, output stride 8) on PASCAL VOC 2012 + SBD augmented masks
# (VOC12aug), 512x512 crops, 20k iterations with batch 16 (4 GPUs x 4),
# SGD lr 0.01, poly decay, SyncBN, nothing frozen.
#
# Needs MMSegmentation (1.2.2 works with this stack: mmcv 2.1, mmengine 0.10;
# `pip install mmsegmentation ftfy regex prettytable` - mmseg 1.2.2 imports
# ftfy / regex (CLIP tokenizer) and prettytable unconditionally but does not
# declare them). Not installed by `make setup`.
#
# MMSegmentation's own FCN uses a ResNet-V1c (deep stem, its own ImageNet
# weights); the transfer benchmark uses the plain pytorch-style ResNet-50
# that self-supervised checkpoints hold, initialised from the backbone-only
# file of tools/model_converters/extract_backbone_weights.py:
#   bash tools/dist_train.sh \
#       configs/benchmarks/mmsegmentation/voc12aug/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py 4 \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
# Runs in MMSegmentation's scope (default_scope='mmseg', inherited).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'

pretrained = 'work_dirs/pretrain_backbone.pth'  # set with --cfg-options
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix=None)),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))

custom_imports = dict(imports=['mmssl_ext'], allow_failed_imports=False)
