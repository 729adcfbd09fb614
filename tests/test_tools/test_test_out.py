"""tools/test.py --out: the metrics (json) or the per-sample predictions
(pkl), as MMPretrain's tools/test.py writes them."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'mocov2_tiny_synthetic.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        '_test_tool', osp.join(ROOT, 'tools', 'test.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


test_tool = _tool()


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    from mmssl_ext.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CFG).model)
    path = str(tmp_path_factory.mktemp('ck') / 'init.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def test_out_metrics_json(ckpt, tmp_path):
    out = str(tmp_path / 'res' / 'metrics.json')
    metrics = test_tool.main([CFG, ckpt, '--work-dir', str(tmp_path / 'w'),
                              '--out', out])
    with open(out) as f:
        dumped = json.load(f)
    assert set(dumped) == {'knn/top1', 'knn/top5'}
    assert dumped == pytest.approx(metrics)


def test_out_predictions_pkl(ckpt, tmp_path):
    import mmengine
    out = str(tmp_path / 'pred.pkl')
    metrics = test_tool.main([CFG, ckpt, '--work-dir', str(tmp_path / 'w'),
                              '--out', out])
    preds = mmengine.load(out)
    n = 32  # SyntheticImageDataset(num_samples=32, num_classes=6)
    assert len(preds) == n
    gt = torch.tensor([int(p['gt_label'][0]) for p in preds])
    assert torch.equal(gt, torch.arange(n) % 6)  # in data-set order
    scores = torch.stack([torch.as_tensor(p['pred_score']) for p in preds])
    assert scores.shape == (n, 6)
    top1 = (scores.argmax(1) == gt).float().mean().item() * 100
    assert top1 == pytest.approx(metrics['knn/top1'])


def test_out_item_checks():
    with pytest.raises(SystemExit):
        test_tool.parse_args([CFG, 'x.pth', '--out-item', 'pred'])
    with pytest.raises(SystemExit):  # predictions are pickled data samples
        test_tool.parse_args([CFG, 'x.pth', '--out', 'p.json',
                              '--out-item', 'pred'])
    a = test_tool.parse_args([CFG, 'x.pth', '--out', 'p.pkl',
                              '--out-item', 'metrics'])
    assert a.out_item == 'metrics'
    assert test_tool.parse_args([CFG, 'x.pth', '--out', 'm.yaml']
                                ).out_item == 'metrics'


def test_misspelled_key_stops_before_the_runner(ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        test_tool.main([CFG, ckpt, '--work-dir', str(tmp_path / 'w'),
                        '--cfg-options', 'test_cfg.sigmma=0.1'])
    assert e.value.code == 2
    assert "test_cfg (KNNTestLoop): unknown argument 'sigmma'; did you " \
        "mean 'sigma'?" in capsys.readouterr().err
    assert not (tmp_path / 'w').exists()
