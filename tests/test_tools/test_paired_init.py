"""Every method / base pair of the digits benchmark starts from the same
weights: the backbone (and every other module the two share) of the
method's initial state is bit-identical to the base's, whatever the
method's extra modules draw from the random stream, and the runner really
trains from that state."""
import os.path as osp
import sys

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import digits_rows as dr  # noqa: E402

PAIRS = sorted(dr.BASE.items()) + sorted(
    (r, b) for r, b in dr.MATRIX_BASE.items() if r not in dr.MATRIX_SAME_AS)


def _states(row, base, seed, tmp_path):
    import mmssl_ext  # noqa: F401
    cfg, _ = dr.prepare(row, seed, 2, str(tmp_path))
    bcfg, _ = dr.prepare(base, seed, 2, str(tmp_path))
    dr.paired_init(cfg, row, seed, str(tmp_path / 'm'), bcfg)
    dr.paired_init(bcfg, base, seed, str(tmp_path / 'b'))
    m = torch.load(cfg.load_from, weights_only=True)['state_dict']
    b = torch.load(bcfg.load_from, weights_only=True)['state_dict']
    return m, b


@pytest.mark.parametrize('row,base', PAIRS)
def test_pair_starts_from_identical_shared_weights(row, base, tmp_path):
    m, b = _states(row, base, 0, tmp_path)
    backbone = [k for k in b if k.startswith('backbone.')]
    assert backbone, base
    for k in backbone:  # the whole backbone, bit for bit
        assert k in m, f'{row}: backbone key {k} missing'
        assert torch.equal(m[k], b[k]), f'{row}: {k} differs from {base}'
    # the momentum encoder too where both have one (under either name)
    mom_m = [k for k in m if k.startswith(('encoder_k.', 'momentum_encoder.'))]
    mom_b = [k for k in b if k.startswith(('encoder_k.', 'momentum_encoder.'))]
    if mom_m and mom_b:
        strip = lambda k: k.split('.', 1)[1]  # noqa: E731
        bm = {strip(k): v for k, v in b.items() if k in mom_b}
        for k in mom_m:
            if strip(k) in bm and bm[strip(k)].shape == m[k].shape:
                assert torch.equal(m[k], bm[strip(k)]), f'{row}: {k}'
    # the projection neck where the method keeps the base's
    for k in b:
        if k.startswith('neck.') and k in m and m[k].shape == b[k].shape:
            assert torch.equal(m[k], b[k]), f'{row}: {k}'


def test_seeds_differ_and_methods_keep_their_own_modules(tmp_path):
    m0, b0 = _states('interclr', 'mocov2', 0, tmp_path / 's0')
    m1, _ = _states('interclr', 'mocov2', 1, tmp_path / 's1')
    k = 'backbone.conv1.weight'
    assert not torch.equal(m0[k], m1[k])
    own = [k for k in m0 if k not in b0 and not k.startswith(
        ('encoder_k.', 'queue'))]
    assert own, 'InterCLR has modules of its own (memory, inter head)'


def test_runner_trains_from_the_paired_state(tmp_path):
    """Through MMEngine's runner (init_weights, then ``load_from``): the
    two models' backbones are equal before the first step."""
    import mmssl_ext  # noqa: F401
    from mmengine.runner import Runner
    models = []
    bcfg, _ = dr.prepare('mocov2', 3, 1, str(tmp_path / 'b'))
    for row in ('interclr', 'mocov2'):
        cfg, _ = dr.prepare(row, 3, 1, str(tmp_path / row))
        dr.paired_init(cfg, row, 3, str(tmp_path / 'init' / row),
                       bcfg if row == 'interclr' else None)
        runner = Runner.from_cfg(cfg)
        runner._init_model_weights()
        runner.load_or_resume()
        models.append(runner.model.state_dict())
    a, b = models
    for k in b:
        if k.startswith('backbone.'):
            assert torch.equal(a[k], b[k]), k
