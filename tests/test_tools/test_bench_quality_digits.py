"""The digits quality benchmark's bookkeeping (no training): paired deltas
by seed, the recipe fingerprint, refusal to merge another budget, the
probes on raw pixels and the table."""
import json
import os.path as osp
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import bench_quality_digits as bq  # noqa: E402
import digits_rows  # noqa: E402


def _r(row, seed, knn, few=50.0, lin=60.0, **kw):
    return dict(row=row, seed=seed, epochs=6, knn_top1=knn,
                few_knn_top1=few, linear_top1=lin, seconds=1.0,
                fingerprint='f-' + row, scaled=[], **kw)


def test_paired_delta_by_hand():
    res = [_r('mocov2', 0, 80.), _r('mocov2', 1, 70.), _r('mocov2', 2, 75.),
           _r('interclr', 0, 85.), _r('interclr', 1, 69.),
           _r('interclr', 3, 99.)]  # seed 3 has no base: not paired
    d = bq.paired(res, 'interclr', 'mocov2', 'knn_top1')
    # differences +5 and -1: mean 2, sd sqrt(18), se 3; t(0.975, 1 df) =
    # 12.706 (table value): half-width 38.12
    assert (d['mean'], d['wins'], d['n'], d['diffs']) == (2.0, 1, 2, [5., -1.])
    assert d['sd'] == pytest.approx(18**0.5)
    assert (d['lo'], d['hi']) == pytest.approx((2 - 38.119, 2 + 38.119),
                                               abs=1e-3)
    assert d['verdict'] == 'not distinguishable'
    assert bq.paired(res, 'interclr', 'simclr', 'knn_top1') is None


def test_paired_interval_and_verdicts_by_hand():
    base = [_r('mocov2', s, 80.) for s in range(5)]
    up = [_r('interclr', s, 80. + s + 1) for s in range(5)]  # +1..+5
    d = bq.paired(base + up, 'interclr', 'mocov2', 'knn_top1')
    # mean 3, sd sqrt(2.5), se 0.7071; t(0.975, 4 df) = 2.7764: +-1.9632
    assert d['mean'] == pytest.approx(3.0)
    assert (d['lo'], d['hi']) == pytest.approx((1.0368, 4.9632), abs=1e-3)
    assert d['verdict'] == 'above' and d['wins'] == 5
    down = [_r('interclr', s, 80. - s - 1) for s in range(5)]
    assert bq.paired(base + down, 'interclr', 'mocov2',
                     'knn_top1')['verdict'] == 'below'
    one = bq.paired(base[:1] + up[:1], 'interclr', 'mocov2', 'knn_top1')
    assert one['lo'] is None and 'no verdict' in one['verdict']
    assert bq.fmt_paired(d) == '+3.00 [+1.04, +4.96] above (5/5)'


M0 = dict(cpu='cpu A', torch='2.14.1', onednn='oneDNN v3', threads=1)


def test_pairs_that_did_not_start_equal_or_ran_elsewhere_are_refused():
    base = _r('mocov2', 0, 80., val_curve=[61.2, 70.], machine=M0)
    ok = _r('interclr', 0, 82., val_curve=[61.2, 75.], machine=M0)
    assert bq.pair_problem([base], ok) is None
    assert bq.pair_problem([ok], base) is None  # either order
    bad = _r('interclr', 0, 82., val_curve=[70.8, 75.], machine=M0)
    why = bq.pair_problem([base], bad)
    assert ("'interclr' seed 0 did not start from the weights of its base "
            "'mocov2'") in why and '70.80 vs 61.20' in why
    other = _r('interclr', 0, 82., val_curve=[61.2, 75.],
               machine=dict(M0, cpu='cpu B'))
    assert 'cpu B' in bq.pair_problem([base], other)
    # another seed or an unrelated row is no partner
    assert bq.pair_problem([_r('mocov2', 1, 8., val_curve=[1.])], bad) is None
    assert bq.pair_problem([_r('simclr', 0, 8., val_curve=[1.])], bad) is None


def test_merge_refuses_a_results_file_with_unequal_pairs(
        tmp_path, monkeypatch):
    path = tmp_path / 'q.json'
    path.write_text(json.dumps(dict(epochs=6, results=[
        _r('mocov2', 0, 80., val_curve=[61.2], machine=M0),
        _r('interclr', 0, 82., val_curve=[70.8], machine=M0)])))
    monkeypatch.setattr(bq, '_run_tasks', lambda *a: None)
    monkeypatch.setattr(sys, 'argv', [
        'bench', '--rows', 'interclr', '--seeds', '1', '--epochs', '6',
        '--merge', '--out', str(path), '--work-dir', str(tmp_path / 'w')])
    with pytest.raises(SystemExit, match="'interclr' seed 0 did not start"):
        bq.main()


