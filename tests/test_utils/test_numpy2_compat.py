import mmcv
import numpy as np
import pytest

from mmssl_ext.utils.numpy2_compat import _hue_shift, adjust_hue


def test_negative_hue_shift_wraps_like_numpy1():
    assert _hue_shift(-5 / 255) == 251
    assert _hue_shift(0.1) == 25
    assert _hue_shift(-0.5) == 129  # int(-127.5) = -127 -> 129


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_negative_factor_runs_and_inverts(backend):
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (8, 8, 3)).astype(np.uint8)
    out = adjust_hue(img, -0.1, backend=backend)
    assert out.shape == img.shape and out.dtype == np.uint8
    # the shift is on the hue circle: -0.1 then +0.1 (25 + 231 = 256 = 0)
    # returns (up to HSV round-off) the original colours
    back = adjust_hue(out, 0.1, backend=backend)
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 6


def test_colorjitter_of_our_scope_is_fixed_and_mmcv_is_not_patched():
    import mmssl_ext  # noqa: F401
    from mmssl_ext.registry import TRANSFORMS
    original = mmcv.adjust_hue
    assert original is not adjust_hue  # importing patches nothing
    t = TRANSFORMS.build(dict(type='ColorJitter', hue=0.5))
    assert type(t).__module__ == 'mmssl_ext.datasets.transforms.color'
    rng = np.random.RandomState(1)
    for _ in range(10):  # draws negative hues too
        t(dict(img=rng.randint(0, 256, (8, 8, 3)).astype(np.uint8)))
    assert mmcv.adjust_hue is original  # restored after every call
