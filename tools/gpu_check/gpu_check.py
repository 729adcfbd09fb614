"""GPU validation kit of mmssl_ext: one run that exercises every CUDA path
the CPU test suite cannot, and writes ``gpu_check.json`` and
``gpu_check.md`` to ``--out``.

Checks (each item records pass / fail / skipped and its error; one failing
item never stops the others; a time guard starts no item that would end
past ``--budget-s``):

1. ``digits``: every digits recipe (and its base) trains on the device in
   fp32 and AMP (``AmpOptimWrapper``): finite losses, every model tensor
   (banks, labels, centroids, queues, neighbour tables) on the device, a
   resume from the last checkpoint restores identical state, and the device
   checkpoint loads into a CPU model (strict, identical) that then trains
   a step.
2. ``imagenet``: the ImageNet-1k ResNet-50 recipes at 224 px, batch 32,
   real bank lengths and cluster counts, on a stand-in data set of the real
   length: images/s, peak memory, ratio to the base.
3. ``kmeans``: torch k-means 1.28M x 128, K=10,000, 20 iterations;
   InterCLR's semi-hard pool and InvP's background search over 1.28M rows.
4. ``ddp``: two processes on the one device (NCCL tried, gloo fallback)
   train the InterCLR and InvP digits recipes; state identical on both.

``--device cpu --tiny`` runs the same code with tiny sizes in well under a
minute (the test suite does, so the kit cannot rot).

    python tools/gpu_check/gpu_check.py --out work_dirs/gpu_check
    python tools/gpu_check/gpu_check.py --device cpu --tiny --out /tmp/gc
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))

CHECKS = ('kmeans', 'imagenet', 'digits', 'ddp')
#: (check, part): the order items start in; the guard drops the tail first
PHASES = (('kmeans', None), ('imagenet', 'targets'), ('digits', 'fp32'),
          ('ddp', None), ('digits', 'amp'), ('imagenet', 'rest'))

FULL = dict(
    digits=dict(n=1280, batch=64, epochs=2, resume_epochs=1, workers=4,
                est_fp32=12, est_amp=8),
    imagenet=dict(n=1281167, batch=32, img_size=224, warmup=5, timed=20,
                  est=12),
    kmeans=dict(n=1281167, dim=128, k=10000, iters=20, pool_n=1281167,
                pool_k=10000, batch=32, pool=128000, neg=16384,
                background=4096, calls=5, dc_dim=2048, dc_pca=256, est=40),
    ddp=dict(n=1280, batch=32, timeout=300, est=90),
)
TINY = dict(
    digits=dict(n=16, batch=8, img_size=16, n_val=16, epochs=2,
                resume_epochs=1, workers=0, est_fp32=5, est_amp=3),
    imagenet=dict(n=256, batch=4, img_size=32, warmup=1, timed=2, est=10),
    kmeans=dict(n=2000, dim=128, k=20, iters=5, pool_n=2000, pool_k=20,
                batch=8, pool=200, neg=50, background=64, calls=2,
                dc_dim=64, dc_pca=16, est=5),
    ddp=dict(n=16, batch=4, img_size=16, timeout=240, est=40),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', choices=('cuda', 'cpu'), default=None,
                   help='default: cuda when available, else cpu')
    p.add_argument('--tiny', action='store_true',
                   help='tiny sizes (the CPU mode of the test suite)')
    p.add_argument('--out', default='work_dirs/gpu_check',
                   help='folder of gpu_check.json / gpu_check.md')
    p.add_argument('--work-dir', default=None,
                   help='scratch folder (checkpoints); default: a temp dir')
    p.add_argument('--budget-s', type=float, default=None,
                   help='time guard in seconds (default 420, tiny 300)')
    p.add_argument('--checks', default=','.join(CHECKS),
                   help=f'comma list among {",".join(CHECKS)}')
    p.add_argument('--rows', default='',
                   help='comma list of recipe rows to keep: ROW in every '
                   'check, CHECK:ROW in one (digits, imagenet, ddp); '
                   'default all')
    p.add_argument('--precisions', default='fp32,amp',
                   help='digits precisions (amp needs CUDA)')
    p.add_argument('--forbid-modules', default='mmcv.ops,mmdet,faiss',
                   help='imports that must not be needed (they fail during '
                   "the run); '' allows all")
    p.add_argument('--workers', type=int, default=None,
                   help='digits data-loader workers (default 4, tiny 0)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    forbid = tuple(m for m in args.forbid_modules.split(',') if m)
    sys.path.insert(0, HERE)
    from gpu_checks.common import Budget, env_info, setup_process
    setup_process(forbid)
    import torch
    mode = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if mode == 'cuda' and not torch.cuda.is_available():
        print('gpu_check: --device cuda but torch sees no GPU',
              file=sys.stderr)
        return 2
    if mode == 'cpu':
        torch.set_num_threads(int(os.environ.get(
            'OMP_NUM_THREADS', max(1, min(4, os.cpu_count() or 1)))))
    sizes = TINY if args.tiny else FULL
    if args.workers is not None:
        sizes['digits']['workers'] = args.workers
    budget = Budget(args.budget_s or (300. if args.tiny else 420.))
    checks = [c for c in args.checks.split(',') if c]
    bad = set(checks) - set(CHECKS)
    if bad:
        print(f'gpu_check: unknown checks {sorted(bad)}', file=sys.stderr)
        return 2
    rows = set(r for r in args.rows.split(',') if r)
    precisions = [p for p in args.precisions.split(',') if p]
    work_root = args.work_dir or tempfile.mkdtemp(prefix='gpu_check_')
    os.makedirs(work_root, exist_ok=True)

    from gpu_checks import report as rep
    report = dict(
        kit=1, started=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        mode=dict(device=mode, tiny=args.tiny, full_scale=not args.tiny,
                  budget_s=budget.total_s, forbid=list(forbid),
                  checks=checks, rows=sorted(rows), sizes=sizes),
        env=env_info(mode),
        checks={c: dict(items=[]) for c in CHECKS})

    def save():
        report['wall_s'] = round(budget.elapsed(), 1)
        rep.write(report, args.out)

    save()
    for check, part in PHASES:
        if check not in checks:
            continue
        items = report['checks'][check]['items']
        print(f'[gpu_check {budget.elapsed():6.0f}s] {check}'
              f'{" " + part if part else ""}', flush=True)
        RUNNERS[check](items, part, mode, sizes[check], budget, rows,
                       precisions, forbid, work_root, save, report)
    report['finished'] = time.strftime('%Y-%m-%dT%H:%M:%S%z')
    save()
    if args.work_dir is None:
        shutil.rmtree(work_root, ignore_errors=True)
    s = report['summary']
    print(f'[gpu_check {budget.elapsed():6.0f}s] done: {s["pass"]} passed, '
          f'{s["fail"]} failed, {s["skipped"]} skipped -> '
          f'{osp.join(args.out, "gpu_check.md")}', flush=True)
    for t in report['targets']:
        print(f'  target: {t["target"]}: {t["value"]} met={t["met"]}')
    return 0 if s['fail'] == 0 else 1


def keep(rows, check: str, row: str) -> bool:
    """``--rows`` filter: ``row`` keeps it in every check, ``check:row``
    only in that check; an empty filter keeps all."""
    return not rows or row in rows or f'{check}:{row}' in rows


def _log(item):
    print(f'    {item["name"]}: {item["status"]} ({item.get("seconds", 0)}s)'
          + (f' {item.get("reason", "")}' if item['status'] == 'skipped'
             else ''), flush=True)
    if item['status'] == 'fail':
        text = '; '.join(item.get('problems') or []) or item.get('error', '')
        print('      ' + text.strip().replace('\n', '\n      ')[-2500:],
              flush=True)


def run_digits(items, part, mode, s, budget, rows, precisions, forbid,
               work_root, save, report):
    from gpu_checks import digits
    from gpu_checks.common import device_of, run_item
    from gpu_checks.rows import digits_table
    device = device_of(mode)
    amp = part == 'amp'
    if ('amp' if amp else 'fp32') not in precisions:
        return
    for row, config, base in digits_table():
        if not keep(rows, 'digits', row):
            continue
        name = f'{row}/{part}'
        it = run_item(
            items, budget, name,
            lambda: digits.run_row(row, config, base, amp, device, s,
                                   work_root),
            s['est_amp'] if amp else s['est_fp32'], on_update=save, row=row,
            base=base, precision=part)
        _log(it)


def run_imagenet(items, part, mode, s, budget, rows, precisions, forbid,
                 work_root, save, report):
    from gpu_checks import imagenet
    from gpu_checks.common import device_of, run_item
    from gpu_checks.rows import IMAGENET, IMAGENET_FIRST
    device = device_of(mode)
    for row, config, base, overrides, note in IMAGENET:
        if (part == 'targets') != (row in IMAGENET_FIRST):
            continue
        if not keep(rows, 'imagenet', row):
            continue
        it = run_item(
            items, budget, row,
            lambda: imagenet.run_row(row, config, base, overrides, note,
                                     device, s, work_root),
            s['est'], on_update=save, base=base, note=note)
        _log(it)


def run_kmeans(items, part, mode, s, budget, rows, precisions, forbid,
               work_root, save, report):
    from gpu_checks import scale
    from gpu_checks.common import device_of, run_item
    device = device_of(mode)
    full = s['n'] == 1281167
    name = 'kmeans-1.28M-x128-K10000' if full else 'kmeans-x128'
    for n, fn, est in (
            (name, lambda: scale.kmeans_item(device, s['n'], s['dim'],
                                             s['k'], s['iters']), s['est']),
            ('interclr-semihard-pool', lambda: scale.semihard_item(
                device, s['pool_n'], s['pool_k'], s['batch'], s['pool'],
                s['neg'], s['calls']), 10),
            ('invp-background-search', lambda: scale.background_item(
                device, s['pool_n'], s['batch'], s['background'],
                s['calls']), 10),
            ('kmeans-deepcluster-pca', lambda: scale.kmeans_item(
                device, s['n'], s['dc_dim'], s['k'], s['iters'],
                pca_dim=s['dc_pca']), s['est'] + 20)):
        _log(run_item(items, budget, n, fn, est, on_update=save))


def run_ddp(items, part, mode, s, budget, rows, precisions, forbid,
            work_root, save, report):
    from gpu_checks import ddp
    from gpu_checks.common import Skip, diff_states, run_item
    from gpu_checks.rows import DDP_ROWS
    check = report['checks']['ddp']
    check.setdefault('tried', [])
    todo = [r for r in DDP_ROWS if keep(rows, 'ddp', r)]
    if not todo:
        return
    if mode == 'cuda':
        def probe():
            res = ddp.probe_nccl()
            check['tried'].append(res)
            return res
        _log(run_item(items, budget, 'probe-nccl-2-ranks-1-gpu', probe, 30,
                      on_update=save))
    works = [t['backend'] for t in check['tried'] if t['works']]
    backend = works[0] if works else 'gloo'
    if mode == 'cuda' and not works:
        check['tried'].append(dict(backend='gloo', works=None,
                                   note='fallback (CUDA tensors through '
                                   'host memory)'))
    check['backend'] = backend
    box = {}

    def train():
        if not budget.allow(s['est']):
            raise Skip('time guard')
        settings = dict(n=s['n'], batch=s['batch'],
                        img_size=s.get('img_size', 32),
                        work_root=os.path.join(work_root, 'ddp'))
        box['res'] = ddp.train_two_ranks(
            backend, todo, settings, mode, forbid,
            timeout=min(s['timeout'], max(60., budget.left())))
        return dict(backend=backend)

    launch = run_item(items, budget, f'two-ranks-{backend}', train,
                      s['est'], on_update=save, backend=backend)
    _log(launch)
    if launch['status'] == 'pass':
        for t in check['tried']:
            if t['backend'] == 'gloo' and t['works'] is None:
                t['works'] = True
    res = box.get('res')
    for row in todo:
        def compare(row=row):
            if res is None:
                raise Skip('the two-rank run did not finish')
            r0, r1 = res[0][row], res[1][row]
            diffs = diff_states(r0['state'], r1['state'])
            problems = [f'ranks differ: {d}' for d in diffs]
            for r, x in ((0, r0), (1, r1)):
                if not x['losses']['finite']:
                    problems.append(f'rank {r}: non-finite losses')
                if x['world'] != 2 or x['wrapper'] != \
                        'MMDistributedDataParallel':
                    problems.append(f'rank {r}: world {x["world"]}, '
                                    f'wrapper {x["wrapper"]}')
            return dict(row=row, backend=backend, identical=not diffs,
                        iterations=r0['losses']['iterations'],
                        device=r0['device'], compared_keys=len(r0['state']),
                        problems=problems)
        _log(run_item(items, budget, f'{row}/{backend}', compare, 0,
                      on_update=save))


RUNNERS = dict(digits=run_digits, imagenet=run_imagenet, kmeans=run_kmeans,
               ddp=run_ddp)

if __name__ == '__main__':
    sys.exit(main())
