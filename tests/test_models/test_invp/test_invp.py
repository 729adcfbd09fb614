"""InvP algorithm: loss values, bank update and neighbour refresh checked by
hand on a tiny model, the ramp-up read from the message hub, bad input,
and exact resume with a real Runner (bank, neighbour table, losses)."""
import copy
import math
import uuid

import pytest
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.runner import Runner
from mmpretrain.structures import DataSample

from mmssl_ext.models.memories import check_memories
from mmssl_ext.registry import MODELS

EPS = 1e-7
T = 0.2
M = 8
K = 2
N_POS = 3

MODEL = dict(
    type='InvP',
    memory=dict(type='NeighbourMemory', length=16, feat_dim=8,
                num_neighbours=K, momentum=0.5, init='uniform'),
    ramp_up='none',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                  base_channels=4, norm_cfg=dict(type='BN'),
                  zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
              out_channels=8, with_avg_pool=True),
    loss=dict(type='InvPLoss', temperature=T, n_background=M,
              diffusion_layer=2, n_pos=N_POS))


def _model(**kw):
    cfg = copy.deepcopy(MODEL)
    for k, v in kw.items():
        if k in ('loss', 'memory'):
            cfg[k].update(v)
        else:
            cfg[k] = v
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _samples(idx):
    return [DataSample(metainfo=dict(sample_idx=int(i))) for i in idx]


def _batch(seed, n=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g)


@pytest.fixture
def hub():
    h = MessageHub.get_instance(f'invp-test-{uuid.uuid4().hex[:8]}')
    yield h


def _hand_losses(v, idx, bank, neigh):
    """Both terms computed element by element in float64 from the rules:
    top-M background, 2-hop concatenated candidates, n_pos least similar,
    exclusive denominator."""
    v, bank = v.double(), bank.double()
    ins, inv = [], []
    for r in range(v.size(0)):
        i = int(idx[r])
        s = [math.exp(float(v[r] @ bank[j]) / T) for j in range(len(bank))]
        top = sorted(range(len(bank)), key=lambda j: -s[j])[:M]
        bg_sum = sum(s[j] for j in top)
        ins.append(-math.log(s[i] / bg_sum + EPS))
        hop1 = [int(j) for j in neigh[i]]
        cand = hop1 + [int(j) for h in hop1 for j in neigh[h]]
        pos = sorted(s[j] for j in cand)[:N_POS]
        inv.append(-math.log(sum(pos) / (bg_sum - s[i]) + EPS))
    return sum(ins) / len(ins), sum(inv) / len(inv)


def _hand_neighbours(v, idx, bank):
    out = []
    for r in range(v.size(0)):
        i = int(idx[r])
        sims = (bank.double() @ v[r].double()).tolist()
        order = sorted(range(len(bank)), key=lambda j: -sims[j])[:K + 1]
        row = [order[K] if j == i else j for j in order][:K]
        out.append(row)
    return out


def test_loss_keys_finite_and_backward():
    model = _model()
    losses = model.loss([_batch(0)], _samples([0, 5, 9, 15]))
    assert set(losses) == {'loss_ins', 'loss_inv', 'inv_weight', 'inv_term',
                           'num_pos'}
    total = losses['loss_ins'] + losses['loss_inv']
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    for key in ('inv_weight', 'inv_term', 'num_pos'):
        assert not losses[key].requires_grad
    assert losses['num_pos'].item() == N_POS


