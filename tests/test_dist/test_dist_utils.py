"""mmssl_ext.utils.dist and mmssl_testing.run_in_processes with 2 gloo
CPU processes (and world size 1)."""
import pytest
import torch

from mmssl_testing import run_in_processes
from mmssl_ext.utils.dist import (all_gather_cat, all_gather_with_grad,
                                  broadcast_from_rank0, get_sample_idx)


def _ranks(rank, world, offset):
    from mmengine import dist
    return dist.get_rank(), dist.get_world_size(), offset + rank


def test_run_in_processes_returns_each_rank():
    assert run_in_processes(_ranks, 2, args=(10, )) == [(0, 2, 10),
                                                        (1, 2, 11)]


def _boom(rank, world):
    if rank == 1:
        raise KeyError('rank-one-failure')
    return rank


def test_run_in_processes_reports_failures():
    with pytest.raises(RuntimeError, match='rank-one-failure'):
        run_in_processes(_boom, 2, timeout=60)


def _gather(rank, world):
    # unequal sizes: rank 0 has 2 rows, rank 1 has 3
    x = torch.arange(2 + rank * 3, 2 + rank * 3 + 2 + rank).float().view(
        -1, 1)
    return all_gather_cat(x)


def test_all_gather_cat_unequal_sizes():
    out = run_in_processes(_gather, 2)
    expected = torch.tensor([2., 3., 5., 6., 7.]).view(-1, 1)
    assert torch.equal(out[0], expected) and torch.equal(out[1], expected)


def _grad(rank, world):
    x = torch.arange(3. + rank, requires_grad=True)  # sizes 3 and 4
    y = all_gather_with_grad(x)
    w = torch.arange(y.numel()).float() * (rank + 1)
    (y * w).sum().backward()
    return y.detach(), x.grad


def test_all_gather_with_grad_sums_all_ranks_losses():
    (y0, g0), (y1, g1) = run_in_processes(_grad, 2)
    assert torch.equal(y0, y1)
    assert y0.tolist() == [0., 1., 2., 0., 1., 2., 3.]
    # d/dy of loss_0 + loss_1 = arange(7) * (1 + 2)
    assert g0.tolist() == [0., 3., 6.]
    assert g1.tolist() == [9., 12., 15., 18.]


def _bcast(rank, world):
    t = torch.tensor([[4, 5, 6]]) if rank == 0 else None
    a = broadcast_from_rank0(t)
    b = broadcast_from_rank0(torch.zeros(2) + rank)  # placeholder shape
    return a, b


def test_broadcast_from_rank0_shapes_from_rank0():
    (a0, b0), (a1, b1) = run_in_processes(_bcast, 2)
    assert torch.equal(a0, a1) and a1.tolist() == [[4, 5, 6]]
    assert torch.equal(b1, torch.zeros(2))


def test_world_size_one():
    x = torch.randn(3, 2, requires_grad=True)
    assert torch.equal(all_gather_cat(x), x.detach())
    assert not all_gather_cat(x).requires_grad
    assert all_gather_with_grad(x) is x
    assert broadcast_from_rank0(x) is x
    with pytest.raises(ValueError):
        broadcast_from_rank0(None)


def test_get_sample_idx():
    from mmengine.structures import BaseDataElement
    samples = [BaseDataElement(metainfo=dict(sample_idx=i)) for i in (4, 2)]
    idx = get_sample_idx(samples)
    assert idx.dtype == torch.long and idx.tolist() == [4, 2]
    with pytest.raises(ValueError, match='PackInputs'):
        get_sample_idx([BaseDataElement(metainfo=dict(img_shape=(2, 2)))])
    with pytest.raises(ValueError, match='PackInputs'):
        get_sample_idx([])
