"""tools/benchmarks/linear_probe.py: logistic regression on cached
features."""
import importlib.util
import os.path as osp

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _tool():
    spec = importlib.util.spec_from_file_location(
        '_lp', osp.join(ROOT, 'tools', 'benchmarks', 'linear_probe.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fit_linear_probe_separable_and_chance():
    lp = _tool()
    rng = np.random.RandomState(0)
    centres = rng.randn(3, 8) * 10
    y = np.arange(60) % 3
    x = centres[y] + rng.randn(60, 8)
    res = lp.fit_linear_probe(x[:45], y[:45], x[45:], y[45:])
    assert res['top1'] == 100.0 and res['train_top1'] == 100.0
    # top-5 with 3 classes counts every sample
    assert res['top5'] == 100.0
    # labels independent of the features: near chance, not 100
    yr = rng.randint(0, 3, size=300)
    xr = rng.randn(300, 8)
    res = lp.fit_linear_probe(xr[:200], yr[:200], xr[200:], yr[200:])
    assert res['top1'] < 60
