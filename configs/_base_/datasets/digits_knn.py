# Weighted-kNN evaluation on the embedded digits, K=200, sigma=0.07 as in
# NPID / InvP:
# * validation (the val loop of every digits pre-training config, and what
#   `save_best` and every recipe choice look at): the 500-image validation
#   split carved from the training digits is classified against the other
#   3,500 training digits (`train_noval`: a query never finds itself);
# * test (`tools/test.py`, the final tables): the 1,000 test digits against
#   all 4,000 training digits. Nothing is chosen on it.
_knn_test_pipeline = [dict(type='PackInputs')]
_knn_loader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))

val_dataloader = dict(
    dataset=dict(type='DigitsDataset', split='val',
                 pipeline=_knn_test_pipeline),
    **_knn_loader)
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(
    type='KNNValLoop',
    bank_dataloader=dict(
        dataset=dict(type='DigitsDataset', split='train_noval',
                     pipeline=_knn_test_pipeline),
        **_knn_loader),
    k=200,
    sigma=0.07)

test_dataloader = dict(
    dataset=dict(type='DigitsDataset', split='test',
                 pipeline=_knn_test_pipeline),
    **_knn_loader)
test_evaluator = val_evaluator
test_cfg = dict(
    type='KNNTestLoop',
    bank_dataloader=dict(
        dataset=dict(type='DigitsDataset', split='train',
                     pipeline=_knn_test_pipeline),
        **_knn_loader),
    k=200,
    sigma=0.07)
