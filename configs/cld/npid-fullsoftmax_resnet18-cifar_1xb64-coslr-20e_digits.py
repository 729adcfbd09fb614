# The NPID baseline of the CLD digits benchmark: NPIDCLD without a group
# branch and with ONE view is exactly NPID with the full non-parametric
# softmax (lemniscate's LinearAverage, the authors' --nce-k 0 instance
# branch): CE(f . V^T / 0.1, idx), memory v <- normalize(0.5 v + 0.5 f).
# Same backbone, batch, schedule, augmentation and kNN protocol as
# cld-npid_resnet18-cifar_1xb64-coslr-20e_digits.py.
_base_ = ['./cld-npid_resnet18-cifar_1xb64-coslr-20e_digits.py']

train_pipeline = [
    dict(type='MultiView', num_views=1,
         transforms=[{{_base_.view_pipeline}}]),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    neck=dict(with_group=False),
    group_head=None)
