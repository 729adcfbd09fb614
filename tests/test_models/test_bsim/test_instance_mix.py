"""InstanceMixer: mixup / cutmix values, exact cutmix lambda, partners,
mirror (reversed-order) mixtures, device and dtype. Expected values are
written out by hand."""
import math

import pytest
import torch

from mmssl_ext.models.bsim.instance_mix import (InstanceMixer, MixParams,
                                                 box_lambda, cutmix,
                                                 cutmix_box, mixup,
                                                 partner_index, sample_beta)


def _batch(values, c=1, h=2, w=2):
    """One constant image per value: (B, c, h, w)."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(
        -1, c, h, w).contiguous()


def test_mixup_pixel_values_by_hand():
    x = torch.tensor([[[[1., 2.]]], [[[10., 20.]]], [[[100., 200.]]]])
    params = MixParams(lam=0.25, mode='mixup', perm=torch.tensor([2, 1, 0]))
    out = InstanceMixer.apply(x, params)
    # row 0: 0.25 * [1, 2] + 0.75 * [100, 200]
    assert out[0].flatten().tolist() == [75.25, 150.5]
    # odd batch, reverse pairing: the middle sample is its own partner
    assert out[1].flatten().tolist() == [10., 20.]
    # row 2: 0.25 * [100, 200] + 0.75 * [1, 2]
    assert out[2].flatten().tolist() == [25.75, 51.5]
    assert mixup(torch.tensor([4.]), torch.tensor([8.]), 0.5).item() == 6.


def test_cutmix_box_by_hand():
    # lam 0.75 -> side ratio sqrt(0.25) = 0.5 -> 4x4 box, top-left (2, 2)
    assert cutmix_box(8, 8, 0.75, cy=4, cx=4) == (2, 6, 2, 6)
    assert box_lambda((2, 6, 2, 6), 8, 8) == 1 - 16 / 64
    # clipped at the border: rows -2..2 -> 0..2, cols 5..9 -> 5..8
    box = cutmix_box(8, 8, 0.75, cy=0, cx=7)
    assert box == (0, 2, 5, 8)
    assert box_lambda(box, 8, 8) == 1 - 6 / 64
    # non-square: 6x10, lam 0.64 -> ratio 0.6 -> 3 x 6 box
    assert cutmix_box(6, 10, 0.64, cy=3, cx=5) == (2, 5, 2, 8)
    # lam = 1: empty box
    y1, y2, x1, x2 = cutmix_box(8, 8, 1.0, cy=3, cx=3)
    assert (y2 - y1) * (x2 - x1) == 0


def test_cutmix_pastes_partner_inside_box():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    out = cutmix(x[0:1], x[1:2], (1, 3, 0, 2))
    expected = x[0].clone()
    expected[:, 1:3, 0:2] = x[1][:, 1:3, 0:2]
    assert torch.equal(out[0], expected)
    assert torch.equal(x[0], torch.arange(16.).view(1, 4, 4))  # not in place


@pytest.mark.parametrize('seed', range(8))
def test_cutmix_lambda_is_exact_pixel_ratio(seed):
    h, w = 7, 9
    x = torch.cat([torch.zeros(1, 3, h, w), torch.ones(1, 3, h, w)])
    mixer = InstanceMixer(mix_mode='cutmix', alpha=1.0)
    out, p = mixer(x, generator=torch.Generator().manual_seed(seed))
    assert p.mode == 'cutmix'
    pasted = int(out[0, 0].sum())  # pixels of image 0 taken from image 1
    assert p.lam == 1 - pasted / (h * w)
    y1, y2, x1, x2 = p.box
    assert pasted == (y2 - y1) * (x2 - x1)
    assert torch.all(out[0, :, y1:y2, x1:x2] == 1)
    # image 1's partner is image 0: the same box, zeros pasted
    assert int(out[1, 0].sum()) == h * w - pasted


def test_partner_permutations():
    assert partner_index(4, 'reverse').tolist() == [3, 2, 1, 0]
    assert partner_index(5, 'reverse').tolist() == [4, 3, 2, 1, 0]
    g = torch.Generator().manual_seed(0)
    perm = partner_index(16, 'random', generator=g)
    assert sorted(perm.tolist()) == list(range(16))
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(perm, partner_index(16, 'random', generator=g2))


def test_random_pairing_mix_and_mirror_by_hand():
    x = _batch([1., 2., 3.])
    params = MixParams(
        lam=0.5, mode='mixup', perm=torch.tensor([1, 2, 0]), pairing='random')
    out = InstanceMixer.apply(x, params)
    assert out[:, 0, 0, 0].tolist() == [1.5, 2.5, 2.0]
    params = MixParams(
        lam=0.25, mode='mixup', perm=torch.tensor([1, 2, 0]),
        pairing='random')
    mirror = InstanceMixer.apply(x, params, mirror=True)
    # base x[j(i)] with 0.25, partner x[i] with 0.75
    assert mirror[:, 0, 0, 0].tolist() == [
        0.25 * 2 + 0.75 * 1, 0.25 * 3 + 0.75 * 2, 0.25 * 1 + 0.75 * 3
    ]


@pytest.mark.parametrize('mode', ['mixup', 'cutmix'])
def test_mirror_is_flipped_mixture_under_reverse_pairing(mode):
    x = torch.randn(4, 3, 8, 8)
    params = MixParams(
        lam=0.7 if mode == 'mixup' else box_lambda((1, 5, 2, 6), 8, 8),
        mode=mode,
        perm=torch.tensor([3, 2, 1, 0]),
        box=(1, 5, 2, 6) if mode == 'cutmix' else None)
    assert torch.equal(
        InstanceMixer.apply(x, params, mirror=True),
        InstanceMixer.apply(x, params).flip(0))


def test_both_mode_is_a_per_batch_coin():
    x = torch.randn(4, 1, 8, 8)
    g = torch.Generator().manual_seed(1)
    modes = [InstanceMixer('both', p_mixup=0.5).sample(4, (8, 8),
                                                       generator=g).mode
             for _ in range(200)]
    assert 60 < modes.count('mixup') < 140 and 'cutmix' in modes
    for p, want in ((1.0, 'mixup'), (0.0, 'cutmix')):
        mixer = InstanceMixer('both', p_mixup=p)
        assert {mixer(x)[1].mode for _ in range(20)} == {want}


def test_both_views_share_parameters():
    """The algorithms mix view a and view b with one draw (one lambda)."""
    a, b = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    p = InstanceMixer('mixup').sample(4, (8, 8))
    for v in (a, b):
        torch.testing.assert_close(
            InstanceMixer.apply(v, p), p.lam * v + (1 - p.lam) * v.flip(0))


def test_beta_statistics():
    g = torch.Generator().manual_seed(0)
    for alpha in (1.0, 0.2, 4.0):
        s = torch.tensor([sample_beta(alpha, g) for _ in range(4000)])
        assert 0 <= s.min() and s.max() <= 1
        # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
        assert abs(s.mean() - 0.5) < 0.03
        assert abs(s.var() - 1 / (4 * (2 * alpha + 1))) < 0.015


@pytest.mark.parametrize('dtype', [torch.float16, torch.float64])
@pytest.mark.parametrize('mode', ['mixup', 'cutmix'])
@pytest.mark.parametrize('pairing', ['reverse', 'random'])
def test_keeps_device_and_dtype(dtype, mode, pairing):
    x = torch.rand(4, 3, 8, 8).to(dtype)
    out, p = InstanceMixer(mode, pairing=pairing)(x)
    assert out.dtype == dtype and out.device == x.device
    assert p.perm.device == x.device and isinstance(p.lam, float)


@pytest.mark.parametrize('mode', ['mixup', 'cutmix', 'both'])
@pytest.mark.parametrize('pairing', ['reverse', 'random'])
def test_no_device_readback(mode, pairing):
    """On the 'meta' device any read of a value to the host raises: the
    mixer runs end to end there, so it never copies device -> host."""
    x = torch.empty(6, 3, 8, 8, device='meta')
    mixer = InstanceMixer(mode, pairing=pairing)
    out, p = mixer(x)
    assert out.device.type == 'meta' and p.perm.device.type == 'meta'
    assert out.shape == x.shape
    InstanceMixer.apply(x, p, mirror=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')
def test_stays_on_gpu_without_sync():  # pragma: no cover - CPU CI
    x = torch.rand(4, 3, 8, 8, device='cuda')
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')  # any device sync raises
    try:
        for mode in ('mixup', 'cutmix'):
            for pairing in ('reverse', 'random'):
                out, p = InstanceMixer(mode, pairing=pairing)(x)
                assert out.is_cuda and p.perm.is_cuda
                InstanceMixer.apply(x, p, mirror=True)
    finally:
        torch.cuda.set_sync_debug_mode('default')


def test_generator_reproducible():
    p1, p2 = (InstanceMixer('both').sample(
        8, (16, 16), generator=torch.Generator().manual_seed(3))
              for _ in range(2))
    assert (p1.lam, p1.mode, p1.box) == (p2.lam, p2.mode, p2.box)


def test_bad_inputs_name_the_key():
    with pytest.raises(ValueError, match='alpha'):
        InstanceMixer(alpha=0)
    with pytest.raises(ValueError, match='alpha'):
        InstanceMixer(alpha=-1.0)
    with pytest.raises(ValueError, match='mix_mode'):
        InstanceMixer(mix_mode='manifoldmix')
    with pytest.raises(ValueError, match='p_mixup'):
        InstanceMixer(p_mixup=1.5)
    with pytest.raises(ValueError, match='pairing'):
        InstanceMixer(pairing='flip')
    assert math.isfinite(sample_beta(1e-3))
