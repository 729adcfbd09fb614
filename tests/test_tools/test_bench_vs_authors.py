"""Bookkeeping of benchmarks/bench_vs_authors.py, without the authors'
code: where snapshots are looked for and the skip message, the alternated
step order, medians and ratios, and the scoped import of a snapshot's
modules."""
import importlib
import importlib.util
import os.path as osp
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'bench_vs_authors', osp.join(ROOT, 'benchmarks',
                                     'bench_vs_authors.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_snapshot_is_skipped_with_where_and_how(bench, tmp_path):
    got = bench.resolve_sources(['invp', 'cld'], str(tmp_path), {})
    assert got['invp']['path'] is None
    msg = got['invp']['skip']
    assert str(tmp_path / 'InvariancePropagation') in msg
    assert 'objective.py missing' in msg
    assert 'github.com/WangFeng18/InvariancePropagation' in msg
    # no root and no --cld-src: says which options to give
    got = bench.resolve_sources(['cld'], None, {})
    assert '--cld-src' in got['cld']['skip']
    with pytest.raises(ValueError, match='interclr'):
        bench.resolve_sources(['interclr'], None, {})


def test_snapshot_found_by_marker_and_explicit_path_wins(bench, tmp_path):
    root = tmp_path / 'root'
    (root / 'ContrastiveCrop' / 'datasets' / 'transforms').mkdir(
        parents=True)
    (root / 'ContrastiveCrop' / 'datasets' / 'transforms' /
     'ContrastiveCrop.py').write_text('')
    own = tmp_path / 'elsewhere'
    (own / 'lib').mkdir(parents=True)
    (own / 'lib' / 'LinearAverage.py').write_text('')
    got = bench.resolve_sources(['ccrop', 'cld'], str(root),
                                {'cld': str(own)})
    assert got['ccrop'] == dict(path=str(root / 'ContrastiveCrop'),
                                skip=None)
    assert got['cld'] == dict(path=str(own), skip=None)


def test_main_without_any_snapshot_times_nothing(bench, tmp_path, capsys):
    out = tmp_path / 'res.json'
    assert bench.main(['--authors-root', str(tmp_path), '--out',
                       str(out)]) is None
    text = capsys.readouterr().out
    assert text.count('skipped') == 3
    assert 'nothing to time' in text
    assert not out.exists()


def test_steps_alternate_after_untimed_warmup(bench):
    calls = []
    now = [0.0]

    def clock():
        return now[0]

    def side(name, cost):
        def step(i):
            calls.append((name, i))
            now[0] += cost
        return step

    times = bench.alternate(dict(a=side('a', 2.0), b=side('b', 3.0)), 3,
                            warmup=1, clock=clock, wall=clock)
    # warm-up a b (batch 0), then a b / b a / a b on batches 1, 2, 3
    assert calls == [('a', 0), ('b', 0), ('a', 1), ('b', 1), ('b', 2),
                     ('a', 2), ('a', 3), ('b', 3)]
    assert times['a']['cpu'] == [2.0, 2.0, 2.0]
    assert times['b']['wall'] == [3.0, 3.0, 3.0]


def test_medians_and_ratio(bench):
    times = dict(ours=dict(cpu=[1.0, 9.0, 2.0], wall=[4.0, 4.0]),
                 authors=dict(cpu=[4.0, 3.0, 5.0], wall=[1.0, 3.0]))
    s = bench.summarize(times)
    assert s['cpu'] == dict(ours_ms=2000.0, authors_ms=4000.0, ratio=0.5)
    assert s['wall']['authors_ms'] == 2000.0 and s['wall']['ratio'] == 2.0
    table = bench.markdown([dict(method='invp', what='train step',
                                 batch=128, summary=s)])
    assert table.splitlines()[-1] == \
        '| invp | train step | 128 | 2,000 | 4,000 | 0.500 |'


def test_snapshot_modules_are_scoped(bench, tmp_path):
    snap = tmp_path / 'snap'
    pkg = 'snapshot_models_xyz'  # a snapshot's top-level package
    (snap / pkg).mkdir(parents=True)
    (snap / pkg / '__init__.py').write_text(
        'import not_installed_anywhere_xyz\nVALUE = 7\n')
    with bench.authors_modules(
            str(snap), placeholders=('not_installed_anywhere_xyz', )) as ph:
        models = importlib.import_module(pkg)
        assert ph == ['not_installed_anywhere_xyz']
    assert models.VALUE == 7
    assert pkg not in sys.modules
    assert 'not_installed_anywhere_xyz' not in sys.modules
    assert str(snap) not in sys.path


def test_batch_option(bench):
    assert bench.batch_size([], 'cld') == 0
    assert bench.batch_size(['64'], 'cld') == 64
    assert bench.batch_size(['64', 'cld=256'], 'cld') == 256
    assert bench.batch_size(['cld=256', '64'], 'cld') == 256
    assert bench.batch_size(['cld=256'], 'invp') == 0
    with pytest.raises(ValueError, match='interclr'):
        bench.batch_size(['interclr=8'], 'cld')
