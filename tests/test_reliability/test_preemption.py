"""Preemption (SIGTERM / SIGUSR1): every rank stops at the same iteration,
one checkpoint, and the resumed run equals the uninterrupted one bit for bit
(InterCLR and InvP digits recipes, tiny settings, 1 and 2 processes); a
changed config is refused on resume; signals before the first iteration and
twice are handled (``mmssl_ext.engine.hooks.preemption_hook``)."""
import os
import os.path as osp
import signal
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from mmssl_ext.engine.hooks.preemption_hook import (
    ConfigChangedError, TrainingPreempted, config_differences,
    uninstall_preemption_handlers)
from mmssl_testing import TINY_BACKBONE, run_in_processes

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
RECIPES = {
    'interclr': 'configs/interclr/'
    'interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py',
    'invp': 'configs/invp/invp_resnet18-cifar_1xb64-coslr-20e_digits.py',
}
N, BATCH, EPOCHS = 32, 8, 2  # 4 iterations per epoch (1 process)


def tiny_recipe(method: str, work_dir: str, world_size: int = 1) -> Config:
    """The digits recipe with a 4-channel backbone, 32 images, batch 8 (4
    per rank with 2 processes), 2 epochs, no validation, no workers."""
    cfg = Config.fromfile(osp.join(ROOT, RECIPES[method]))
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{method}-{uuid.uuid4().hex[:8]}'
    cfg.log_level = 'WARNING'
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    loader = cfg.train_dataloader
    loader.batch_size = BATCH // world_size
    loader.num_workers, loader.persistent_workers = 0, False
    loader.dataset.indices = N
    cfg.train_cfg.max_epochs = EPOCHS
    cfg.model.backbone = dict(TINY_BACKBONE)
    cfg.model.neck.in_channels, cfg.model.neck.hid_channels = 32, 32
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=-1,
        backend_args=dict(backend='atomic_local'))
    cfg.default_hooks.logger.interval = 1
    mem = cfg.model.memory
    mem.length = N
    if method == 'interclr':
        mem.num_clusters, mem.min_cluster = 4, 2
        cfg.model.neg_num = 8
        cfg.model.semihard_neg_pool_num = cfg.model.semieasy_neg_pool_num = 16
        extract = cfg.custom_hooks[0]
        extract.extract_dataloader.dataset.indices = N
        extract.extract_dataloader.batch_size = 16
        extract.clustering.num_iters = 5
        cfg.custom_hooks[1].centroids_update_interval = 2
    else:
        cfg.model.ramp_epochs = 1  # the invariance term in epoch 2
        cfg.model.loss.n_background = 8
        cfg.model.loss.n_pos = 4
    return cfg


class SignalAt(Hook):
    """Sends ``sig`` to this process after iteration ``at`` (on ``rank``)."""
    priority = 'NORMAL'

    def __init__(self, at, sig=signal.SIGUSR1, rank=0, times=1):
        self.at, self.sig, self.rank, self.times = at, sig, rank, times

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        from mmengine import dist
        if runner.iter + 1 == self.at and dist.get_rank() == self.rank:
            for _ in range(self.times):
                os.kill(os.getpid(), self.sig)


def _final_state(runner):
    from mmpretrain.utils import get_ori_model
    sd = get_ori_model(runner.model).state_dict()
    opt = runner.optim_wrapper.state_dict()['state']
    return dict(
        model={k: v.detach().clone() for k, v in sd.items()},
        momentum={k: s['momentum_buffer'].clone() for k, s in opt.items()
                  if s.get('momentum_buffer') is not None},
        sched=[s.state_dict() for s in runner.param_schedulers],
        iter=runner.iter, epoch=runner.epoch)


def _train(method, work_dir, world_size=1, signal_at=None, signal_rank=0,
           resume=False, cfg_options=None, times=1):
    """Returns ('done', state) or ('preempted', iteration, checkpoint)."""
    from mmengine.runner import Runner

    from mmssl_ext.utils.checkpoint_compat import checked_checkpoint_loading
    from mmssl_ext.utils.launch import setup_distributed_cpu
    cfg = tiny_recipe(method, work_dir, world_size)
    if world_size > 1:
        cfg.launcher = 'pytorch'
        setup_distributed_cpu(cfg, 'pytorch')
    cfg.resume = resume
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    runner = Runner.from_cfg(cfg)
    if signal_at is not None:
        runner.register_hook(SignalAt(signal_at, rank=signal_rank,
                                      times=times))
    try:
        with checked_checkpoint_loading():
            runner.train()
    except TrainingPreempted as e:
        return ('preempted', e.iteration, e.checkpoint)
    finally:
        uninstall_preemption_handlers()
    return ('done', _final_state(runner))


def _assert_same(a, b):
    assert a['iter'] == b['iter'] and a['epoch'] == b['epoch']
    assert a['model'].keys() == b['model'].keys()
    for k in a['model']:
        assert torch.equal(a['model'][k], b['model'][k]), k
    assert a['momentum'].keys() == b['momentum'].keys()
    for k in a['momentum']:
        assert torch.equal(a['momentum'][k], b['momentum'][k]), k
    assert a['sched'] == b['sched']


