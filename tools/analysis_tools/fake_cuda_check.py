"""Every shipped recipe, trained for a few iterations on fake CUDA on the
CPU (:mod:`mmssl_ext.testing.fake_cuda`): device mismatches and host
synchronisations, with file:line, per recipe.

Each recipe runs through MMEngine's Runner as ``tools/train.py`` would run
it (all hooks, ``before_train`` and epoch-end work included) with its
structure kept and its sizes shrunk: the digits recipes on ``--n`` evenly
spaced training digits, the others on a stand-in data set of ``--n``
random images of ``--img-size`` px (the GPU kit's
``GpuCheckSyntheticImages``), batch ``--batch`` (default: 8 samples, batch
4, one epoch of two iterations, as the test runs it), the sizes tied to the
training-set length (bank lengths, cluster counts, negative pools, InvP's
background set) scaled to ``--n`` (the GPU kit's ``scale_dataset_sizes``),
and every iteration-interval of a hook set to 1, so that each hook's
per-iteration action runs in the checked iterations.

Usage::

    python tools/analysis_tools/fake_cuda_check.py            # all recipes
    python tools/analysis_tools/fake_cuda_check.py --only invp,interclr
    python tools/analysis_tools/fake_cuda_check.py --markdown syncs.md

Exit status 1 when a recipe fails (a device mismatch anywhere, a host
synchronisation of mmssl_ext in a training iteration that is not on
``ALLOWED_SYNCS``, or an exception).
"""
import argparse
import contextlib
import glob
import itertools
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from typing import Dict, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
KIT = osp.join(ROOT, 'tools', 'gpu_check')

#: iteration intervals of hooks set to 1 for the check
_ITER_KNOBS = {
    'ClusterMemoryHook': dict(centroids_update_interval=1,
                              deal_with_small_clusters_interval=1,
                              evaluate_interval=1),
    'DiagnosticsHook': dict(interval=1),
}


def recipes() -> List[str]:
    """Every shipped training recipe (repository-relative paths)."""
    found = []
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                       recursive=True):
        rel = osp.relpath(p, ROOT)
        parts = rel.split(os.sep)
        if '_base_' in parts or parts[1] == 'benchmarks':
            continue
        found.append(rel)
    return sorted(found)


def _kit():
    """The GPU kit's helpers, its stand-in data set registered and the
    digits arrays memoised (not its process-wide config-text patch: the
    check runs inside the test suite)."""
    if KIT not in sys.path:
        sys.path.insert(0, KIT)
    import functools

    from gpu_checks import common, synthetic  # noqa: F401
    from mmssl_ext.datasets import digits
    if not hasattr(digits.load_digits_arrays, 'cache_info'):
        digits.load_digits_arrays = functools.lru_cache(maxsize=4)(
            digits.load_digits_arrays)
    return common


@contextlib.contextmanager
def _plain_config_text():
    """MMEngine formats the whole config with yapf (~0.2 s) each time a
    runner starts; the check never reads that text: the unformatted dict
    while a recipe runs, restored afterwards."""
    import pprint

    from mmengine.config import Config
    old = Config.__dict__['pretty_text']
    Config.pretty_text = property(
        lambda self: pprint.pformat(self.to_dict(), width=100))
    try:
        yield
    finally:
        Config.pretty_text = old


def _full_length(model: dict) -> Optional[int]:
    from gpu_checks.common import walk_dicts
    found = []
    walk_dicts(model, lambda d: found.append(d['length'])
               if isinstance(d.get('length'), int) else None)
    return found[0] if found else None


