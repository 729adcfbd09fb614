# BSIM on top of MMPretrain's byol_resnet50_16xb256-coslr-200e_in1k (ImageNet-1k, ResNet-50,
# 200 epochs): same data, schedule and model, the algorithm switched to
# BSIMBYOL. BSIM knobs (configs/bsim/README.md; defaults not confirmed by the
# paper): mixup/cutmix chosen per batch, lambda ~ Beta(1, 1),
# reversed-batch partners, view a mixed, no symmetric term, beta = 1.
_base_ = 'mmpretrain::byol/byol_resnet50_16xb256-coslr-200e_in1k.py'  # noqa: E501

default_scope = 'mmssl_ext'
custom_imports = dict(imports=['mmssl_ext'], allow_failed_imports=False)

model = dict(
    _scope_='mmssl_ext',
    type='BSIMBYOL',
    mixture=dict(mix_mode='both', p_mixup=0.5, alpha=1.0,
                 pairing='reverse', mixed_view='a',
                 symmetric_mix=False, beta_weight=1.0))

# MMEngine tags every dict inherited from a package config (``mmpretrain::``)
# with ``_scope_``, and the dataloader builder passes collate_fn's keys on to
# the function (TypeError at the first batch); restate it without the tag.
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'))
