# MoCo v2 (MMPretrain's MoCo) + BSIM's mixture term on the embedded digits:
# the framework's digits recipe as it is (its baseline row), plus the branch
# at its digits settings (./_base_/digits_branches.py). See
# docs/composition.md.
_base_ = ['../mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py',
          './_base_/digits_branches.py']

model = dict(
    _delete_=True,
    type='ComposedSSL',
    base=_base_.model,
    branches=[_base_.mixture_branch])
