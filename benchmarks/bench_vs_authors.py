"""Per-step training cost of this package against the authors' own code,
side by side in one process on the CPU with one thread.

    OMP_NUM_THREADS=1 python benchmarks/bench_vs_authors.py \
        --authors-root DIR [--methods invp cld ccrop] [--steps 7] \
        [--batch N | METHOD=N ...] [--profile] [--out JSON] [--merge]

``DIR`` holds snapshots of the authors' repositories (they are not part of
this package and nothing of them is copied into it; their modules are
imported from ``DIR`` at run time):

    DIR/InvariancePropagation      github.com/WangFeng18/InvariancePropagation
    DIR/CLD-UnsupervisedLearning   github.com/frank-xwang/CLD-UnsupervisedLearning
    DIR/ContrastiveCrop            github.com/xyupeng/ContrastiveCrop

(``--invp-src`` / ``--cld-src`` / ``--ccrop-src`` point at one directly). A
method whose snapshot is missing is skipped with a message saying where it
was looked for; with none present the script exits 0 without timing.

For each method both sides get the same CIFAR ResNet-18 (3x3 stem, no
max-pool; the authors' and MMPretrain's ``ResNet_CIFAR`` are the same
network), the same batch size, bank and hyper-parameters (those of this
package's CIFAR-10 recipe, which follow the authors' commands), and the very
same batches: random uint8 images and sample indices drawn once; ours go
through its data preprocessor inside ``train_step`` (as in training), the
authors' side gets that preprocessor's output (their loaders normalise in
the worker processes). Steps are alternated (ours, theirs, then theirs,
ours, ...) after one warm-up step each, and the table reports medians of
process CPU time (one thread, so it survives a busy machine better than
wall time; wall-clock medians are in the JSON).

* ``invp``: ``InvP`` (``configs/invp/invp_resnet18-cifar_1xb128-coslr-800e_
  cifar10.py``) against ``objective.InvariancePropagationLoss`` +
  ``MemoryBank_v1`` + ``models.resnet_cifar.ResNet18(non_linear_head=1)``
  run as ``main.py``'s ``train()`` does (loss, backward, SGD step, bank
  update); both past the ramp-up (invariance weight 0.6).
* ``cld``: ``NPIDCLD`` (``configs/cld/cld-npid_resnet18-cifar_1xb256-
  coslr-200e_cifar10.py``) against ``models.ResNet18`` +
  ``lib.LinearAverage`` + ``spectral_clustering.KMeans`` as in
  ``train_cifar_npid_cld.py`` (fp32: their apex O1 is a GPU option). Their
  k-means hard-codes ``.cuda()``; ``Tensor.cuda`` is made the identity while
  their step runs, and their memory op is run under identity saved-tensor
  hooks (``unchecked_saved_tensors``: PyTorch 2 refuses its two-view use).
* ``ccrop``: the training step of ``configs/ccrop/ccrop-simclr_resnet18-
  cifar_1xb512-coslr-500e_cifar10.py`` against ``models.ResNet`` (fc ->
  MLP) + ``losses/NT_Xent.py`` as in ``DDP_simclr_ccrop.py`` on one process
  (plain BN, their SyncBN on one GPU), and the per-batch cost of the crop
  itself: their ``ContrastiveCrop`` transform (PIL) against ours, on the
  same images and boxes.

Modules the authors import but the timed path never uses (pandas for
InvP's log helpers, matplotlib in CLD's clustering file, diffdist for the
multi-GPU loss) are replaced by empty placeholder modules when they are not
installed; that is printed.

InterCLR is not compared: its reference implementation is the
``InterCLRMoCo`` algorithm of MMSelfSup 0.x, a package built on mmcv 1.x
(``mmcv.runner``, the 0.x builders), which cannot be installed beside the
mmcv 2.x that MMPretrain needs (both are the import package ``mmcv``), and
whose sampling code creates ``torch.cuda`` tensors.

Writes ``benchmarks/results/vs_authors.json`` (``--out``) and prints a
Markdown table.
"""
import argparse
import contextlib
import copy
import importlib
import importlib.util
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time
import types
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

