"""ContrastiveCrop: RRC equivalence while inactive, box-constrained centres
(checked against the formula by hand), Beta statistics, central fallback,
output size and bad input."""
import math

import numpy as np
import pytest

from mmssl_ext.ccrop import ContrastiveCrop
from mmssl_ext.registry import TRANSFORMS


def _img(h=40, w=50, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3),
                                               dtype=np.uint8)


def test_registered_and_buildable():
    t = TRANSFORMS.build(dict(type='ContrastiveCrop', scale=16, alpha=0.1))
    assert isinstance(t, ContrastiveCrop)
    assert t.alpha == 0.1 and t.crop_ratio_range == (0.2, 1.0)
    assert 'alpha=0.1' in repr(t)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_identical_to_random_resized_crop_when_inactive(backend):
    kw = dict(scale=16, crop_ratio_range=(0.2, 1.0), backend=backend)
    cc = TRANSFORMS.build(dict(type='ContrastiveCrop', alpha=0.1, **kw))
    rrc = TRANSFORMS.build(dict(type='RandomResizedCrop', **kw))
    img = _img()
    for seed in range(30):
        np.random.seed(seed)
        a = cc(dict(img=img.copy()))
        state_a = np.random.get_state()[1].copy()
        np.random.seed(seed)
        b = rrc(dict(img=img.copy()))
        # same pixels, same shape, same RNG consumption
        np.testing.assert_array_equal(a['img'], b['img'])
        assert a['img_shape'] == b['img_shape']
        np.testing.assert_array_equal(state_a, np.random.get_state()[1])


def test_crop_corner_formula_by_hand(monkeypatch):
    """H=W=32, area ratio 0.25 and aspect 1 -> a 16x16 crop; box
    (0.25, 0.5, 0.75, 1.0): ch0 = clip(8-8) = 0, ch1 = clip(24-8) = 16,
    cw0 = clip(16-8) = 8, cw1 = clip(32-8, 0, 16) = 16; u = 0.3 ->
    i = 0 + int(16*0.3) = 4; v = 0.9 -> j = 8 + int(8*0.9) = 15."""
    t = ContrastiveCrop(scale=8, alpha=0.5)
    draws = iter([0.25, 0.0])  # area ratio, log aspect
    betas = iter([0.3, 0.9])
    monkeypatch.setattr(np.random, 'uniform', lambda a, b: next(draws))
    monkeypatch.setattr(np.random, 'beta', lambda a, b: next(betas))
    assert t.box_crop_params((32, 32), (0.25, 0.5, 0.75, 1.0)) == (4, 15, 16,
                                                                   16)


def test_crop_range_clipped_both_ways():
    """Issue #16 fix: a box near the bottom-right with a big crop gives a
    degenerate range clipped into [0, H-h] from both sides."""
    t = ContrastiveCrop(scale=8, alpha=0.1, crop_ratio_range=(0.81, 0.81),
                        aspect_ratio_range=(1., 1.))
    # 100x100, crop 90x90: every top-left is in [0, 10]; box (0.95.., 1)
    # -> ch0 = clip(95-45, 0, 10) = 10 = ch1 -> i == 10 always
    for _ in range(50):
        i, j, h, w = t.box_crop_params((100, 100), (0.95, 0.0, 1.0, 0.02))
        assert (h, w) == (90, 90)
        assert i == 10
        assert j == 0  # cw0 = clip(0-45) = 0, cw1 = clip(2-45) = 0


