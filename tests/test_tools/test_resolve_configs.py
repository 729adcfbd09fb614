"""tools/misc/resolve_configs.py: dumps resolve inheritance, compare sorts
differences into Runner keys, _scope_ tags and helper variables."""
import importlib.util
import os.path as osp

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
_spec = importlib.util.spec_from_file_location(
    'resolve_configs', osp.join(ROOT, 'tools', 'misc', 'resolve_configs.py'))
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)


def _tree(root, child_text, base_text):
    (root / '_base_').mkdir(parents=True)
    (root / '_base_' / 'data.py').write_text(base_text)
    (root / 'method').mkdir()
    (root / 'method' / 'recipe.py').write_text(child_text)


BASE = ("crop = 32\n"
        "train_dataloader = dict(batch_size=8, dataset=dict(type='A'))\n")
CHILD = ("_base_ = ['../_base_/data.py']\n"
         "train_dataloader = dict(batch_size={bs})\n"
         "model = dict(type='M', {extra})\n")


def test_dump_resolves_bases_and_skips_them(tmp_path):
    _tree(tmp_path / 'cfg', CHILD.format(bs=16, extra=''), BASE)
    assert rc.dump(str(tmp_path / 'cfg'), str(tmp_path / 'out')) == 0
    import json
    with open(tmp_path / 'out' / 'method' / 'recipe.json') as f:
        d = json.load(f)
    assert d['train_dataloader'] == {'batch_size': 16,
                                     'dataset': {'type': 'A'}}
    assert not (tmp_path / 'out' / '_base_').exists()


def test_compare_classifies_differences(tmp_path, capsys):
    _tree(tmp_path / 'a', CHILD.format(bs=16, extra=''), BASE)
    # helper variable and a _scope_ tag change only: not Runner-visible
    _tree(tmp_path / 'b', CHILD.format(bs=16, extra="_scope_='x'"),
          BASE.replace('crop = 32', 'crop = 64'))
    # a Runner key changes
    _tree(tmp_path / 'c', CHILD.format(bs=32, extra=''), BASE)
    for name in 'abc':
        rc.dump(str(tmp_path / name), str(tmp_path / f'd{name}'))
    assert rc.compare(str(tmp_path / 'da'), str(tmp_path / 'db')) == 0
    out = capsys.readouterr().out
    assert '[scope] model._scope_' in out and '[helper] crop: 32 -> 64' in out
    assert rc.compare(str(tmp_path / 'da'), str(tmp_path / 'dc')) == 1
    out = capsys.readouterr().out
    assert '[runner] train_dataloader.batch_size: 16 -> 32' in out