#: method -> (repository directory name under --authors-root, a file that
#: must exist in it, where to get it)
SOURCES = {
    'invp': ('InvariancePropagation', 'objective.py',
             'https://github.com/WangFeng18/InvariancePropagation'),
    'cld': ('CLD-UnsupervisedLearning', 'lib/LinearAverage.py',
            'https://github.com/frank-xwang/CLD-UnsupervisedLearning'),
    'ccrop': ('ContrastiveCrop', 'datasets/transforms/ContrastiveCrop.py',
              'https://github.com/xyupeng/ContrastiveCrop'),
}
CONFIGS = {
    'invp': 'configs/invp/invp_resnet18-cifar_1xb128-coslr-800e_cifar10.py',
    'cld': 'configs/cld/cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar10.py',
    'ccrop': 'configs/ccrop/'
             'ccrop-simclr_resnet18-cifar_1xb512-coslr-500e_cifar10.py',
}
#: the epoch at which both sides are timed (0-based, MMEngine's): past
#: InvP's 30-epoch ramp-up, after CLD's 5 warm-up epochs
EPOCH = 100


# --------------------------------------------------------------------------
# bookkeeping (no snapshot needed; tested in tests/test_benchmarks)
# --------------------------------------------------------------------------
def resolve_sources(methods: Sequence[str], authors_root: Optional[str],
                    explicit: Dict[str, Optional[str]]) -> Dict[str, dict]:
    """Where each method's snapshot is, or why it is skipped.

    Returns:
        dict: method -> ``{'path': str | None, 'skip': str | None}``.
    """
    out = {}
    for m in methods:
        if m not in SOURCES:
            raise ValueError(f'unknown method {m!r}; choose from '
                             f'{sorted(SOURCES)}')
        name, marker, url = SOURCES[m]
        path = explicit.get(m)
        if path is None and authors_root is not None:
            path = osp.join(authors_root, name)
        if path is None:
            out[m] = dict(path=None, skip=(
                f'{m}: skipped, no snapshot of the authors\' code given '
                f'(--authors-root DIR with DIR/{name}, or --{m}-src; '
                f'git clone {url})'))
        elif not osp.isfile(osp.join(path, marker)):
            out[m] = dict(path=None, skip=(
                f'{m}: skipped, the authors\' code is not at {path} '
                f'({marker} missing; git clone {url} {path})'))
        else:
            out[m] = dict(path=osp.abspath(path), skip=None)
    return out


def alternate(steps: Dict[str, Callable[[int], None]], n: int,
              warmup: int = 1,
              clock: Callable[[], float] = time.process_time,
              wall: Callable[[], float] = time.perf_counter) -> dict:
    """Run ``n`` timed steps of every side, alternating the order each
    round (A B, B A, ...) after ``warmup`` untimed rounds. Each callable
    gets the step number (the batch to use).

    Returns:
        dict: side -> ``{'cpu': [s, ...], 'wall': [s, ...]}``.
    """
    names = list(steps)
    for w in range(warmup):
        for name in names:
            steps[name](w)
    out = {name: dict(cpu=[], wall=[]) for name in names}
    for r in range(n):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            c0, w0 = clock(), wall()
            steps[name](warmup + r)
            out[name]['cpu'].append(clock() - c0)
            out[name]['wall'].append(wall() - w0)
    return out


def summarize(times: dict, ours: str = 'ours',
              theirs: str = 'authors') -> dict:
    """Medians in ms and the ratio ours / authors, per clock."""
    res = {}
    for clock in ('cpu', 'wall'):
        a = 1000 * statistics.median(times[ours][clock])
        b = 1000 * statistics.median(times[theirs][clock])
        res[clock] = dict(ours_ms=a, authors_ms=b, ratio=a / b)
    return res


def batch_size(spec: Sequence[str], method: str) -> int:
    """``--batch`` entries: ``N`` (every method) or ``METHOD=N``; the
    method's own entry wins; 0 when none applies."""
    size = 0
    for item in spec:
        name, sep, value = item.rpartition('=')
        if not sep:
            size = size or int(value)
        elif name not in SOURCES:
            raise ValueError(f'--batch {item}: unknown method {name!r}')
        elif name == method:
            return int(value)
    return size


