"""The distributed cost model of benchmarks/bench_comm.py: shape mapping to
ImageNet scale and bytes received per rank, checked by hand."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@pytest.fixture(scope='module')
def comm():
    spec = importlib.util.spec_from_file_location(
        'bench_comm', osp.join(ROOT, 'benchmarks', 'bench_comm.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shape_mapping(comm):
    # key images: batch kept (32 per rank on both), sides 32 -> 224
    assert comm.imagenet_numel([32, 3, 32, 32]) == 32 * 3 * 224 * 224
    # centroids: clusters 40 -> 10,000, feature dim 64 -> 128
    assert comm.imagenet_numel([40, 64]) == 10000 * 128
    # box all-reduce: bank length 4,000 -> 1,281,167
    assert comm.imagenet_numel([4000, 4]) == 1281167 * 4
    # a 2-D tensor with a 32 is a batch dim, not an image side
    assert comm.imagenet_numel([32, 64]) == 32 * 128


def test_bytes_received_per_rank(comm):
    assert comm.received_bytes('all_gather', 100, 8) == 700
    assert comm.received_bytes('broadcast', 100, 8) == 100
    assert comm.received_bytes('all_reduce', 100, 8) == 175  # 2 * 7/8
    with pytest.raises(KeyError):
        comm.received_bytes('send', 100, 8)


def test_summarise_two_iterations(comm):
    calls = [
        dict(op='all_gather', shape=[32, 64], dtype='torch.float32',
             itemsize=4),
        dict(op='broadcast', shape=[40, 64], dtype='torch.float32',
             itemsize=4),
    ]
    digits, imnet, by_op = comm.summarise(calls, scale=0.5)
    # digits, 2 ranks: gather 1 x 32*64*4, broadcast 40*64*4; per iteration
    assert digits == pytest.approx(0.5 * (32 * 64 * 4 + 40 * 64 * 4))
    want = 0.5 * (7 * 32 * 128 * 4 + 10000 * 128 * 4)
    assert imnet == pytest.approx(want)
    assert sum(by_op.values()) == pytest.approx(want)
    # the reference: the whole bank broadcast, 656 MB
    assert round(comm.REFERENCE_MB) == 656
