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
    m, s, wins, n = bq.paired(res, 'interclr', 'mocov2', 'knn_top1')
    # differences +5 and -1
    assert (m, wins, n) == (2.0, 1, 2)
    assert s == pytest.approx((2 * 3.0**2)**0.5)
    assert bq.paired(res, 'interclr', 'simclr', 'knn_top1') is None


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
    assert '| interclr | mocov2 | 84.00 | +4.00 +- 0.00 (1/1) |' in out
    assert 'pseudo_nmi 0.500, pseudo_purity 0.700' in out
    assert osp.exists(tmp_path / 'q.csv')
    assert osp.exists(tmp_path / 'q_curves.png')


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
    # kNN differences +6 and -1: mean +2.5, sd sqrt(24.5), 1 of 2 seeds;
    # few-label +5 and +1: mean +3, sd sqrt(8)
    assert ('| byol-interimage | byol | 63.50 +- 3.54 | +2.50 +- 4.95 (1/2) '
            '| 34.00 +- 1.41 | +3.00 +- 2.83 (2/2) |') in out
    assert '| mocov2-group | mocov2 | 79.00 | -1.00 +- 0.00 (0/1) |' in out
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