def test_crop_centre_inside_box():
    np.random.seed(0)
    t = ContrastiveCrop(scale=8, alpha=0.1, crop_ratio_range=(0.01, 0.04))
    box = (0.3, 0.4, 0.6, 0.8)
    H = W = 100
    ci, cj = [], []
    for _ in range(3000):
        i, j, h, w = t.box_crop_params((H, W), box)
        # the crops are small enough that no clipping happens, so the
        # centre (i + h//2, j + w//2) runs between the box edges
        assert int(H * 0.3) <= i + h // 2 <= int(H * 0.6)
        assert int(W * 0.4) <= j + w // 2 <= int(W * 0.8)
        assert 0 <= i <= H - h and 0 <= j <= W - w
        ci.append(i + h // 2)
        cj.append(j + w // 2)
    ci, cj = np.array(ci), np.array(cj)
    # alpha = 0.1: most centres sit near an edge of the box
    near_edge = (np.minimum(ci - 30, 60 - ci) <= 3)
    assert near_edge.mean() > 0.6
    assert ci.min() == 30 and cj.min() == 40


@pytest.mark.parametrize('alpha', [0.1, 0.6, 1.0, 3.0])
def test_beta_statistics(alpha):
    """Fixed 100x100 crop of a 1000x1000 image, full box: i = int(900 u),
    u ~ Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)); i and j are
    independent draws."""
    np.random.seed(1)
    t = ContrastiveCrop(scale=8, alpha=alpha, crop_ratio_range=(0.01, 0.01),
                        aspect_ratio_range=(1., 1.))
    n = 20000
    ij = np.array([t.box_crop_params((1000, 1000), (0, 0, 1, 1))[:2]
                   for _ in range(n)], dtype=np.float64)
    u = (ij + 0.5) / 900.  # undo the int() truncation on average
    var = 1. / (4. * (2. * alpha + 1.))
    for k in range(2):
        assert abs(u[:, k].mean() - 0.5) < 4 * math.sqrt(var / n)
        assert abs(u[:, k].var() - var) < 0.03 * var + 2e-3
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.03
    if alpha < 1:  # U-shaped: more mass in the outer fifths than inside
        outer = ((u[:, 0] < 0.2) | (u[:, 0] > 0.8)).mean()
        assert outer > 0.4


def test_beta_cdf_against_scipy():
    from scipy import stats
    np.random.seed(2)
    t = ContrastiveCrop(scale=8, alpha=0.1, crop_ratio_range=(0.01, 0.01),
                        aspect_ratio_range=(1., 1.))
    i = np.array([t.box_crop_params((1000, 1000), (0, 0, 1, 1))[0]
                  for _ in range(5000)])
    # i = int(900 u): P(i <= k) = P(u < (k + 1) / 900) = F((k + 1) / 900);
    # Kolmogorov-Smirnov distance of the discrete CDF (1% level: 1.63/sqrt n)
    k = np.arange(900)
    emp = np.searchsorted(np.sort(i), k, side='right') / len(i)
    ref = stats.beta(0.1, 0.1).cdf((k + 1) / 900.)
    assert np.abs(emp - ref).max() < 1.63 / np.sqrt(len(i))


def test_central_fallback_by_hand():
    # 20x60 image (in_ratio 3 > 4/3): th = 20, tw = round(20*4/3) = 27,
    # offset_w = (60-27)//2 = 16; no attempt can fit an area of 2-3x H*W
    t = ContrastiveCrop(scale=8, alpha=0.1, crop_ratio_range=(2., 3.))
    assert t.box_crop_params((20, 60), (0.1, 0.1, 0.2, 0.2)) == (0, 16, 20,
                                                                 27)
    # tall image: tw = 30, th = round(30/(3/4)) = 40, offset_h = (90-40)//2
    assert t.box_crop_params((90, 30), (0, 0, 1, 1)) == (25, 0, 40, 30)
    # square image: whole image
    t0 = ContrastiveCrop(scale=8, alpha=0.1, max_attempts=0)
    assert t0.box_crop_params((33, 33), (0.4, 0.4, 0.5, 0.5)) == (0, 0, 33,
                                                                  33)


def test_output_size_and_pixels_with_box():
    t = ContrastiveCrop(scale=(12, 20), alpha=0.6)
    img = _img(40, 50)
    out = t(dict(img=img, ccrop_box=np.array([0.1, 0.2, 0.7, 0.9])))
    assert out['img'].shape == (12, 20, 3)
    assert out['img_shape'] == (12, 20, 3)
    assert out['img'].dtype == np.uint8
    # the crop content: scale == crop size gives the crop itself
    np.random.seed(5)
    t2 = ContrastiveCrop(scale=(10, 10), alpha=0.6,
                         crop_ratio_range=(0.05, 0.05),
                         aspect_ratio_range=(1., 1.))
    np.random.seed(5)
    i, j, h, w = t2.box_crop_params(img.shape, (0.2, 0.2, 0.8, 0.8))
    assert (h, w) == (10, 10)
    np.random.seed(5)
    out = t2(dict(img=img, ccrop_box=(0.2, 0.2, 0.8, 0.8)))
    np.testing.assert_array_equal(out['img'], img[i:i + 10, j:j + 10])


@pytest.mark.parametrize('alpha', [0, -0.5, float('nan'), float('inf')])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match='alpha'):
        ContrastiveCrop(scale=8, alpha=alpha)


@pytest.mark.parametrize('box', [(0.5, 0, 0.4, 1), (0, 0, 1.2, 1), (0, 0, 1),
                                 (0, 0, 1, float('nan'))])
def test_bad_box(box):
    t = ContrastiveCrop(scale=8)
    with pytest.raises(ValueError, match='ccrop_box'):
        t(dict(img=_img(), ccrop_box=box))