def test_losses_bank_update_and_neighbours_by_hand():
    model = _model()
    x, idx = _batch(1), torch.tensor([3, 7, 0, 12])
    # step 1: the table is all zeros -> every candidate is sample 0
    for step, (x, idx) in enumerate([(x, idx),
                                     (_batch(2), torch.tensor([0, 3, 9,
                                                               14]))]):
        old_bank = model.memory.bank.clone()
        old_neigh = model.memory.neighbours.clone()
        with torch.no_grad():
            v = model.embed(x)  # train-mode BN: same batch, same features
        losses = model.loss([x], _samples(idx))
        ins, inv = _hand_losses(v, idx, old_bank, old_neigh)
        assert losses['loss_ins'].item() == pytest.approx(ins, rel=1e-5)
        # ramp_up='none': weight = lambda_inv = 0.6
        assert losses['inv_weight'].item() == pytest.approx(0.6)
        assert losses['inv_term'].item() == pytest.approx(inv, rel=1e-5)
        assert losses['loss_inv'].item() == pytest.approx(0.6 * inv,
                                                          rel=1e-5)
        # bank: normalize(0.5 * old + 0.5 * v) on the batch rows only
        new_bank = model.memory.bank
        for r, i in enumerate(idx.tolist()):
            blend = 0.5 * old_bank[i] + 0.5 * v[r]
            torch.testing.assert_close(new_bank[i], blend / blend.norm())
        others = [j for j in range(16) if j not in idx.tolist()]
        assert torch.equal(new_bank[others], old_bank[others])
        # neighbour rows of the batch from the OLD bank, anchor excluded
        assert model.memory.neighbours[idx].tolist() == _hand_neighbours(
            v, idx, old_bank)
        assert torch.equal(model.memory.neighbours[others], old_neigh[others])
        if step == 0:
            assert (old_neigh == 0).all()


def test_memory_momentum_converts_authors_m():
    # authors' m weights the OLD entry; ours weights the new one: m=0.8 ->
    # memory.momentum=0.2
    model = _model(memory=dict(momentum=0.2))
    x, idx = _batch(3), torch.tensor([1, 2, 4, 8])
    old = model.memory.bank.clone()
    with torch.no_grad():
        v = model.embed(x)
    model.loss([x], _samples(idx))
    blend = 0.8 * old[idx] + 0.2 * v
    torch.testing.assert_close(model.memory.bank[idx],
                               F.normalize(blend, dim=1))


def test_uniform_bank_init_is_authors():
    model = _model(memory=dict(init='uniform'))
    a = 1 / math.sqrt(8 / 3)
    bank = model.memory.bank
    assert bank.abs().max() <= a and bank.min() < 0
    # not normalised, but with norms near 1 (E|row|^2 = D a^2 / 3 = 1)
    assert not torch.allclose(bank.norm(dim=1), torch.ones(16))
    assert 0.5 < bank.norm(dim=1).mean() < 1.5
    unit = _model(memory=dict(init='random')).memory.bank
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(16))


@pytest.mark.parametrize('epoch,weight', [(0, 0.), (29, 0.), (30, 0.6),
                                          (31, 0.6)])
def test_binary_ramp_up_reads_message_hub_epoch(hub, epoch, weight):
    model = _model(ramp_up='binary', ramp_epochs=30)
    hub.update_info('epoch', epoch)
    losses = model.loss([_batch(4)], _samples([0, 1, 2, 3]))
    assert losses['inv_weight'].item() == pytest.approx(weight)
    assert losses['loss_inv'].item() == pytest.approx(
        weight * losses['inv_term'].item(), rel=1e-6)
    assert losses['loss_inv'].requires_grad == (weight > 0)


def test_gaussian_ramp_up(hub):
    model = _model(ramp_up='gaussian', ramp_epochs=30)
    hub.update_info('epoch', 14)  # authors' epoch 15: exp(-5 * 0.5^2)
    assert model.invariance_weight() == pytest.approx(0.6 * math.exp(-1.25))


def test_lambda_zero_is_background_npid(hub):
    model = _model(lambda_inv=0.0)
    x, idx = _batch(5), torch.tensor([2, 4, 6, 8])
    old_bank = model.memory.bank.clone()
    with torch.no_grad():
        v = model.embed(x)
    losses = model.loss([x], _samples(idx))
    assert set(losses) == {'loss_ins'}
    ins, _ = _hand_losses(v, idx, old_bank, model.memory.neighbours)
    assert losses['loss_ins'].item() == pytest.approx(ins, rel=1e-5)


def test_state_is_in_state_dict():
    sd = _model().state_dict()
    assert sd['memory.bank'].shape == (16, 8)
    assert sd['memory.neighbours'].shape == (16, K)
    assert sd['memory.neighbours'].dtype == torch.long


def test_memory_length_check_names_the_key():
    model = _model()
    check_memories(model, 16)
    with pytest.raises(ValueError, match='model.memory.length=16'):
        check_memories(model, 20)