def markdown(rows: List[dict]) -> str:
    """The table of docs/benchmarks.md."""
    lines = [
        '| method | what is timed | batch | ours (ms) | authors (ms) '
        '| ours / authors |',
        '| --- | --- | --- | --- | --- | --- |',
    ]
    for r in rows:
        s = r['summary']['cpu']
        lines.append(f"| {r['method']} | {r['what']} | {r['batch']} | "
                     f"{s['ours_ms']:,.0f} | {s['authors_ms']:,.0f} | "
                     f"{s['ratio']:.3f} |")
    return '\n'.join(lines)


@contextlib.contextmanager
def authors_modules(src: str, placeholders: Sequence[str] = ()):
    """Import from the snapshot ``src``: it goes first on ``sys.path``; the
    top-level modules it defines (``models``, ``lib``, ``utils``, ...) are
    dropped from ``sys.modules`` on exit, so that the next snapshot's
    modules of the same name load fresh (the imported objects keep
    working). ``placeholders``: modules imported by the authors' files but
    not used on the timed path; an empty module stands in for each one that
    is not installed. Yields the list of placeholders used."""
    before = set(sys.modules)
    used = []
    for name in placeholders:
        parent, _, child = name.rpartition('.')
        if parent in used:
            missing = True
        else:
            try:
                missing = importlib.util.find_spec(name) is None
            except ModuleNotFoundError:
                missing = True
        if missing:
            sys.modules[name] = types.ModuleType(name)
            if parent in used:
                setattr(sys.modules[parent], child, sys.modules[name])
            used.append(name)
    sys.path.insert(0, src)
    try:
        yield used
    finally:
        sys.path.remove(src)
        for name in set(sys.modules) - before:
            mod = sys.modules[name]
            f = getattr(mod, '__file__', None) or ''
            if name in used or osp.abspath(f).startswith(src + os.sep):
                del sys.modules[name]


def load_file(path: str, name: str):
    """Import one file of a snapshot by path (without its package's
    ``__init__``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def cuda_is_identity():
    """``Tensor.cuda`` returns the tensor itself (the authors' CLD k-means
    moves its counts and centroids with ``.cuda()``)."""
    import torch
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


def unchecked_saved_tensors():
    """Identity saved-tensor hooks, under which autograd does not check
    that a saved tensor is unchanged. The authors' ``LinearAverageOp``
    updates the memory inside its backward; with two views (CLD) the second
    view's backward writes the memory that the first view's backward then
    reads, which PyTorch 2 refuses without these hooks. The arithmetic is
    theirs; only the check is skipped."""
    import torch
    return torch.autograd.graph.saved_tensors_hooks(lambda t: t,
                                                    lambda t: t)


# --------------------------------------------------------------------------
# our side
# --------------------------------------------------------------------------
def _ours(method: str, batch: int, views: int, num_batches: int, seed: int):
    """Our model, optimiser wrapper, the batches (data dicts) and the
    normalised views of each batch for the authors' side."""
    import torch
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.structures import DataSample

    import mmssl_ext  # noqa: F401
    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance(f'bench-vs-authors-{method}',
                              scope_name='mmssl_ext')
    MessageHub.get_current_instance().update_info('epoch', EPOCH)
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[method]))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    n = _dataset_length(cfg)
    g = torch.Generator().manual_seed(seed)
    batches, normalised = [], []
    for _ in range(num_batches):
        idx = torch.randperm(n, generator=g)[:batch]
        inputs = [
            torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8,
                          generator=g) for _ in range(views)
        ]
        samples = [DataSample(metainfo=dict(sample_idx=int(i)))
                   for i in idx]
        data = dict(inputs=inputs, data_samples=samples)
        with torch.no_grad():
            norm = model.data_preprocessor(copy.copy(data), True)['inputs']
        batches.append(data)
        normalised.append(([v.contiguous() for v in norm], idx))

    def step(i):
        model.train_step(batches[i % num_batches], ow)

    return cfg, model, step, normalised


def _dataset_length(cfg) -> int:
    for key in ('memory', ):
        m = cfg.model.get(key)
        if m is not None and 'length' in m:
            return int(m['length'])
    return 50000  # CIFAR-10's training set


