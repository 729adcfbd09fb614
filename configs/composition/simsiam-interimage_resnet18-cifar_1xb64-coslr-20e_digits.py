# SimSiam (MMPretrain's) + InterCLR's inter-image branch on the embedded
# digits: the framework's digits recipe as it is (its baseline row), plus the
# branch at its digits settings (./_base_/digits_branches.py). See
# docs/composition.md.
_base_ = ['../bsim/simsiam_resnet18-cifar_1xb64-coslr-20e_digits.py',
          './_base_/digits_branches.py']

model = dict(
    _delete_=True,
    type='ComposedSSL',
    base=_base_.model,
    base_loss_weight=_base_.inter_image_base_weight,
    branches=[
        dict(_base_.inter_image_branch,
             memory=dict(_base_.inter_image_memory,
                         feat_dim=_base_.model.neck.out_channels))
    ])
custom_hooks = _base_.get('custom_hooks', []) + _base_.inter_image_hooks
