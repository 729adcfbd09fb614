"""GPU memory estimated on the CPU: the live-bytes counter by hand, the
committed estimates cover every ImageNet recipe, and the GPU kit and the
metafiles read them back consistently."""
import importlib.util
import json
import os.path as osp
import sys

import pytest
import torch
import yaml

from mmssl_ext.testing.mem_estimate import PeakMemory

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
EST = osp.join(ROOT, 'tools', 'gpu_check', 'memory_estimates.json')


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_peak_memory_by_hand():
    a = torch.zeros(1000)  # 4,000 bytes, existing before
    pm = PeakMemory()
    pm.track([a, a[:10]])  # a view is the same storage
    assert pm.current == 4000
    with pm:
        b = a + 1  # +4,000
        c = b * 2  # +4,000 -> peak 12,000
        del b  # -4,000
        d = c.view(10, 100)  # a view: no new storage
        e = torch.empty(250, dtype=torch.float64)  # +2,000
    assert pm.peak == 12000
    assert pm.current == 4000 + 4000 + 2000
    del c, d, e
    assert pm.current == 4000


def test_every_imagenet_recipe_has_an_estimate():
    est = _load(osp.join(ROOT, 'tools', 'analysis_tools',
                         'estimate_gpu_memory.py'), 'estimate_gpu_memory')
    with open(EST) as f:
        rows = {r['config']: r for r in json.load(f)['recipes']}
    assert set(rows) == set(est.RECIPES)
    for cfg, r in rows.items():
        assert osp.isfile(osp.join(ROOT, cfg)), cfg
        (b1, m1), (b2, m2) = sorted(
            (int(b), m['peak_bytes']) for b, m in r['measured'].items())
        slope = (m2 - m1) / (b2 - b1)
        assert slope > 0, cfg  # activations grow with the batch
        want = (m2 + (r['recipe_batch'] - b2) * slope) / 2**30
        assert r['peak_gib'] == pytest.approx(want, abs=0.01), cfg
        # the batch-independent state is counted below the peak
        assert r['state_before_step_gib'] <= r['peak_gib']


def test_gpu_kit_and_metafiles_read_the_estimates():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'gpu_check'))
    try:
        from gpu_checks.imagenet import memory_estimate
    finally:
        sys.path.pop(0)
    with open(EST) as f:
        rows = {r['config']: r for r in json.load(f)['recipes']}
    for cfg, r in rows.items():
        b = r['recipe_batch']
        assert memory_estimate(cfg, {}, b, 224) == pytest.approx(
            r['peak_gib'], abs=0.01)
        # overrides or another image size: no estimate
        assert memory_estimate(cfg, {'model.x': 1}, b, 224) is None
        assert memory_estimate(cfg, {}, b, 32) is None
        method = cfg.split('/')[1] if cfg.count('/') > 1 else None
        if method is None:
            continue
        with open(osp.join(ROOT, 'configs', method, 'metafile.yml')) as f:
            meta = yaml.safe_load(f)
        stem = osp.splitext(osp.basename(cfg))[0]
        [row] = [m for m in meta['Models'] if m['Name'] == stem]
        assert row['Metadata']['Training Memory (GB)'] == round(
            r['peak_gib'] * 2**30 / 1e9, 1)
        assert row['Metadata']['Training Resources'].endswith('x GPUs')