# --------------------------------------------------------------------------
# the authors' sides
# --------------------------------------------------------------------------
def _invp_authors(src: str, cfg, normalised, log: Callable[[str], None]):
    import torch
    with authors_modules(src, placeholders=('pandas', 'tensorboardX',
                                            'sklearn', 'sklearn.metrics',
                                            'sklearn.metrics.cluster')) as ph:
        if ph:
            log(f'invp: placeholder modules (not installed, unused when '
                f'timed): {", ".join(ph)}')
        if 'sklearn.metrics.cluster' in ph:
            # objective.py imports this name at module level, never calls it
            sys.modules['sklearn.metrics.cluster'].\
                normalized_mutual_info_score = None
        objective = importlib.import_module('objective')
        resnet_cifar = importlib.import_module('models.resnet_cifar')
    loss_cfg = cfg.model.loss
    mem_cfg = cfg.model.memory
    opt = cfg.optim_wrapper.optimizer
    net = resnet_cifar.ResNet18(mem_cfg.feat_dim, non_linear_head=1)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=opt.lr,
                                momentum=opt.momentum,
                                weight_decay=opt.weight_decay)
    # their m weights the OLD row; our momentum weights the new feature
    bank = objective.MemoryBank_v1(mem_cfg.length, None, 'cpu',
                                   m=1 - mem_cfg.momentum)
    bank.random_init_bank()
    crit = objective.InvariancePropagationLoss(
        loss_cfg.temperature, n_background=loss_cfg.n_background,
        diffusion_layer=loss_cfg.diffusion_layer,
        k=mem_cfg.num_neighbours, n_pos=loss_cfg.n_pos,
        exclusive=loss_cfg.denominator == 'exclusive', InvP=True,
        hard_pos=loss_cfg.hard_positive)
    weight = cfg.model.lambda_inv * objective.BinaryRampUp(
        EPOCH + 1, cfg.model.ramp_epochs)

    def step(i):
        views, idx = normalised[i % len(normalised)]
        out = net(views[0])
        l_ins, l_inv = crit(out, idx, bank)
        loss = l_ins + weight * l_inv
        # main.py logs these three every step
        l_ins.item(), l_inv.item(), loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            bank.update_points(out.detach(), idx)

    return step


def _cld_authors(src: str, cfg, normalised, log: Callable[[str], None]):
    import torch
    from torch import nn
    with authors_modules(src, placeholders=('matplotlib',
                                            'matplotlib.pyplot')) as ph:
        if ph:
            log(f'cld: placeholder modules (not installed, unused when '
                f'timed): {", ".join(ph)}')
        resnet_cifar = importlib.import_module('models.resnet_cifar')
        linear_average = importlib.import_module('lib.LinearAverage')
        clustering = importlib.import_module('spectral_clustering')
    m = cfg.model
    opt = cfg.optim_wrapper.optimizer
    net = resnet_cifar.ResNet18(low_dim=m.memory.feat_dim, pool_len=4)
    net.train()
    lemniscate = linear_average.LinearAverage(
        m.memory.feat_dim, m.memory.length, m.temperature,
        1 - m.memory.momentum)
    optimizer = torch.optim.SGD(net.parameters(), lr=opt.lr,
                                momentum=opt.momentum,
                                weight_decay=opt.weight_decay)
    criterion = nn.CrossEntropyLoss()
    criterion_cld = nn.CrossEntropyLoss()
    head = m.group_head
    k, iters, t_g, lam = (head.num_groups, head.num_iters, head.temperature,
                          head.loss_weight)

    def step(i):
        (x1, x2), idx = normalised[i % len(normalised)]
        with cuda_is_identity():
            optimizer.zero_grad()
            f1, g1 = net(x1, two_branch=True)
            with unchecked_saved_tensors():
                out1 = lemniscate(f1, idx)
            loss_ins = criterion(out1, idx)
            f2, g2 = net(x2, two_branch=True)
            with unchecked_saved_tensors():
                out2 = lemniscate(f2, idx)
            loss_ins = (loss_ins + criterion(out2, idx)) / 2
            lab1, cen1 = clustering.KMeans(g1, K=k, Niters=iters)
            lab2, cen2 = clustering.KMeans(g2, K=k, Niters=iters)
            aff1 = torch.mm(g1, cen2.t())
            loss_cld = criterion_cld(aff1.div_(t_g), lab2)
            aff2 = torch.mm(g2, cen1.t())
            loss_cld = (loss_cld + criterion_cld(aff2.div_(t_g), lab1)) / 2
            # their group-prediction accuracy and NaN check, every step
            pred = torch.topk(aff1, 1)[1].t()
            pred.eq(lab2.view(1, -1).expand_as(pred))[0].view(
                -1).float().sum(0).mul_(100.0 / x1.size(0)).item()
            loss = loss_ins + lam * loss_cld
            bool(torch.isnan(loss))
            loss.backward()
            optimizer.step()
            loss.item(), loss_cld.item()

    return step


