"""The fake-CUDA checker itself (mmssl_ext/testing/fake_cuda.py): what it
flags, where it says it happened, and what it lets through."""
import inspect

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmssl_ext.testing.fake_cuda import ALLOWED_SYNCS, FakeCuda


def _line(fn, text):
    """Line number of the first line of ``fn``'s source containing
    ``text``."""
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, s in enumerate(lines) if text in s)


def _events(fc, kind):
    return [e for e in fc.events if e.kind == kind]


def test_device_answers_and_tagging():
    fc = FakeCuda()
    lin = fc.to_cuda(nn.Linear(3, 2))
    with fc:
        assert lin.weight.device == torch.device('cuda', 0)
        assert lin.weight.is_cuda
        x = torch.randn(4, 3).to(lin.weight.device, non_blocking=True)
        y = lin(x)
        z = torch.zeros(4, 2, device=y.device)  # the right way
        out = (y + z).sum()
        out.backward()
        assert fc.is_cuda(y) and fc.is_cuda(z) and fc.is_cuda(
            lin.weight.grad)
        assert not fc.is_cuda(y.detach().cpu())
    assert fc.events == [] or all(e.kind == 'd2h' for e in fc.events)


def _mix(y):
    return y * torch.ones(y.size(1))  # no device=: a host tensor


def test_mismatch_reports_file_and_line():
    fc = FakeCuda()
    lin = fc.to_cuda(nn.Linear(3, 2))
    with fc:
        _mix(lin(torch.randn(4, 3, device='cuda')))
    [e] = _events(fc, 'mismatch')
    assert e.file.endswith('test_fake_cuda.py')
    assert e.line == _line(_mix, 'torch.ones') and e.func == '_mix'
    assert 'mul' in e.what


def test_syncs_and_copies_are_flagged():
    fc = FakeCuda()
    lin = fc.to_cuda(nn.Linear(3, 2))
    with fc:
        y = lin(torch.randn(4, 3, device='cuda'))
        y.sum().item()
        bool(y.max() > 0)
        y[y > 0]
        torch.unique(y)
        y.tolist()
        y.new_tensor([1., 2.])
        torch.randn(2, 3).to('cuda')  # blocking host-to-device
        y[torch.tensor([0, 1])]  # host index
    kinds = [(e.kind, e.what.split(' ')[0]) for e in fc.events]
    assert kinds == [('sync', 'item()/bool()/int()/float()'),
                     ('sync', 'item()/bool()/int()/float()'),
                     ('sync', 'boolean-mask'), ('sync', 'unique'),
                     ('d2h', 'Tensor.tolist()'), ('h2d', 'Tensor.new_tensor'),
                     ('h2d', 'Tensor.to(cuda)'), ('h2d', 'host')]
    assert all(e.owner == 'framework' for e in fc.events)  # not mmssl_ext


def test_composite_internals_and_cpu_only_checks_pass():
    """Tensors ATen makes inside an op take their users' device; CPU-only
    argument checks (one_hot with num_classes) are not syncs."""
    fc = FakeCuda()
    lin = fc.to_cuda(nn.Linear(3, 4))
    with fc:
        y = lin(torch.randn(8, 3, device='cuda'))
        t = torch.arange(8, device=y.device) % 4
        F.cross_entropy(y, t).backward()
        F.one_hot(t, 4)
        torch.cdist(y, y)
        g = torch.Generator(device=y.device)
        g.manual_seed(0)
        torch.randint(0, 4, (3, ), generator=g, device=y.device)
        torch.multinomial(y.softmax(1), 2, generator=g)
    assert fc.events == []


def test_generator_device_mismatch():
    fc = FakeCuda()
    lin = fc.to_cuda(nn.Linear(3, 4))
    with fc:
        g = torch.Generator()  # a CPU generator for a CUDA draw
        torch.randn(3, generator=g, device=lin.weight.device)
    [e] = fc.events
    assert e.kind == 'mismatch' and 'generator' in e.what
    assert torch.Generator is torch._C.Generator or isinstance(
        torch.Generator(), torch._C.Generator)


def test_allow_list_entries_have_reasons_and_exist():
    import os.path as osp

    import mmssl_ext
    root = osp.dirname(mmssl_ext.__file__)
    for (path, func), reason in ALLOWED_SYNCS.items():
        assert len(reason) > 20, (path, func)
        with open(osp.join(root, path)) as f:
            assert f'def {func}(' in f.read(), (path, func)


@pytest.mark.parametrize('move', [
    lambda t: t.cuda(non_blocking=True),
    lambda t: t.to('cuda', non_blocking=True),
    lambda t: t.to(device='cuda:0', dtype=torch.float64, non_blocking=True),
])
def test_non_blocking_moves_are_not_syncs(move):
    fc = FakeCuda()
    with fc:
        host = torch.ones(2)
        t = move(host)
        assert fc.is_cuda(t) and t.device.type == 'cuda'
        assert not fc.is_cuda(host)
        assert t.to(t.device) is t  # same device: no copy, as on CUDA
    assert fc.events == []