# ------------------------------- bad input --------------------------------
@pytest.mark.parametrize('kw,key', [
    (dict(memory=dict(length=0)), 'length'),
    (dict(memory=dict(length=6)), 'n_background'),
    (dict(loss=dict(n_background=2)), 'n_background'),
    (dict(memory=dict(init='zeros')), 'init'),
    (dict(ramp_up='linear'), 'ramp_up'),
    (dict(lambda_inv=-1.), 'lambda_inv'),
    (dict(memory=dict(num_neighbours=0)), 'num_neighbours'),
    (dict(memory=dict(momentum=0.)), 'momentum'),
    (dict(loss=dict(temperature=0.)), 'temperature'),
    (dict(loss=dict(propagation='dfs')), 'propagation'),
    (dict(loss=dict(denominator='x')), 'denominator'),
    (dict(head=dict(type='ContrastiveHead')), 'head'),
])
def test_bad_config_names_the_key(kw, key):
    with pytest.raises(ValueError, match=key):
        _model(**kw)


def test_bad_batches_name_the_problem():
    model = _model()
    x = _batch(6)
    with pytest.raises(ValueError, match='one augmented view'):
        model.loss([x, x], _samples([0, 1, 2, 3]))
    with pytest.raises(ValueError, match='PackInputs'):
        model.loss([x], [DataSample() for _ in range(4)])
    with pytest.raises(ValueError, match='memory.length'):
        model.loss([x], _samples([0, 1, 2, 16]))
    wrong = _model()
    wrong.neck.mlp[2] = torch.nn.Linear(16, 5)
    with pytest.raises(ValueError, match='feat_dim'):
        wrong.loss([x], _samples([0, 1, 2, 3]))


# ------------------------ Runner: monitor and resume ----------------------
DATA = dict(type='SyntheticImageDataset', num_samples=32, num_classes=4,
            img_size=16)
LOADER = dict(num_workers=0, persistent_workers=False,
              collate_fn=dict(type='default_collate'))


class Record(Hook):
    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({k: float(v.detach()) for k, v in outputs.items()})


def _runner(work_dir, max_epochs, resume_from=None, save_best=True):
    record = Record()
    model = copy.deepcopy(MODEL)
    model['memory'].update(length=32)
    model.update(ramp_up='binary', ramp_epochs=1,
                 data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                        mean=[127.5] * 3, std=[127.5] * 3,
                                        to_rgb=False))
    runner = Runner(
        model=model,
        work_dir=work_dir,
        experiment_name=f'invp-{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            batch_size=8, drop_last=True,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(DATA, pipeline=[
                dict(type='MultiView', num_views=1, transforms=[[]]),
                dict(type='PackInputs')]), **LOADER),
        val_dataloader=dict(
            batch_size=16, sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(DATA, seed=1, pipeline=[dict(type='PackInputs')]),
            **LOADER),
        val_evaluator=dict(type='KNNAccuracy', topk=(1, )),
        val_cfg=dict(type='MemoryBankKNNValLoop', k=5, sigma=0.07),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9, weight_decay=5e-4)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        custom_hooks=[record],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1,
                            save_best='knn/top1', rule='greater')
            if save_best else None),
        randomness=dict(seed=0, deterministic=True),
        resume=resume_from is not None,
        load_from=resume_from,
        default_scope='mmssl_ext')
    return runner, record


def _state(runner):
    from mmpretrain.utils import get_ori_model
    m = get_ori_model(runner.model)
    return m.memory.bank.clone(), m.memory.neighbours.clone()


def test_resume_is_exact_and_monitor_runs(tmp_path):
    full, rec_full = _runner(str(tmp_path / 'full'), 2)
    full.train()
    bank_full, neigh_full = _state(full)
    assert len(rec_full.losses) == 8
    # epoch 0: invariance off (binary ramp-up, 1 epoch); epoch 1: on
    assert all(r['inv_weight'] == 0 for r in rec_full.losses[:4])
    assert all(r['inv_weight'] == pytest.approx(0.6)
               for r in rec_full.losses[4:])
    # monitor logged and the best checkpoint saved
    assert 'val/knn/top1' in full.message_hub.log_scalars
    assert list((tmp_path / 'full').glob('best_knn_top1_epoch_*.pth'))

    half, _ = _runner(str(tmp_path / 'half'), 1)
    half.train()
    ckpt = str(tmp_path / 'half' / 'epoch_1.pth')
    sd = torch.load(ckpt)['state_dict']
    assert 'memory.neighbours' in sd and 'memory.bank' in sd
    resumed, rec_res = _runner(str(tmp_path / 'half'), 2, resume_from=ckpt)
    resumed.train()
    bank_res, neigh_res = _state(resumed)
    assert len(rec_res.losses) == 4
    for a, b in zip(rec_full.losses[4:], rec_res.losses):
        assert a == b
    assert torch.equal(bank_full, bank_res)
    assert torch.equal(neigh_full, neigh_res)
    # the table was refreshed for every sample by then
    assert (neigh_full != 0).any(1).all()


