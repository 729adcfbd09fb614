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
    import mmssl_ext  # noqa: F401
    from mmengine.runner import Runner
    cfg, _ = digits_rows.prepare(row, 0, 6, work_dir, curve=False)
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    r = Runner.from_cfg(cfg)
    r._train_loop = r.build_train_loop(r._train_loop)
    r.optim_wrapper = r.build_optim_wrapper(r.optim_wrapper)
    r.param_schedulers = r.build_param_scheduler(r.param_schedulers)
    r.call_hook('before_run')
    r._init_model_weights()
    r.optim_wrapper.initialize_count_status(r.model, 0,
                                            r.train_loop.max_iters)
    r.call_hook('before_train')
    r.call_hook('before_train_epoch')
    init = [v.clone() for v in r.model.state_dict().values()]
    it, losses = iter(r.train_dataloader), []
    for i in range(steps):
        r.train_loop.run_iter(i, next(it))
        losses.append(float(r.message_hub.get_scalar('train/loss').current()))
    return init, losses


@pytest.mark.parametrize('cell', sorted(digits_rows.MATRIX_SAME_AS))
def test_mixture_cell_is_the_bsim_run(cell, tmp_path):
    same_as = digits_rows.MATRIX_SAME_AS[cell]
    init_a, loss_a = _first_steps(cell, str(tmp_path / 'a'))
    init_b, loss_b = _first_steps(same_as, str(tmp_path / 'b'))
    assert len(init_a) == len(init_b)
    assert all(torch.equal(x, y) for x, y in zip(init_a, init_b))
    assert loss_a == loss_b
