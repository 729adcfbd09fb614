# Weighted-kNN evaluation on the embedded digits: the 4,000 training images
# (test pipeline) form the bank, the 1,000 test images are classified.
# K=200, sigma=0.07 as in NPID / InvP. Used as the validation loop of every
# digits pre-training config and by tools/test.py.
_knn_test_pipeline = [dict(type='PackInputs')]
_knn_loader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))

val_dataloader = dict(
    dataset=dict(type='DigitsDataset', split='test',
                 pipeline=_knn_test_pipeline),
    **_knn_loader)
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(
    type='KNNValLoop',
    bank_dataloader=dict(
        dataset=dict(type='DigitsDataset', split='train',
                     pipeline=_knn_test_pipeline),
        **_knn_loader),
    k=200,
    sigma=0.07)

test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(val_cfg, type='KNNTestLoop')
