"""The tools OpenMMLab users reach for: log analysis of the vis_data JSON
log and publishing (MMPretrain's scripts, called from its installed copy),
FLOPs of this package's models, the segmentation transfer launcher."""
import hashlib
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DIGITS = osp.join(ROOT, 'configs', 'interclr',
                  'interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py')


def _tool(*parts):
    path = osp.join(ROOT, 'tools', *parts)
    spec = importlib.util.spec_from_file_location(
        '_tool_' + parts[-1][:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mmpretrain_tools_are_found_installed():
    from mmssl_ext.utils.upstream import mmpretrain_tool
    for rel in ('analysis_tools/analyze_logs.py',
                'model_converters/publish_model.py'):
        assert osp.isfile(mmpretrain_tool(rel))
    with pytest.raises(FileNotFoundError, match='tools/none.py'):
        mmpretrain_tool('none.py')


def _vis_data(run_dir, epochs=3, iters=4):
    """A vis_data/scalars.json as MMEngine's LocalVisBackend writes it:
    training lines (with lr) and validation lines."""
    path = osp.join(run_dir, 'vis_data', 'scalars.json')
    os.makedirs(osp.dirname(path))
    step = 0
    with open(path, 'w') as f:
        for epoch in range(1, epochs + 1):
            for i in range(iters):
                step += 1
                f.write(json.dumps(dict(
                    lr=0.1, loss=5.0 - 0.1 * step, loss_intra=3.0,
                    time=0.5 + 0.1 * (i == 0), data_time=0.01, epoch=epoch,
                    iter=step, memory=0, step=step)) + '\n')
            f.write(json.dumps({'knn/top1': 50.0 + epoch,
                                'step': epoch}) + '\n')
    return path


def test_analyze_logs_curves_and_times_from_a_work_dir(tmp_path, capsys):
    pytest.importorskip('matplotlib')
    import matplotlib
    matplotlib.use('Agg')
    _vis_data(str(tmp_path / 'work' / '20261207_120000'))
    tool = _tool('analysis_tools', 'analyze_logs.py')
    # a work directory stands for its newest vis_data/scalars.json
    log = tool.resolve_log(str(tmp_path / 'work'))
    assert log.endswith(osp.join('20261207_120000', 'vis_data',
                                 'scalars.json'))
    out = tmp_path / 'curves.png'
    tool.main(['plot_curve', str(tmp_path / 'work'), '--keys', 'loss',
               'knn/top1', '--out', str(out)])
    assert out.stat().st_size > 1000
    tool.main(['cal_train_time', log])
    text = capsys.readouterr().out
    # (0.6 + 3 x 0.5) / 4 over the 12 iterations
    assert 'average iter time: 0.5250 s/iter' in text
    assert 'slowest epoch' in text
    with pytest.raises(ValueError, match='Invalid key'):
        tool.main(['plot_curve', log, '--keys', 'no_such_key', '--out',
                   str(out)])
    with pytest.raises(SystemExit, match='no vis_data/scalars.json'):
        tool.main(['plot_curve', str(tmp_path), '--keys', 'loss'])


def test_get_flops_counts_the_backbone_of_our_model(capsys):
    tool = _tool('analysis_tools', 'get_flops.py')
    res = tool.main([DIGITS, '--shape', '32'])
    text = capsys.readouterr().out
    assert 'Model: InterCLRMoCo' in text
    from mmengine.analysis import get_model_complexity_info

    # the backbone alone, counted by MMEngine: what extract_feat runs
    model = tool.build_model(DIGITS).eval()  # BatchNorm counted as in eval
    ref = get_model_complexity_info(model.backbone, (3, 32, 32),
                                    show_table=False, show_arch=False)
    assert res['flops'] == ref['flops'] > 0
    n_backbone = sum(p.numel() for p in model.backbone.parameters())
    assert res['backbone_params'] == n_backbone
    # MoCo: the momentum encoder and the necks are more than the backbone
    assert sum(p.numel() for p in model.parameters()) > 2 * n_backbone


def test_publish_model_names_file_by_hash_and_prints_fields(tmp_path,
                                                            capsys):
    from mmengine.logging import MessageHub
    ckpt = {
        'meta': {'epoch': 20, 'iter': 1240},
        'state_dict': {'backbone.conv1.weight': torch.randn(4, 3, 3, 3),
                       'memory.feature_bank': torch.randn(8, 4)},
        'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1}]},
        'param_schedulers': [{'last_step': 3}],
        'message_hub': MessageHub.get_instance('publish_test').state_dict(),
    }
    src = tmp_path / 'epoch_20.pth'
    torch.save(ckpt, src)
    tool = _tool('model_converters', 'publish_model.py')
    fields = tool.main([str(src), str(tmp_path / 'interclr_digits.pth'),
                        '--url-prefix', 'https://example.org/zoo/'])
    final = fields['file']
    with open(final, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    name = osp.basename(final)
    assert re.fullmatch(r'interclr_digits_\d{8}-' + digest[:8] + r'\.pth',
                        name)
    assert fields['Weights'] == 'https://example.org/zoo/' + name
    assert fields['Weights SHA256'] == digest
    text = capsys.readouterr().out
    assert f'Weights SHA256: {digest}' in text
    out = torch.load(final, map_location='cpu')
    # training state dropped, model state (method memories included) kept
    assert set(out) == {'meta', 'state_dict'}
    assert torch.equal(out['state_dict']['memory.feature_bank'],
                       ckpt['state_dict']['memory.feature_bank'])
    # what the hub checks when the file is loaded by its URL's name
    from mmssl_ext.utils import hub
    assert hub.hash_prefix_from_name(fields['Weights']) == digest[:8]


def test_segmentation_launcher_says_what_to_install(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, WORK_DIR=str(tmp_path))
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'benchmarks', 'mmsegmentation',
                          'dist_train.sh'),
         osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation',
                  'voc12aug', 'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'),
         str(tmp_path / 'missing.pth'), '1'],
        env=env, capture_output=True, text=True, timeout=120)
    try:
        import mmseg  # noqa: F401
    except Exception:
        assert proc.returncode == 2
        assert 'pip install mmsegmentation==1.2.2' in proc.stderr
        assert not (tmp_path / 'backbone.pth').exists()
    else:  # installed: it goes on to the conversion, which needs the file
        assert proc.returncode != 0
        assert 'missing.pth' in proc.stderr + proc.stdout
