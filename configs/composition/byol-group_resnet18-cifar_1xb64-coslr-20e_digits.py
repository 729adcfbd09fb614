# BYOL (MMPretrain's) + CLD's group branch on the embedded digits: the
# framework's digits recipe as it is (its baseline row), plus the branch at
# its digits settings (./_base_/digits_branches.py). See docs/composition.md.
_base_ = ['../bsim/byol_resnet18-cifar_1xb64-coslr-20e_digits.py',
          './_base_/digits_branches.py']

model = dict(
    _delete_=True,
    type='ComposedSSL',
    base=_base_.model,
    branches=[
        dict(_base_.group_branch,
             neck=dict(_base_.group_branch.neck,
                       in_channels=_base_.backbone_out_channels))
    ])
