"""The composition matrix's mixture cells are BSIM's digits recipes written
as compositions: built through the full runner with the same seed they
start from the same weights and produce the same losses step by step, so
the digits benchmark may reuse the BSIM rows' runs for them
(``digits_rows.MATRIX_SAME_AS``)."""
import os.path as osp
import sys

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import digits_rows  # noqa: E402


def _first_steps(row, work_dir, steps=2):
    """Initial weights and the first losses of ``row`` built as
    ``Runner.train`` builds it (the overhead benchmark's set-up)."""
    import mmssl_ext  # noqa: F401
    from bench_overhead import build_row, one_iter
    r = build_row(row, work_dir)
    init = [v.clone() for v in r['runner'].model.state_dict().values()]
    losses = []
    for _ in range(steps):
        one_iter(r)
        losses.append(float(
            r['runner'].message_hub.get_scalar('train/loss').current()))
    return init, losses


@pytest.mark.parametrize('cell', sorted(digits_rows.MATRIX_SAME_AS))
def test_mixture_cell_is_the_bsim_run(cell, tmp_path):
    same_as = digits_rows.MATRIX_SAME_AS[cell]
    init_a, loss_a = _first_steps(cell, str(tmp_path / 'a'))
    init_b, loss_b = _first_steps(same_as, str(tmp_path / 'b'))
    assert len(init_a) == len(init_b)
    assert all(torch.equal(x, y) for x, y in zip(init_a, init_b))
    assert loss_a == loss_b
