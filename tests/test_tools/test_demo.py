"""tools/demo.py without its training: the raw-pixel baseline row of the
base recipe's data (the 3,072 pixel values with the test protocol), and the
curve plot."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _demo():
    spec = importlib.util.spec_from_file_location(
        'demo', osp.join(ROOT, 'tools', 'demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_raw_pixel_row_of_the_base_recipe(tmp_path, monkeypatch):
    import torch
    demo = _demo()
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # _run sets it: restored
    monkeypatch.chdir(ROOT)
    threads = torch.get_num_threads()
    try:
        out = demo._run((('raw pixels', 'mocov2'), 0, 1, str(tmp_path)))
    finally:
        torch.set_num_threads(threads)
    assert out['row'] == 'raw pixels' and 'curve' not in out
    # weighted kNN of raw digits pixels, test split vs the 4,000 training
    # digits (the figure docs/digits.md reports for this trivial row)
    assert out['knn_top1'] == pytest.approx(91.9, abs=0.05)
    assert 0 < out['few_knn_top1'] < out['knn_top1']


def test_curve_plot_is_written(tmp_path):
    demo = _demo()
    path = tmp_path / 'sub' / 'curves.png'
    demo._plot(str(path), [('a', dict(curve=[60.0, 70.0])),
                           ('b', dict(curve=[61.0, 65.0]))])
    assert path.stat().st_size > 0