def build_cfg(config: str, work_dir: str, n: int, batch: int,
              img_size: int):
    """The recipe's config, shrunk as the module docstring says, and the
    dict of what was scaled."""
    common = _kit()
    name = osp.splitext(osp.basename(config))[0]
    if config.endswith('_digits.py') or config.endswith('_digits-canvas.py'):
        from gpu_checks import digits
        cfg, scaled = digits.build_cfg(config, work_dir, name, n, batch,
                                       epochs=2, workers=0, amp=False)
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                            interval=-1, save_last=False)
    else:
        from gpu_checks.imagenet import count_views
        cfg = common.load_config(config)
        common.no_validation(cfg)
        common.quiet(cfg, work_dir, name)
        full = _full_length(cfg.model)
        scaled = common.scale_dataset_sizes(cfg.model, full,
                                            n) if full else {}
        ds = cfg.train_dataloader.dataset
        inner = ds.dataset if ds.get(
            'type') == 'ContrastiveCropDataset' else ds
        views, multi = count_views(inner.get('pipeline'))
        stand_in = dict(type='mmssl_ext.GpuCheckSyntheticImages', length=n,
                        num_views=views, img_size=img_size,
                        multi_view=multi)
        if inner is ds:
            cfg.train_dataloader.dataset = stand_in
        else:
            ds.dataset = stand_in
        for h in cfg.get('custom_hooks', None) or []:
            if 'extract_dataloader' in h:
                h.extract_dataloader.update(num_workers=0,
                                            persistent_workers=False,
                                            batch_size=batch)
                h.extract_dataloader['dataset'] = dict(
                    stand_in, num_views=1, multi_view=False)
            if 'num_workers' in h:
                h.num_workers = 0
            # ContrastiveCrop's box refresh runs the data set's own test
            # pipeline, which the stand-in images cannot feed: it keeps the
            # recipe's warm-up (no refresh in the checked epoch); the
            # digits recipes check the refresh on real images
        cfg.train_dataloader.update(batch_size=batch, num_workers=0,
                                    persistent_workers=False,
                                    drop_last=True)
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                            interval=-1, save_last=False)
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            cfg.optim_wrapper.type = 'OptimWrapper'  # fp32 on fake CUDA
            cfg.optim_wrapper.pop('loss_scale', None)

    def groups(d):
        if isinstance(d.get('num_groups'), int) and d['num_groups'] > batch:
            scaled['num_groups'] = [d['num_groups'], batch]
            d['num_groups'] = batch

    common.walk_dicts(cfg.model, groups)
    for h in cfg.get('custom_hooks', None) or []:
        h.update(_ITER_KNOBS.get(h.get('type'), {}))
    if 'diagnostics' in cfg.default_hooks:
        cfg.default_hooks.diagnostics.update(_ITER_KNOBS['DiagnosticsHook'])
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    # a fresh MMEngine logger / message hub / visualizer per run
    cfg.experiment_name = f'{name}-fake-cuda-{next(_RUNS)}'
    return cfg, scaled


_RUNS = itertools.count()


class _Done(Exception):
    pass


