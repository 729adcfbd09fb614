# The stack: MoCo v2 + InterCLR's inter-image branch + CLD's group branch +
# ContrastiveCrop on the embedded digits: the ContrastiveCrop-MoCo v2 digits
# recipe as it is (its crop, data set wrapper and box hook), plus both
# branches at their digits settings (./_base_/digits_branches.py). Baseline:
# the MoCo v2 recipe. See docs/composition.md.
_base_ = ['../ccrop/ccrop-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py',
          './_base_/digits_branches.py']

model = dict(
    _delete_=True,
    type='ComposedSSL',
    base=_base_.model,
    base_loss_weight=_base_.inter_image_base_weight,
    branches=[
        dict(_base_.inter_image_branch,
             memory=dict(_base_.inter_image_memory,
                         feat_dim=_base_.model.neck.out_channels)),
        dict(_base_.group_branch,
             neck=dict(_base_.group_branch.neck,
                       in_channels=_base_.backbone_out_channels)),
    ])
custom_hooks = _base_.get('custom_hooks', []) + _base_.inter_image_hooks
