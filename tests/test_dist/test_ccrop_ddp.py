"""ContrastiveCrop box refresh under DDP (2 processes, gloo, CPU): every rank
computes its sampler share, and all ranks end up with the same (N, 4) table
in data-set order, equal to the single-process result."""
import torch

from mmssl_testing import run_in_processes

N = 13  # odd: DefaultSampler pads one duplicate on 2 ranks


def _setup():
    from mmengine.registry import DefaultScope

    from mmssl_ext.ccrop import ContrastiveCropHook
    from mmssl_ext.registry import DATASETS, MODELS
    DefaultScope.get_instance(f'ccrop-ddp-{torch.randint(1 << 30, (1, ))}',
                              scope_name='mmssl_ext')
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='MoCo', queue_len=16, feat_dim=8, momentum=0.01,
             data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                    mean=[127.5] * 3, std=[127.5] * 3),
             backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                           base_channels=4),
             neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                       out_channels=8, with_avg_pool=True),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'),
                       temperature=0.2)))
    ds = DATASETS.build(
        dict(type='ContrastiveCropDataset',
             dataset=dict(type='SyntheticImageDataset', num_samples=N,
                          img_size=16, pipeline=[dict(type='PackInputs')])))
    hook = ContrastiveCropHook(progress=False, threshold=0.3)
    return model, ds, hook


def _rank_fn(rank, world_size):
    from mmengine import dist
    model, ds, hook = _setup()
    boxes = hook.compute_boxes(model, ds, batch_size=1)
    ds.store.update(boxes)
    # what this rank itself processed (DefaultSampler: rank::world_size)
    own = list(range(N))[rank::world_size]
    return dict(rank=dist.get_rank(), world=dist.get_world_size(),
                boxes=ds.store.boxes.clone(), own=own)


def test_boxes_gathered_in_dataset_order_and_identical():
    model, ds, hook = _setup()
    ref = hook.compute_boxes(model, ds, batch_size=1)
    assert ref.shape == (N, 4)
    assert len({tuple(b.tolist()) for b in ref}) > 1  # not all the same
    out = run_in_processes(_rank_fn, world_size=2)
    assert [o['rank'] for o in out] == [0, 1]
    assert all(o['world'] == 2 for o in out)
    assert out[0]['own'] != out[1]['own']
    assert torch.equal(out[0]['boxes'], out[1]['boxes'])
    assert torch.equal(out[0]['boxes'], ref)