def _ccrop_authors(src: str, cfg, normalised, log: Callable[[str], None]):
    import torch
    from torch import nn
    with authors_modules(src, placeholders=('diffdist', )) as ph:
        if ph:
            log(f'ccrop: placeholder modules (not installed, unused when '
                f'timed): {", ".join(ph)}')
        models = importlib.import_module('models')
        nt_xent = load_file(osp.join(src, 'losses', 'NT_Xent.py'),
                            '_ccrop_authors_nt_xent')
    m = cfg.model
    opt = cfg.optim_wrapper.optimizer
    net = models.build_model(dict(type='ResNet', depth=18,
                                  num_classes=m.neck.out_channels,
                                  maxpool=False))
    dim_mlp = net.fc.weight.shape[1]
    net.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), net.fc)
    net.train()
    t = m.head.temperature
    # our loss_weight is their temperature / base_temperature
    crit = nt_xent.NT_Xent(temperature=t,
                           base_temperature=t / m.head.loss.loss_weight)
    optimizer = torch.optim.SGD(net.parameters(), lr=opt.lr,
                                momentum=opt.momentum,
                                weight_decay=opt.weight_decay)

    def step(i):
        (x1, x2), _ = normalised[i % len(normalised)]
        bsz = x1.size(0)
        feats = net(torch.cat([x1, x2], 0))
        f1, f2 = torch.split(feats, [bsz, bsz], dim=0)
        loss = crit(f1, f2)
        loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def _ccrop_crop_steps(src: str, cfg, batch: int, num_batches: int,
                      seed: int):
    """Per-batch cost of the crop alone: their transform on PIL images with
    a box each, ours on the same images (HWC uint8) and boxes."""
    import numpy as np
    import torch
    from PIL import Image

    from mmssl_ext.registry import TRANSFORMS
    crop_cfg = copy.deepcopy(cfg.train_dataloader.dataset.dataset.pipeline[
        0]['transforms'][0][0])
    ours = TRANSFORMS.build(crop_cfg)
    mod = load_file(
        osp.join(src, 'datasets', 'transforms', 'ContrastiveCrop.py'),
        '_ccrop_authors_transform')
    theirs = mod.ContrastiveCrop(alpha=crop_cfg['alpha'], size=32,
                                 scale=tuple(crop_cfg['crop_ratio_range']))
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(num_batches):
        imgs = rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
        lo = rng.uniform(0, .4, (batch, 2))
        hi = lo + rng.uniform(.2, .6, (batch, 2))
        boxes = np.concatenate([lo, np.minimum(hi, 1.)], 1)
        data.append((imgs, [Image.fromarray(x) for x in imgs], boxes))
    torch.manual_seed(seed)

    def ours_step(i):
        imgs, _, boxes = data[i % num_batches]
        for img, box in zip(imgs, boxes):
            ours.transform(dict(img=img, img_shape=img.shape[:2],
                                ccrop_box=box))

    def theirs_step(i):
        _, pil, boxes = data[i % num_batches]
        for img, box in zip(pil, boxes):
            theirs(img, box)

    return ours_step, theirs_step


AUTHORS = dict(invp=_invp_authors, cld=_cld_authors, ccrop=_ccrop_authors)
VIEWS = dict(invp=1, cld=2, ccrop=2)
WHAT = dict(
    invp='train step (forward, loss, backward, SGD, bank + kNN-table update)',
    cld='train step (NPID + CLD, two views, k-means groups, bank update)',
    ccrop='train step (SimCLR on ContrastiveCrop views)')


