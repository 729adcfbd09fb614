"""Speed / memory of the shared machinery (not a test).

Measures, on this machine:

1. k-means, N=100,000 x D=128, K=1,000, 20 Lloyd iterations, random init:
   faiss backend, torch backend, scikit-learn ``KMeans(algorithm='lloyd',
   n_init=1, max_iter=20, tol=0)``; all libraries limited to the same number
   of threads (``--threads``).
2. ``FeatureMemory.update`` of a batch of 256 into an N=1,000,000 x 128
   bank (ms per call, peak extra RSS).
3. The semi-hard negative pool of InterCLR: top-``pool`` (default 10 % of
   the bank = 100,000) of 256 queries against the same bank with
   ``knn_search`` (torch, chunked; and faiss), time per call and peak extra
   RSS (the bank itself excluded).

Peak extra memory = the process' peak RSS during the call (VmHWM, reset
through /proc/self/clear_refs) minus the RSS before it.

Prints a table and writes ``benchmarks/results/machinery.json``.

    python benchmarks/bench_machinery.py [--threads 1] [--quick]

``--sweep``: the same operations as the bank grows, N = 10^3 .. 10^6
(D = 128): memory update (B = 256), similarity + top-k pool (B = 256
queries, pool = N / 10 as InterCLR's 128,000 of 1.28M), k-means with faiss,
torch and scikit-learn at equal iterations (K = min(1000, N / 10),
``--sweep-iters`` Lloyd iterations), and kNN evaluation (1,000 labelled
queries, k = 200, sigma 0.07); time and peak extra memory per call, written
to ``benchmarks/results/machinery_scaling.{json,png}`` (one log-log plot of
time against N).

    python benchmarks/bench_machinery.py --sweep [--sweep-max 1000000]

One thread by default: on a loaded 2-core machine OpenMP spin-waiting made
faiss 10x slower with 2 threads than with 1.
"""
import argparse
import json
import os
import os.path as osp
import platform
import time

import numpy as np
import torch


def _rss_kib(field='VmRSS'):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


def _reset_peak():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def measure(fn, repeat=1):
    """(seconds per call (best of ``repeat``), peak extra MiB, result)."""
    best, peak, out = float('inf'), 0., None
    for _ in range(repeat):
        base = _rss_kib()
        _reset_peak()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        peak = max(peak, (_rss_kib('VmHWM') - base) / 1024)
        best = min(best, dt)
    return best, peak, out


def bench_kmeans(n, d, k, iters, threads, rows):
    from mmssl_ext.models.utils.kmeans import kmeans
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    res = {}
    try:
        import faiss
        faiss.omp_set_num_threads(threads)
        t, m, r = measure(lambda: kmeans(x, k, num_iters=iters,
                                         backend='faiss', seed=0))
        res['faiss'] = t
        rows.append((f'kmeans faiss N={n} D={d} K={k} it={iters}', t, m))
    except ImportError:
        rows.append(('kmeans faiss (not installed)', float('nan'), 0.))
    t, m, r = measure(lambda: kmeans(x, k, num_iters=iters, backend='torch',
                                     seed=0))
    res['torch'] = t
    rows.append((f'kmeans torch N={n} D={d} K={k} it={iters}', t, m))
    try:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits
        xn = x.numpy()

        def _sk():
            with threadpool_limits(limits=threads):
                return KMeans(n_clusters=k, init='random', n_init=1,
                              max_iter=iters, tol=0., algorithm='lloyd',
                              random_state=0).fit(xn)

        t, m, r = measure(_sk)
        res['sklearn'] = t
        res['sklearn_iters'] = int(r.n_iter_)
        rows.append((f'kmeans sklearn N={n} D={d} K={k} it={r.n_iter_}', t,
                     m))
    except ImportError:
        rows.append(('kmeans sklearn (not installed)', float('nan'), 0.))
    return res


def bench_memory(n, d, b, pool, rows, quick):
    from mmssl_ext.models.memories import FeatureMemory
    from mmssl_ext.models.utils.knn import knn_search
    res = {}
    mem = FeatureMemory(n, d, momentum=0.5)
    g = torch.Generator().manual_seed(1)
    idx = torch.randperm(n, generator=g)[:b]
    f = torch.randn(b, d, generator=g)
    mem.update(idx, f)  # warm-up
    t, m, _ = measure(lambda: mem.update(idx, f), repeat=20)
    res['memory_update_ms'] = t * 1e3
    res['memory_update_peak_mib'] = m
    rows.append((f'FeatureMemory.update B={b} N={n} D={d}', t, m))
    q = torch.nn.functional.normalize(f, dim=1)
    backends = ['torch'] + (['faiss'] if not quick else [])
    for backend in backends:
        try:
            t, m, out = measure(lambda: knn_search(q, mem.bank, pool,
                                                   backend=backend))
        except ImportError:
            continue
        res[f'semihard_pool_{backend}_s'] = t
        res[f'semihard_pool_{backend}_peak_mib'] = m
        rows.append((f'semi-hard pool top-{pool} ({backend}) B={b} N={n}',
                     t, m))
    return res


