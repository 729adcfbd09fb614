"""tools/analysis_tools/visualize_tsne.py on a tiny model: a PNG with one
point per sample, coloured by true label; pseudo-labels from a label bank."""
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TINY_CFG = osp.join(ROOT, 'tests', 'data', 'configs',
                    'mocov2_tiny_synthetic.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        '_tsne', osp.join(ROOT, 'tools', 'analysis_tools',
                          'visualize_tsne.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tsne = _tool()


@pytest.fixture
def tiny(tmp_path):
    from mmssl_ext.registry import MODELS
    cfg = Config.fromfile(TINY_CFG)
    cfg.work_dir = str(tmp_path / 'w')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'init.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return cfg, ckpt


def test_tsne_png_true_labels(tiny, tmp_path):
    cfg, ckpt = tiny
    out = str(tmp_path / 'tsne.png')
    res = tsne.visualize_tsne(cfg, ckpt, split='test', out=out,
                              perplexity=5, max_samples=24)
    assert osp.getsize(out) > 1000
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert res['points'].shape == (24, 2)
    assert np.isfinite(res['points']).all()
    # labels are the synthetic data set's (i % num_classes) at the sampled
    # indices
    n_cls = cfg.test_dataloader.dataset.num_classes
    assert (res['labels'] == res['index'] % n_cls).all()


def test_pseudo_labels_need_a_label_bank(tiny):
    cfg, ckpt = tiny
    with pytest.raises(ValueError, match='--split train'):
        tsne.visualize_tsne(cfg, ckpt, split='test', color_by='pseudo')
    with pytest.raises(ValueError, match='pseudo-label memory'):
        tsne.visualize_tsne(cfg, ckpt, split='train', color_by='pseudo',
                            out=None)


def test_find_label_bank_and_plot(tmp_path):
    from mmssl_ext.models.memories import FeatureMemory, LabelMemory
    m = torch.nn.Module()
    m.bank = FeatureMemory(4, 2)
    m.memory = LabelMemory(4, 3)
    m.memory.set_clusters(None, torch.tensor([2, 0, 1, 1]))
    name, bank = tsne.find_label_bank(m)
    assert name == 'memory.labels' and bank.tolist() == [2, 0, 1, 1]
    assert tsne.find_label_bank(torch.nn.Linear(2, 2)) is None
    pts = tsne.tsne_2d(np.random.RandomState(0).randn(12, 5), perplexity=3)
    assert pts.shape == (12, 2)
    out = tsne.plot_embedding(pts, np.arange(12) % 3,
                              str(tmp_path / 'p.png'), 'title',
                              class_names=['a', 'b', 'c'])
    assert osp.getsize(out) > 1000


def test_writes_only_where_out_says(tiny, tmp_path, monkeypatch):
    """No ./work_dirs (Runner logs) or anything else next to --out."""
    cfg, ckpt = tiny
    cfg_file = str(tmp_path / 'tiny_cfg.py')
    cfg.dump(cfg_file)
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    tsne.main([cfg_file, ckpt, '--out', 'figs/t.png', '--perplexity', '5',
               '--max-samples', '16'])
    written = sorted(osp.relpath(osp.join(d, f), run_dir)
                     for d, _, fs in os.walk(run_dir) for f in fs)
    assert written == ['figs/t.png']
    # without --out: one PNG in the current directory, nothing else
    tsne.main([cfg_file, ckpt, '--perplexity', '5', '--max-samples', '16'])
    written = sorted(osp.relpath(osp.join(d, f), run_dir)
                     for d, _, fs in os.walk(run_dir) for f in fs)
    assert written == ['figs/t.png', 'tiny_cfg_tsne_test_label.png']