def _profile(step: Callable[[int], None], i: int, top: int = 12) -> str:
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(i)
    return prof.key_averages().table(sort_by='self_cpu_time_total',
                                     row_limit=top)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--authors-root', default=None,
                   help='directory holding the authors\' repositories')
    for m in SOURCES:
        p.add_argument(f'--{m}-src', default=None,
                       help=f'the {SOURCES[m][0]} snapshot (overrides '
                       '--authors-root)')
    p.add_argument('--methods', nargs='+', default=list(SOURCES),
                   choices=list(SOURCES))
    p.add_argument('--steps', type=int, default=7,
                   help='timed steps per side (after one warm-up)')
    p.add_argument('--batch', nargs='+', default=[],
                   help='batch size: N for every method, or METHOD=N '
                   '(default: each recipe\'s: InvP 128, CLD 256, '
                   'ContrastiveCrop 512)')
    p.add_argument('--merge', action='store_true',
                   help='keep the rows of the other methods already in '
                   '--out')
    p.add_argument('--num-batches', type=int, default=2,
                   help='distinct batches cycled through')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--profile', action='store_true',
                   help='print torch.profiler tables of one step per side')
    p.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                             'vs_authors.json'))
    args = p.parse_args(argv)

    sources = resolve_sources(
        args.methods, args.authors_root,
        {m: getattr(args, f'{m}_src') for m in SOURCES})
    for m, s in sources.items():
        if s['skip']:
            print(s['skip'])
    todo = [m for m in args.methods if sources[m]['path']]
    if not todo:
        print('nothing to time: no snapshot of the authors\' code found')
        return None

    import torch
    from mmengine.logging import MMLogger
    # quiet: no weight-initialisation listing for every model built
    MMLogger.get_instance('bench_vs_authors', log_level='WARNING')
    if os.environ.get('OMP_NUM_THREADS') != '1':
        print('note: set OMP_NUM_THREADS=1 as well; using '
              'torch.set_num_threads(1)')
    torch.set_num_threads(1)
    rows, notes = [], []

    def log(msg):
        print(msg)
        notes.append(msg)

    for m in todo:
        src = sources[m]['path']
        cfg = __import__('mmengine.config', fromlist=['Config']).Config.\
            fromfile(osp.join(ROOT, CONFIGS[m]))
        batch = batch_size(args.batch, m) or int(
            cfg.train_dataloader.batch_size)
        cfg, model, ours_step, normalised = _ours(
            m, batch, VIEWS[m], args.num_batches, args.seed)
        theirs_step = AUTHORS[m](src, cfg, normalised, log)
        steps = dict(ours=ours_step, authors=theirs_step)
        print(f'{m}: batch {batch}, {args.steps} alternated steps per side')
        times = alternate(steps, args.steps)
        row = dict(method=m, what=WHAT[m], batch=batch, times=times,
                   summary=summarize(times), config=CONFIGS[m])
        rows.append(row)
        if args.profile:
            for name, fn in steps.items():
                print(f'--- {m} / {name}: one step under torch.profiler')
                print(_profile(fn, 0))
        if m == 'ccrop':
            ours_crop, theirs_crop = _ccrop_crop_steps(
                src, cfg, batch, args.num_batches, args.seed)
            crop_times = alternate(
                dict(ours=ours_crop, authors=theirs_crop), args.steps)
            rows.append(dict(
                method=m, what='the crop of one view of the batch '
                '(ContrastiveCrop transform)', batch=batch,
                times=crop_times, summary=summarize(crop_times),
                config=CONFIGS[m]))
        del model, steps, ours_step, theirs_step
        print(markdown(rows))

    if args.merge and osp.isfile(args.out):
        with open(args.out) as f:
            old = json.load(f)
        rows = [r for r in old['rows'] if r['method'] not in todo] + rows
        notes = [n for n in old.get('notes', [])
                 if n.split(':')[0] not in todo] + notes
    result = dict(
        rows=rows, notes=notes, steps=args.steps, epoch=EPOCH,
        machine=dict(platform=platform.platform(),
                     processor=platform.processor(),
                     cpu_count=os.cpu_count(), torch=torch.__version__,
                     threads=torch.get_num_threads()),
        sources={m: s['path'] for m, s in sources.items()})
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print(f'\nwrote {args.out}\n')
    print(markdown(rows))
    return result


if __name__ == '__main__':
    main()