def run_recipe(config: str, n: int = 8, batch: int = 4,
               img_size: int = 32, iters: Optional[int] = None,
               work_root: Optional[str] = None,
               fake=None) -> Dict:
    """Train ``config`` (shrunk) on fake CUDA: one epoch of ``n // batch``
    iterations (``before_train`` and the epoch-end work included), or the
    first ``iters`` iterations.

    Returns a dict: ``ok``, ``events`` (every event), ``unexpected``
    (failures), ``syncs_per_iter`` (host syncs of mmssl_ext in the last
    iteration; ``framework_syncs_per_iter`` those of the base framework),
    ``seconds`` and ``error`` (a traceback) when it raised.
    """
    import torch
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from mmssl_ext.testing.fake_cuda import FakeCuda
    fc = fake or FakeCuda()
    iters = iters or n // batch
    t0 = time.perf_counter()
    own_root = work_root is None
    work_root = work_root or tempfile.mkdtemp(prefix='fake_cuda_')
    out = dict(config=config, ok=False, events=[], unexpected=[],
               syncs_per_iter=None, framework_syncs_per_iter=None,
               error=None)

    done = []

    class Start(Hook):
        priority = 'HIGHEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter >= iters:  # after the first epoch's end work
                raise _Done()
            fc.phase = f'iter{runner.iter + 1}'

    class End(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            fc.phase = 'between'
            done.append(runner.iter + 1)

    try:
        work_dir = osp.join(work_root, osp.basename(config)[:-3])
        cfg, scaled = build_cfg(config, work_dir, n, batch, img_size)
        out['scaled'] = scaled
        torch.manual_seed(0)
        with _plain_config_text():
            runner = Runner.from_cfg(cfg)
            runner.register_hook(Start())
            runner.register_hook(End())
            fc.to_cuda(runner.model)
            fc.phase = 'setup'
            try:
                with fc:
                    runner.train()
            except _Done:
                pass
        out['ok'] = True
    except Exception:  # noqa: B902 - reported per recipe
        out['error'] = traceback.format_exc()
    finally:
        fc.phase = ''
        if own_root:
            shutil.rmtree(work_root, ignore_errors=True)
    last = f'iter{iters}'
    out['events'] = fc.events
    out['unexpected'] = fc.unexpected(
        [f'iter{i + 1}' for i in range(iters)])
    out['syncs_per_iter'] = len(fc.syncs(phase=last, owner='mmssl_ext'))
    out['framework_syncs_per_iter'] = len(
        fc.syncs(phase=last, owner='framework'))
    mine = fc.syncs(phase=last, owner='mmssl_ext')
    out['allowed_per_iter'] = sum(1 for e in mine if e.allowed_reason())
    out['periodic_per_iter'] = sum(
        1 for e in mine
        if (e.allowed_reason() or '').startswith('periodic'))
    out['data_dependent_per_iter'] = sum(
        1 for e in mine
        if (e.allowed_reason() or '').startswith('data-dependent'))
    out['iters'] = iters
    out['iterations_run'] = len(done)
    out['ok'] = out['ok'] and not out['unexpected'] and len(done) == iters
    out['seconds'] = round(time.perf_counter() - t0, 2)
    return out


def _site_table(results: List[Dict]) -> List[str]:
    c = Counter()
    recipes_of = {}
    for r in results:
        last = f'iter{r["iters"]}'
        for e in r['events']:
            if e.is_sync and e.owner == 'mmssl_ext' and e.phase == last:
                key = (e.where, e.func, e.what, e.allowed_reason() or '')
                c[key] += 1
                recipes_of.setdefault(key, set()).add(r['config'])
    lines = ['| site | function | what | recipes | allowed because |',
             '| --- | --- | --- | ---: | --- |']
    for (where, func, what, why), _ in sorted(c.items()):
        lines.append(f'| `{where}` | `{func}` | {what} | '
                     f'{len(recipes_of[(where, func, what, why)])} | '
                     f'{why or "-"} |')
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--only', default='',
                   help='comma-separated substrings of recipe paths')
    p.add_argument('--n', type=int, default=8)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--img-size', type=int, default=32)
    p.add_argument('--iters', type=int, default=None,
                   help='stop after this many iterations (default: one '
                   'epoch of n / batch)')
    p.add_argument('--markdown', default='',
                   help='also write the per-recipe table here')
    p.add_argument('-v', '--verbose', action='store_true',
                   help='print every distinct event')
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from mmssl_ext.testing.fake_cuda import summarize
    todo = recipes()
    if args.only:
        keys = args.only.split(',')
        todo = [c for c in todo if any(k in c for k in keys)]
    results, bad = [], 0
    rows = ['| recipe | mmssl_ext syncs / iteration | of which periodic | '
            'of which data-dependent | not allowed | framework syncs / '
            'iteration | mismatches | result |',
            '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    for config in todo:
        r = run_recipe(config, n=args.n, batch=args.batch,
                       img_size=args.img_size, iters=args.iters)
        results.append(r)
        mism = sum(1 for e in r['events'] if e.kind == 'mismatch')
        status = 'pass' if r['ok'] else 'FAIL'
        bad += not r['ok']
        print(f'{status} {config}: {r["syncs_per_iter"]} mmssl_ext syncs '
              f'per iteration ({r["allowed_per_iter"]} allowed), '
              f'{r["framework_syncs_per_iter"]} framework, {mism} '
              f'mismatches, {r["seconds"]} s', flush=True)
        if r['error']:
            print(r['error'][-3000:])
        for e in r['unexpected']:
            print(f'    {e}')
        if args.verbose:
            for line in summarize(r['events']):
                print(f'    {line}')
        rows.append(f'| `{config}` | {r["syncs_per_iter"]} | '
                    f'{r["periodic_per_iter"]} | '
                    f'{r["data_dependent_per_iter"]} | '
                    f'{r["syncs_per_iter"] - r["allowed_per_iter"]} | '
                    f'{r["framework_syncs_per_iter"]} | {mism} | '
                    f'{status} |')
    print(f'{len(todo) - bad}/{len(todo)} recipes pass')
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write('\n'.join(rows + [''] + _site_table(results)) + '\n')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
