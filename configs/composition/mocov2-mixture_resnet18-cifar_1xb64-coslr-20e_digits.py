# MoCo v2 + BSIM's mixture term on the embedded digits: the framework's
# digits recipe on the package's ring-buffer MoCo (RingMoCo, the MoCo that
# BSIMMoCo, InterCLR and CLD build on, so this cell is the bsim-mocov2 run),
# plus the branch at its digits settings (./_base_/digits_branches.py). See
# docs/composition.md.
_base_ = ['../mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py',
          './_base_/digits_branches.py']

model = dict(
    _delete_=True,
    type='ComposedSSL',
    base=dict(_base_.model, type='RingMoCo'),
    branches=[_base_.mixture_branch])
