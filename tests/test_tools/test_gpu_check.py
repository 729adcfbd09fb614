"""The GPU validation kit (tools/gpu_check) in its tiny CPU mode: one
subprocess run of every check on a handful of recipes (tens of seconds),
then its JSON / Markdown report is read back. Keeps the kit from rotting
between the rare runs on a lent GPU."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
KIT = osp.join(ROOT, 'tools', 'gpu_check')
# the two DDP recipes everywhere; ContrastiveCrop (shared box store) and
# DeepCluster (sampler labels, per-epoch k-means) for the digits checks;
# MoCo v2 as InterCLR's base of the ImageNet ratio
ROWS = ('interclr', 'invp')
DIGITS = ROWS + ('ccrop-mocov2', 'deepcluster',
                 'mocov2-interimage-group-ccrop')
IMAGENET = ROWS + ('mocov2', )
# tiny sizes of gpu_check.py (TINY): digits n=16, batch 8, 2 epochs + 1
# resumed; ImageNet stand-in length 256; DDP 16 samples, 4 per rank
N_DIGITS, BATCH, EPOCHS = 16, 8, 2


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('gpu_check'))
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    p = subprocess.run(
        [sys.executable, osp.join(KIT, 'gpu_check.py'), '--device', 'cpu',
         '--tiny', '--out', out, '--work-dir', osp.join(out, 'work'),
         # the time guard (tiny: 300 s) would skip items on a loaded
         # machine; the subprocess timeout below bounds the run instead
         '--budget-s', '560',
         '--rows', ','.join(ROWS + ('digits:ccrop-mocov2',
                                    'digits:deepcluster',
                                    'digits:mocov2-interimage-group-ccrop',
                                    'imagenet:mocov2'))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    with open(osp.join(out, 'gpu_check.json')) as f:
        rep = json.load(f)
    with open(osp.join(out, 'gpu_check.md')) as f:
        md = f.read()
    return dict(rc=p.returncode, log=p.stdout + p.stderr, json=rep, md=md)


def _items(report, check):
    return {i['name']: i for i in report['json']['checks'][check]['items']}


def test_every_item_passes(report):
    assert report['rc'] == 0, report['log'][-4000:]
    for check, c in report['json']['checks'].items():
        for item in c['items']:
            assert item['status'] == 'pass', (check, item)
    s = report['json']['summary']
    assert s['fail'] == 0 and s['skipped'] == 0 and s['pass'] > 0


def test_report_structure(report):
    r = report['json']
    assert set(r['checks']) == {'digits', 'imagenet', 'kmeans', 'ddp'}
    assert r['mode']['device'] == 'cpu' and r['mode']['tiny'] is True
    assert r['mode']['forbid'] == ['mmcv.ops', 'mmdet', 'faiss']
    for mod in ('mmcv.ops', 'mmdet', 'faiss'):
        assert r['env'][f'{mod} available'] == 'blocked for the run'
    assert r['wall_s'] > 0 and 'finished' in r
    # the four targets of the issue, not judged at tiny sizes
    assert len(r['targets']) == 4
    assert all(t['met'] is None for t in r['targets'])
    for heading in ('## Targets', '## 1. Digits', '## 2. ImageNet',
                    '## 3. Machinery', '## 4. Two processes'):
        assert heading in report['md']
    # one table line per item of every check
    n_items = sum(len(c['items']) for c in r['checks'].values())
    n_lines = sum(
        1 for line in report['md'].splitlines() if line.startswith('| ')
        and re.search(r'\| (pass|skipped|\*\*FAIL\*\*) \|', line))
    assert n_lines == n_items


def test_digits_train_resume_and_cpu_load(report):
    items = _items(report, 'digits')
    assert set(items) == {f'{r}/{p}' for r in DIGITS
                          for p in ('fp32', 'amp')}
    per_epoch = N_DIGITS // BATCH
    for row in DIGITS:
        it = items[f'{row}/fp32']
        assert it['train']['iterations'] == EPOCHS * per_epoch
        assert it['train']['finite']
        assert it['resume']['identical'] and not it['resume']['diffs']
        # the resumed run trained one more epoch
        assert it['resume']['continued']['iterations'] == per_epoch
        assert it['cpu_load']['identical']
        assert it['cpu_load']['cpu_step_losses']
        assert it['state']['unregistered_tensors'] == {}
        # the recipe's kNN monitor ran once, on 16 test digits
        assert set(it['val']) == {'knn/top1', 'knn/top5'}
        assert 0 <= it['val']['knn/top1'] <= it['val']['knn/top5'] <= 100
        # AMP: CPU autocast (bfloat16), resume identical, no extra epoch
        amp = items[f'{row}/amp']
        assert amp['precision'] == 'amp (bfloat16 on the CPU)'
        assert amp['train']['iterations'] == EPOCHS * per_epoch
        assert amp['resume']['identical']
        assert amp['resume']['continued']['iterations'] == 0
        assert 'cpu_load' not in amp and 'val' not in amp
    ic = items['interclr/fp32']
    assert ic['scaled_sizes']['length'] == [4000, N_DIGITS]
    assert ic['scaled_sizes']['num_clusters'] == [20, 2]
    # the inter-image branch's memory (InterCLRMoCo is a composition)
    assert 'branches.0.memory.bank' in ic['state']['method_state']
    assert 'branches.0.memory.label_bank' in ic['state']['method_state']
    assert 'memory.neighbours' in items['invp/fp32']['state'][
        'method_state']
    assert 'ContrastiveCropDataset.store.boxes' in items[
        'ccrop-mocov2/fp32']['state']['cpu_by_design']
    assert 'ClusterSampler.labels' in items['deepcluster/fp32']['state'][
        'cpu_by_design']
    assert items['ccrop-mocov2/fp32']['scaled_sizes'] == {}
    # the composed stack: the inter-image branch's memory on the device,
    # ContrastiveCrop's boxes in the shared store
    stack = items['mocov2-interimage-group-ccrop/fp32']['state']
    assert 'branches.0.memory.bank' in stack['method_state']
    assert 'ContrastiveCropDataset.store.boxes' in stack['cpu_by_design']


def test_imagenet_rows(report):
    items = _items(report, 'imagenet')
    assert set(items) == set(IMAGENET)
    views = {r: items[r]['views'] for r in IMAGENET}
    assert views == {'interclr': 2, 'invp': 1, 'mocov2': 2}
    for it in items.values():
        assert it['dataset_len'] == 256 and it['timed_iters'] == 2
        assert it['images_per_s'] > 0
    ic, mc = items['interclr'], items['mocov2']
    assert ic['ratio_to_base'] == pytest.approx(
        ic['images_per_s'] / mc['images_per_s'], abs=2e-3)
    assert ic['scaled_sizes']['num_clusters'] == [10000, 2]
    assert ic['cluster_state'] == ('random cluster state: 256 x 128 bank, '
                                   '2 clusters')
    assert 'cluster_state' not in items['invp']


def test_machinery_items(report):
    items = _items(report, 'kmeans')
    assert set(items) == {'kmeans-x128', 'interclr-semihard-pool',
                          'invp-background-search', 'kmeans-deepcluster-pca'}
    assert items['kmeans-x128']['k'] == 20
    assert items['kmeans-deepcluster-pca']['pca_dim'] == 16
    assert items['interclr-semihard-pool']['neg_num'] == 50


def test_two_ranks_identical_state(report):
    c = report['json']['checks']['ddp']
    assert c['backend'] == 'gloo'
    items = _items(report, 'ddp')
    assert set(items) == {'two-ranks-gloo', 'interclr/gloo', 'invp/gloo'}
    for row in ('interclr', 'invp'):
        it = items[f'{row}/gloo']
        assert it['identical'] and it['compared_keys'] > 10
        assert it['iterations'] == 16 // 2 // 4  # 16 samples, 2 ranks x 4


def test_scale_dataset_sizes_by_hand():
    sys.path.insert(0, KIT)
    try:
        from gpu_checks.common import scale_dataset_sizes
    finally:
        sys.path.remove(KIT)
    model = dict(type='InterCLRMoCo', neg_num=256,
                 semihard_neg_pool_num=1000, semieasy_neg_pool_num=1000,
                 memory=dict(length=4000, num_clusters=40, min_cluster=20),
                 head=dict(num_classes=40), loss=dict(n_background=328),
                 queue_len=1024)
    changed = scale_dataset_sizes(model, 4000, 1280)
    # 1280 / 4000 = 0.32
    assert model['memory'] == dict(length=1280, num_clusters=13,
                                   min_cluster=6)
    assert model['semihard_neg_pool_num'] == 320
    assert model['neg_num'] == 82
    assert model['head']['num_classes'] == 13
    assert model['loss']['n_background'] == 105
    assert model['queue_len'] == 1024  # not tied to the data set length
    assert changed['length'] == [4000, 1280]
    assert scale_dataset_sizes(model, 1280, 1280) == {}


def test_device_scripts_and_wheel_list():
    names = []
    with open(osp.join(KIT, 'device-wheels.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if not line:
                continue
            spec = line.split()[-1]
            assert re.fullmatch(r'[A-Za-z0-9_.-]+==[0-9][\w.]*', spec), spec
            names.append(spec.split('==')[0].lower())
    assert len(names) == len(set(names))  # one version of each
    assert {'mmengine', 'mmcv-lite', 'mmpretrain', 'mlxtend'} <= set(names)
    assert 'mmcv' not in names  # mmcv-lite provides `mmcv` on the device
    for script in ('prepare.sh', 'run_on_device.sh'):
        p = subprocess.run(['bash', '-n', osp.join(KIT, script)],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    with open(osp.join(ROOT, '.gitignore')) as f:
        assert '/tools/gpu_check/wheels/' in f.read().split()