def sweep(args):
    """Cost against bank size N (log-log), every shared operation."""
    from mmssl_ext.evaluation.functional import knn_classify
    from mmssl_ext.models.memories import FeatureMemory
    from mmssl_ext.models.utils.kmeans import kmeans
    from mmssl_ext.models.utils.knn import knn_search
    try:
        import faiss
        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        faiss = None
    try:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits
    except ImportError:
        KMeans = None
    d, b, iters = 128, 256, args.sweep_iters
    sizes = [n for n in (10**3, 10**4, 10**5, 10**6) if n <= args.sweep_max]
    points = []  # dict(op, n, seconds, peak_mib)

    def add(op, n, fn, repeat=1):
        t, m, _ = measure(fn, repeat=repeat)
        points.append(dict(op=op, n=n, seconds=t, peak_extra_mib=m))
        tt = f'{t * 1e3:.2f} ms' if t < 1 else f'{t:.2f} s'
        print(f'{op:<34} N={n:>8} {tt:>11} {m:>7.0f} MiB', flush=True)

    for n in sizes:
        g = torch.Generator().manual_seed(n)
        mem = FeatureMemory(n, d, momentum=0.5)
        idx = torch.randperm(n, generator=g)[:b]
        f = torch.randn(idx.numel(), d, generator=g)
        mem.update(idx, f)
        add('memory update (B=256)', n, lambda: mem.update(idx, f),
            repeat=10)
        q = torch.nn.functional.normalize(torch.randn(b, d, generator=g),
                                          dim=1)
        pool = max(1, n // 10)
        add('similarity + top-(N/10) pool, torch', n,
            lambda: knn_search(q, mem.bank, pool, backend='torch'))
        k = min(1000, n // 10)
        x = torch.randn(n, d, generator=g)
        if faiss is not None:
            add('k-means faiss (K=min(1000,N/10))', n,
                lambda: kmeans(x, k, num_iters=iters, backend='faiss',
                               seed=0))
        add('k-means torch (K=min(1000,N/10))', n,
            lambda: kmeans(x, k, num_iters=iters, backend='torch', seed=0))
        if KMeans is not None:
            xn = x.numpy()

            def _sk():
                with threadpool_limits(limits=args.threads):
                    return KMeans(n_clusters=k, init='random', n_init=1,
                                  max_iter=iters, tol=0., algorithm='lloyd',
                                  random_state=0).fit(xn)
            add('k-means scikit-learn (K=min(1000,N/10))', n, _sk)
        labels = torch.randint(0, 10, (n, ), generator=g)
        queries = torch.randn(1000, d, generator=g)
        add('kNN evaluation (1000 queries)', n,
            lambda: knn_classify(mem.bank, labels, queries, 10,
                                 k=min(200, n), sigma=0.07))
        del mem, x
    out = dict(machine=dict(platform=platform.platform(),
                            cpus=os.cpu_count(), threads=args.threads,
                            torch=torch.__version__),
               d=d, batch=b, kmeans_iters=iters, points=points)
    base = osp.splitext(args.out)[0]
    base = base if base.endswith('_scaling') else base + '_scaling'
    with open(base + '.json', 'w') as fh:
        json.dump(out, fh, indent=2)
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for op in dict.fromkeys(p['op'] for p in points):
            ps = [p for p in points if p['op'] == op]
            ax.loglog([p['n'] for p in ps], [p['seconds'] for p in ps],
                      marker='o', label=op)
        ax.set_xlabel('bank size N (D = 128)')
        ax.set_ylabel('seconds per call')
        ax.set_title(f'shared machinery, {args.threads} thread(s), '
                     f'k-means {iters} iterations')
        ax.grid(True, which='both', alpha=.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(base + '.png', dpi=100)
    except ImportError:
        pass
    print(f'wrote {base}.json / .png')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--quick', action='store_true',
                    help='10x smaller problems (smoke run)')
    ap.add_argument('--out', default=osp.join(
        osp.dirname(osp.abspath(__file__)), 'results', 'machinery.json'))
    ap.add_argument('--sweep', action='store_true',
                    help='cost against N = 10^3 .. 10^6 (log-log plot)')
    ap.add_argument('--sweep-max', type=int, default=10**6)
    ap.add_argument('--sweep-iters', type=int, default=10)
    args = ap.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    torch.set_num_threads(args.threads)
    if args.sweep:
        return sweep(args)
    s = 10 if args.quick else 1
    rows = []
    km = bench_kmeans(100_000 // s, 128, 1000 // s, 20, args.threads, rows)
    mem = bench_memory(1_000_000 // s, 128, 256, 100_000 // s, rows,
                       args.quick)
    ratios = {}
    if 'faiss' in km and 'sklearn' in km:
        ratios['sklearn_over_faiss'] = km['sklearn'] / km['faiss']
    if 'faiss' in km:
        ratios['torch_over_faiss'] = km['torch'] / km['faiss']
    print(f'\n{"operation":<58} {"time/call":>11} {"peak extra":>11}')
    print('-' * 82)
    for name, t, m in rows:
        tt = f'{t * 1e3:.2f} ms' if t < 1 else f'{t:.2f} s'
        print(f'{name:<58} {tt:>11} {m:>8.0f} MiB')
    for k, v in ratios.items():
        print(f'{k}: {v:.2f}x')
    out = dict(
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(),
                     threads=args.threads, torch=torch.__version__),
        quick=args.quick,
        kmeans=km, memory=mem, ratios=ratios,
        rows=[dict(name=n, seconds=t, peak_extra_mib=m) for n, t, m in rows])
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