def test_method_rows_bring_their_base(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(bq, '_run_tasks',
                        lambda tasks, *a: seen.update(tasks=tasks))
    monkeypatch.setattr(sys, 'argv', [
        'bench', '--rows', 'invp', '--seeds', '4', '--out',
        str(tmp_path / 'q.json'), '--work-dir', str(tmp_path / 'w')])
    bq.main()
    assert ('invp', 4) in seen['tasks'] and ('npid', 4) in seen['tasks']


def test_merge_continues_where_a_run_stopped(tmp_path, monkeypatch):
    """--merge skips the (row, seed) runs already in the file (an
    interrupted run continues); --redo reruns the trained ones."""
    path = tmp_path / 'q.json'
    path.write_text(json.dumps(dict(epochs=6, results=[
        _r(row, 0, 80., val_curve=[61.2], machine=M0)
        for row in ('mocov2', 'interclr', bq.FLOOR, bq.RAW)])))
    seen = {}
    monkeypatch.setattr(bq, '_run_tasks',
                        lambda tasks, *a: seen.update(tasks=tasks))

    def run(*extra):
        monkeypatch.setattr(sys, 'argv', [
            'bench', '--rows', 'interclr', '--seeds', '0', '1', '--epochs',
            '6', '--merge', '--out', str(path), '--work-dir',
            str(tmp_path / 'w'), *extra])
        bq.main()
        return sorted(seen['tasks'])
    assert run() == sorted([(bq.FLOOR, 1), ('interclr', 1), ('mocov2', 1)])
    assert run('--redo') == sorted([(bq.FLOOR, 1), ('interclr', 0),
                                    ('interclr', 1), ('mocov2', 0),
                                    ('mocov2', 1)])


def test_merge_refuses_another_budget(tmp_path):
    with pytest.raises(SystemExit, match='6-epoch results, this run is 10'):
        bq._check_merge(dict(epochs=6), 10, str(tmp_path / 'q.json'))
    bq._check_merge(dict(epochs=6), 6, str(tmp_path / 'q.json'))


def test_fingerprint_follows_the_recipe_not_the_run_settings(tmp_path):
    import mmssl_ext  # noqa: F401
    a, _ = digits_rows.prepare('mocov2', 0, 6, str(tmp_path / 'a'))
    b, _ = digits_rows.prepare('mocov2', 1, 6, str(tmp_path / 'b'))
    assert digits_rows.recipe_fingerprint(a) == \
        digits_rows.recipe_fingerprint(b)
    c, _ = digits_rows.prepare('mocov2', 0, 5, str(tmp_path / 'a'))
    d, _ = digits_rows.prepare('mocov2', 0, 6, str(tmp_path / 'a'),
                               overrides={'model.queue_len': 512})
    fps = {digits_rows.recipe_fingerprint(x) for x in (a, c, d)}
    assert len(fps) == 3


def test_every_method_row_has_a_base_row():
    for row, base in digits_rows.BASE.items():
        assert row in digits_rows.CONFIGS and base in digits_rows.CONFIGS
        assert osp.exists(osp.join(ROOT, digits_rows.CONFIGS[row]))
    for base in bq.BASES:
        assert base in digits_rows.CONFIGS


def test_report_prints_paired_rows_and_diagnostics(tmp_path, capsys):
    res = [_r(bq.FLOOR, 0, 60.), _r(bq.RAW, 0, 90.),
           _r('mocov2', 0, 80., val_curve=[60., 70., 80.]),
           _r('interclr', 0, 84., val_curve=[60., 75., 84.],
              diagnostics=dict(pseudo_nmi=0.5, pseudo_purity=0.7))]
    path = tmp_path / 'q.json'
    path.write_text(json.dumps(dict(epochs=6, jobs=2, threads=1,
                                    results=res, failed=[])))
    bq.report(str(path))
    out = capsys.readouterr().out
    assert ('| interclr | mocov2 | 84.00 | +4.00 one seed: no verdict (1/1) '
            '|') in out
    assert '| 1/1 | 1 |' in out  # same first validation point as its base
    assert 'pseudo_nmi 0.500, pseudo_purity 0.700' in out
    assert osp.exists(tmp_path / 'q.csv')
    assert osp.exists(tmp_path / 'q_curves.png')


def test_report_gives_no_verdict_to_pairs_that_started_apart(tmp_path,
                                                             capsys):
    res = [_r('mocov2', s, 80., val_curve=[60. + s]) for s in range(3)] + [
        _r('interclr', s, 90., val_curve=[60. + s * (s != 2)])
        for s in range(3)]
    path = tmp_path / 'q.json'
    path.write_text(json.dumps(dict(epochs=6, results=res, failed=[])))
    bq.report(str(path))
    out = capsys.readouterr().out
    assert '+10.00 [+10.00, +10.00] NOT PAIRED (3/3)' in out
    assert '| 2/3 |' in out


def test_matrix_report_pairs_each_cell_with_its_framework(tmp_path, capsys):
    res = [_r('byol', 0, 60., few=30.), _r('byol', 1, 62., few=32.),
           _r('byol-interimage', 0, 66., few=35.),
           _r('byol-interimage', 1, 61., few=33.),
           _r('mocov2', 0, 80.), _r('mocov2-group', 0, 79.)]
    path = tmp_path / 'm.json'
    path.write_text(json.dumps(dict(matrix=True, epochs=6, jobs=2,
                                    threads=1, results=res, failed=[])))
    bq.report(str(path))
    out = capsys.readouterr().out
    # kNN differences +6 and -1: mean +2.5, sd sqrt(24.5), se 3.5, t(0.975,
    # 1) = 12.706: +-44.47; few-label +5 and +1: mean +3, se 2: +-25.41
    assert ('| byol-interimage | byol | 63.50 +- 3.54 | +2.50 [-41.97, '
            '+46.97] not distinguishable (1/2) | 34.00 +- 1.41 | +3.00 '
            '[-22.41, +28.41] not distinguishable (2/2) |') in out
    assert ('| mocov2-group | mocov2 | 79.00 | -1.00 one seed: no verdict '
            '(0/1) |') in out
    assert osp.exists(tmp_path / 'm_heatmap.png')


def test_matrix_reuses_framework_rows_of_the_same_recipe_only(
        tmp_path, monkeypatch):
    import mmssl_ext  # noqa: F401
    fp = digits_rows.recipe_fingerprint(
        digits_rows.prepare('byol', 0, 6, str(tmp_path))[0])
    quality = tmp_path / 'q.json'
    fp_bsim = digits_rows.recipe_fingerprint(
        digits_rows.prepare('bsim-byol', 0, 6, str(tmp_path))[0])
    quality.write_text(json.dumps(dict(epochs=6, results=[
        dict(_r('byol', 0, 60.), fingerprint=fp),
        dict(_r('byol', 1, 61.), fingerprint='another recipe'),
        dict(_r('bsim-byol', 0, 62.), fingerprint=fp_bsim)])))
    seen = {}

    def fake_run(tasks, results, failed, args, wall):
        seen.update(tasks=tasks, results=results)

    monkeypatch.setattr(bq, '_run_tasks', fake_run)
    monkeypatch.setattr(sys, 'argv', [
        'bench', '--matrix', '--rows', 'byol-group', 'byol-mixture',
        '--seeds', '0', '1',
        '--bases-from', str(quality), '--out', str(tmp_path / 'm.json'),
        '--work-dir', str(tmp_path / 'w')])
    bq.main()
    # seed 0's framework row is reused; seed 1's recipe differs: retrained;
    # the mixture cell is BSIM-BYOL's run where there is one (seed 0)
    assert seen['tasks'] == [('byol-group', 0), ('byol', 1),
                             ('byol-group', 1), ('byol-mixture', 1)]
    got = {(r['row'], r['seed']): r for r in seen['results']}
    assert set(got) == {('byol', 0), ('byol-mixture', 0)}
    assert got[('byol', 0)]['reused_from'].endswith('q.json')
    assert got[('byol-mixture', 0)]['same_run_as'] == 'bsim-byol'
    assert got[('byol-mixture', 0)]['knn_top1'] == 62.0


def test_matrix_rows_exist_and_name_their_framework():
    for row, path in digits_rows.MATRIX.items():
        assert osp.exists(osp.join(ROOT, path)), path
        assert digits_rows.MATRIX_BASE[row] in bq.FRAMEWORKS
    assert {f'{f}-{b}' for f in bq.FRAMEWORKS for b in bq.BRANCHES} <= set(
        digits_rows.MATRIX)