def test_monitor_rejects_bank_of_wrong_length(tmp_path):
    runner, _ = _runner(str(tmp_path), 1)
    from mmpretrain.utils import get_ori_model
    model = get_ori_model(runner.model)
    # a bank of 32 rows against a 40-sample training set
    runner.val_loop.label_dataset = dict(DATA, num_samples=40, pipeline=[])
    with pytest.raises(ValueError, match='model.memory.length=32'):
        runner.val_loop.run()
    assert model.memory.bank.size(0) == 32


def _pixels(model, inputs):
    return inputs.flatten(1)


def test_monitor_classifies_against_the_bank(tmp_path):
    """The loop's bank is the memory's ``bank`` buffer, row i
    labelled with training sample i. Bank = the training images' pixels,
    queries = the same images: k=1 finds each query's own row -> 100 %;
    rows rolled by one (labels misaligned) -> 0 %."""
    from mmpretrain.utils import get_ori_model

    from mmssl_ext.utils.extract import extract_features
    runner, _ = _runner(str(tmp_path), 1, save_best=False)
    runner.val_loop.dataloader = Runner.build_dataloader(
        dict(batch_size=16, sampler=dict(type='DefaultSampler',
                                         shuffle=False),
             dataset=dict(DATA, pipeline=[dict(type='PackInputs')]),
             **LOADER), seed=0)
    runner.val_loop.k, runner.val_loop.feature = 1, _pixels
    model = get_ori_model(runner.model)
    pixels = extract_features(runner.model, runner.val_loop.dataloader,
                              _pixels, progress=False)
    model.memory.bank = pixels
    assert runner.val_loop.run()['knn/top1'] == pytest.approx(100.0)
    # labels are i % 4: rolling the rows by one mislabels every row
    model.memory.bank = pixels.roll(1, 0)
    assert runner.val_loop.run()['knn/top1'] == pytest.approx(0.0)


def test_diagnostics_by_hand():
    """neighbour_precision over the refreshed rows of a hand-made table;
    positive_precision over the positives propagation + hard selection
    would pick (bank rows as anchor features)."""
    model = _model(memory=dict(length=8, num_neighbours=2),
                   loss=dict(n_background=4, diffusion_layer=1, n_pos=1))
    assert model.diagnostics(torch.zeros(8, dtype=torch.long)) == {}
    true = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    bank = torch.zeros(8, model.memory.feat_dim)
    bank[:, 0] = 1.
    bank[2, 0], bank[2, 1] = 0.6, 0.8   # sample 2 is far from everyone
    with torch.no_grad():
        model.memory.bank.copy_(bank)
        model.memory.neighbours.zero_()
        model.memory.neighbours[1] = torch.tensor([0, 2])  # 2 of 2 same label
        model.memory.neighbours[5] = torch.tensor([4, 0])  # 1 of 2
    out = model.diagnostics(true)
    assert out['neighbour_precision'] == pytest.approx(3 / 4)
    # hard positive (least similar candidate): row 1 -> 2 (label 0, same),
    # row 5 -> 4 and 0 tie at similarity 1; topk picks one of them
    assert out['positive_precision'] in (pytest.approx(1.0),
                                         pytest.approx(0.5))
    with torch.no_grad():
        model.memory.neighbours[5] = torch.tensor([2, 0])  # both other label
    out = model.diagnostics(true)
    assert out['neighbour_precision'] == pytest.approx(2 / 4)
    # row 5 -> least similar of {2, 0} is 2 (label 0): not the same label
    assert out['positive_precision'] == pytest.approx(1 / 2)
