# BSIM-MoCo on the embedded digits. Baseline row: the MoCo v2 digits recipe
# it inherits (configs/mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py):
# same backbone, batch, schedule, augmentation and kNN evaluation.
_base_ = ['../mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py']

model = dict(
    type='BSIMMoCo',
    # BSIM's mixture term: the defaults (configs/bsim/README.md)
    mixture=dict(mix_mode='both', p_mixup=0.5, alpha=1.0,
                 pairing='reverse', mixed_view='a',
                 symmetric_mix=False, beta_weight=1.0))
