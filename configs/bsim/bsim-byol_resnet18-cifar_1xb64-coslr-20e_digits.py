# BSIM-byol on the embedded digits; the baseline row is the recipe it
# inherits (same backbone, batch, schedule, augmentation, kNN evaluation).
_base_ = ['./byol_resnet18-cifar_1xb64-coslr-20e_digits.py']

model = dict(
    type='BSIMBYOL',
    # BSIM's mixture term: the defaults (configs/bsim/README.md)
    mixture=dict(mix_mode='both', p_mixup=0.5, alpha=1.0,
                 pairing='reverse', mixed_view='a',
                 symmetric_mix=False, beta_weight=1.0))