@pytest.mark.parametrize('method', ['interclr', 'invp'])
def test_preempt_resume_equals_uninterrupted_1proc(method, tmp_path):
    ref = _train(method, str(tmp_path / 'ref'))
    assert ref[0] == 'done' and ref[1]['iter'] == EPOCHS * N // BATCH
    work = str(tmp_path / 'w')
    # mid-epoch 2 (iteration 6 of 8), the signal sent twice
    out = _train(method, work, signal_at=6, times=2)
    assert out[:2] == ('preempted', 6)
    assert out[2] == osp.join(work, 'iter_6.pth')
    assert open(osp.join(work, 'last_checkpoint')).read() == out[2]
    assert not [n for n in os.listdir(work) if n.endswith('.tmp')]
    ckpt = torch.load(out[2])  # complete, loads safely
    assert ckpt['meta']['preempted'] == 'SIGUSR1'
    assert ckpt['train_state']['epoch_batches_done'] == 2
    done = _train(method, work, resume=True)
    assert done[0] == 'done'
    _assert_same(ref[1], done[1])


class _DistCall:
    """Picklable ``fn(rank, world_size, method, work)`` with kwargs."""

    def __init__(self, kwargs):
        self.kwargs = kwargs

    def __call__(self, rank, world_size, method, work):
        return _train(method, work, world_size=world_size, **self.kwargs)


@pytest.mark.parametrize('method', ['interclr', 'invp'])
def test_preempt_resume_equals_uninterrupted_2proc(method, tmp_path):
    ref = run_in_processes(_DistCall({}), 2, args=(method,
                                                   str(tmp_path / 'ref')),
                           timeout=240)
    work = str(tmp_path / 'w')
    # only rank 1 is signalled, after iteration 3 of 8 (mid-epoch 1): both
    # ranks stop there
    out = run_in_processes(_DistCall(dict(signal_at=3, signal_rank=1)), 2,
                           args=(method, work), timeout=240)
    assert out[0][:2] == out[1][:2] == ('preempted', 3)
    ckpt = torch.load(osp.join(work, 'iter_3.pth'))
    assert len(ckpt['train_state']['rng']) == 2  # both ranks' states
    done = run_in_processes(_DistCall(dict(resume=True)), 2,
                            args=(method, work), timeout=240)
    for r in range(2):
        assert done[r][0] == 'done'
        _assert_same(ref[r][1], done[r][1])
    # the replicated state (weights, banks, queues) is the same on both
    # ranks; BatchNorm running statistics are per rank (no buffer
    # broadcast) and were compared per rank above
    for k, v in done[0][1]['model'].items():
        if 'running_' not in k and 'num_batches' not in k:
            assert torch.equal(v, done[1][1]['model'][k]), k


def test_resume_with_changed_config_is_refused(tmp_path):
    work = str(tmp_path / 'w')
    assert _train('invp', work, signal_at=2)[0] == 'preempted'
    with pytest.raises(ConfigChangedError) as e:
        _train('invp', work, resume=True, cfg_options={
            'optim_wrapper.optimizer.lr': 0.5,
            'model.loss.n_pos': 3})
    msg = str(e.value)
    assert 'optim_wrapper.optimizer.lr (0.06 -> 0.5)' in msg
    assert 'model.loss.n_pos (4 -> 3)' in msg and '2 key(s)' in msg
    # on purpose: allowed
    out = _train('invp', work, resume=True, cfg_options={
        'optim_wrapper.optimizer.lr': 0.5,
        'default_hooks.preemption.allow_config_change': True})
    assert out[0] == 'done'


def test_config_differences_names_keys():
    a = Config(dict(model=dict(type='X', lr=[1, 2]), resume=False))
    b = Config(dict(model=dict(type='X', lr=[1, 3], extra=1), resume=True,
                    load_from='x.pth'))
    assert config_differences(a.pretty_text, b) == [
        'model.extra (new: 1)', 'model.lr.1 (2 -> 3)']
    assert config_differences(a.pretty_text, a) == []


def test_signal_before_first_iteration(tmp_path):
    """A signal that arrives before training starts (during the Runner's
    set-up) stops in before_train: nothing is written, status preempted."""
    work = str(tmp_path / 'w')

    class Early(Hook):
        def before_train(self, runner):
            os.kill(os.getpid(), signal.SIGTERM)
    from mmengine.runner import Runner
    cfg = tiny_recipe('invp', work)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(Early(), priority='HIGHEST')
    try:
        with pytest.raises(TrainingPreempted) as e:
            runner.train()
    finally:
        uninstall_preemption_handlers()
    assert e.value.checkpoint is None and e.value.iteration == 0
    assert not [n for n in os.listdir(work) if n.endswith('.pth')]


def test_resave_after_the_epoch_resumes_at_the_next_epoch(tmp_path):
    """CheckpointHook's ``save_best`` re-saves the epoch's checkpoint after
    validation, when ``runner.epoch`` has already moved on (meta epoch ==
    runner.epoch). That file holds a complete epoch: resuming it with one
    more epoch trains that whole epoch (it trained 0 iterations once)."""
    from mmengine.runner import Runner
    work = str(tmp_path / 'w')
    cfg = tiny_recipe('invp', work)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
        runner.save_checkpoint(work, 'epoch_2.pth',
                               meta=dict(epoch=EPOCHS, iter=runner.iter))
    finally:
        uninstall_preemption_handlers()
    ckpt = torch.load(osp.join(work, 'epoch_2.pth'), map_location='cpu',
                      weights_only=False)
    assert ckpt['train_state']['epoch_batches_done'] == 0
    per_epoch = N // BATCH
    out = _train('invp', work, resume=True, cfg_options={
        'train_cfg.max_epochs': EPOCHS + 1,
        'default_hooks.preemption.allow_config_change': True})
    assert out[0] == 'done'
    assert out[1]['iter'] == (EPOCHS + 1) * per_epoch
    assert out[1]['epoch'] == EPOCHS + 1
