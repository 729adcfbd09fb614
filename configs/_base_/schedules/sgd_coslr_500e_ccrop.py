# Authors' small-data schedule: SGD lr 0.5 (batch 512), momentum 0.9,
# wd 1e-4, per-epoch cosine from 0.5 down to lr * decay_rate = 0.05
# (their `adjust_learning_rate`, type 'Cosine', decay_rate 0.1), no warm-up.
lr = 0.5
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=500, eta_min_ratio=0.1,
         by_epoch=True, begin=0, end=500)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=500)
auto_scale_lr = dict(base_batch_size=512)
