"""Browse a config's data set as its pipeline produces the samples.

    python tools/analysis_tools/browse_dataset.py CONFIG
        [--phase {train,val,test}] [--output-dir DIR] [--show]
        [--show-number N | --indices I ...]
        [--mode {original,transformed,concat,pipeline}]
        [--channel-order {auto,BGR,RGB}] [--rescale-factor F]
        [--cfg-options k=v ...]

One PNG per sample in ``--output-dir`` (``<index>_<file name>.png``):

* ``original``: the image as the data set hands it to the pipeline (or as
  the loading transform reads it), pixel for pixel (``--rescale-factor``
  to enlarge tiny images);
* ``transformed``: what the pipeline makes of it, just before packing; a
  multi-view pipeline (``MultiView``) shows every view;
* ``concat``: both side by side;
* ``pipeline``: the image after every transform.

The data set is built in the config's own ``default_scope`` after its
``custom_imports`` (MMPretrain's browser forces the ``mmpretrain`` scope,
which cannot find this package's data sets such as ``DigitsDataset``), and
wrappers such as ``ContrastiveCropDataset`` are looked through to the
pipeline. ``--channel-order auto`` reads the data preprocessor: pipelines
whose preprocessor converts BGR to RGB hold BGR images and are flipped for
display.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

MODES = ('original', 'transformed', 'concat', 'pipeline')


def parse_args(argv: Optional[Sequence[str]] = None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--phase', '-p', choices=['train', 'val', 'test'],
                   default='train',
                   help='whose dataloader: <phase>_dataloader.dataset')
    p.add_argument('--output-dir', '-o', default=None,
                   help='write one PNG per sample here')
    p.add_argument('--show', action='store_true',
                   help='display each sample (needs a display)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--show-number', '-n', type=int, default=10,
                   help='the first N samples (default 10)')
    g.add_argument('--indices', type=int, nargs='+',
                   help='these data-set indices')
    p.add_argument('--mode', '-m', choices=MODES, default='transformed')
    p.add_argument('--channel-order', '-c', choices=['auto', 'BGR', 'RGB'],
                   default='auto',
                   help='channel order of the pipeline images (auto: from '
                   'the config\'s data preprocessor)')
    p.add_argument('--rescale-factor', '-r', type=float, default=None,
                   help='enlarge (or shrink) the images by this factor')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def build_dataset_in_scope(cfg, phase: str):
    """Build ``<phase>_dataloader.dataset`` in the config's default scope
    (after its ``custom_imports``)."""
    from mmengine.registry import DATASETS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    import mmssl_ext  # noqa: F401  (registries)
    if cfg.get('custom_imports', None):
        import_modules_from_strings(**cfg['custom_imports'])
    scope = cfg.get('default_scope', None) or 'mmssl_ext'
    init_default_scope(scope)
    key = f'{phase}_dataloader'
    loader = cfg.get(key, None)
    if not loader or loader.get('dataset', None) is None:
        raise ValueError(f'{cfg.filename} has no {key}.dataset (choose '
                         'another --phase)')
    return DATASETS.build(loader['dataset']), scope


def find_pipeline_holder(dataset):
    """The data set (or wrapped data set) that owns the pipeline."""
    d, seen = dataset, 0
    while d is not None and seen < 16:
        if callable(getattr(d, 'pipeline', None)):
            return d
        d, seen = getattr(d, 'dataset', None), seen + 1
    raise TypeError(f'{type(dataset).__name__} has no pipeline (nor does a '
                    'data set it wraps)')


def bgr_pipeline(cfg) -> bool:
    """True if the config's data preprocessor turns BGR into RGB, i.e. the
    pipeline images are BGR (images read by mmcv); False if it keeps the
    channels (e.g. in-memory RGB data sets)."""
    for holder in (cfg.get('model', None) or {}, cfg):
        pre = holder.get('data_preprocessor', None)
        if pre:
            return bool(pre.get('to_rgb', False) or pre.get('bgr_to_rgb',
                                                            False))
    return True  # mmcv's loaders read BGR


class RecordingPipeline:
    """Run a pipeline transform by transform and keep the ``img`` after
    each step: ``records`` = ``[(name, img), ...]``."""

    def __init__(self, pipeline):
        self.transforms = list(getattr(pipeline, 'transforms', [pipeline]))
        self.records: List = []

    def __call__(self, data):
        if 'img' in data:
            self.records.append(('original', _copy(data['img'])))
        for t in self.transforms:
            data = t(data)
            if data is None:
                return None
            if 'img' in data:
                name = type(t).__name__
                if not self.records:
                    name = f'original ({name})'
                self.records.append((name, _copy(data['img'])))
        return data


def _copy(img):
    return [np.array(i) for i in img] if isinstance(img, list) else \
        np.array(img)


def to_display(img, bgr: bool, rescale: Optional[float] = None):
    """An HWC uint8 RGB image for display (lists: one per view)."""
    if isinstance(img, list):
        return [to_display(i, bgr, rescale) for i in img]
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if bgr and img.shape[2] == 3:
        img = img[..., ::-1]
    if rescale and rescale != 1:
        from PIL import Image
        h, w = img.shape[:2]
        size = (max(1, round(w * rescale)), max(1, round(h * rescale)))
        img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize(
            size, Image.NEAREST))
    return np.ascontiguousarray(img)


def draw_grid(columns, title: str, out: Optional[str], show: bool):
    """``columns`` = ``[(name, img | [views])]``; one column each, views
    stacked."""
    import matplotlib
    if not show:
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = max(len(c[1]) if isinstance(c[1], list) else 1 for c in columns)
    fig, axes = plt.subplots(rows, len(columns), squeeze=False,
                             figsize=(2.4 * len(columns), 2.4 * rows + 0.4))
    for j, (name, img) in enumerate(columns):
        views = img if isinstance(img, list) else [img]
        for r in range(rows):
            ax = axes[r, j]
            ax.axis('off')
            if r < len(views):
                ax.imshow(views[r])
                label = name if len(views) == 1 else f'{name} [{r}]'
                ax.set_title(f'{label}\n{views[r].shape[1]}x'
                             f'{views[r].shape[0]}', fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    if out:
        fig.savefig(out, dpi=100)
    if show:
        plt.show()
    plt.close(fig)


def _label(item, classes) -> str:
    ds = item.get('data_samples') if isinstance(item, dict) else None
    gt = getattr(ds, 'gt_label', None)
    if gt is None or len(gt) == 0:
        return ''
    c = int(gt[0])
    name = classes[c] if classes is not None and 0 <= c < len(classes) \
        else str(c)
    return f' label {name}'


def browse_dataset(cfg, phase: str = 'train', output_dir: Optional[str] = None,
                   show: bool = False, indices: Optional[Sequence[int]] = None,
                   number: int = 10, mode: str = 'transformed',
                   channel_order: str = 'auto',
                   rescale_factor: Optional[float] = None) -> List[dict]:
    """Draw the samples; returns one dict per sample: ``index``, ``out``
    (PNG written or None) and ``records`` (``[(step, image), ...]`` as the
    pipeline produced them, before any display conversion)."""
    if mode not in MODES:
        raise ValueError(f'--mode must be one of {MODES}, got {mode!r}')
    if not output_dir and not show:
        raise ValueError('give --output-dir (PNG files) and/or --show')
    dataset, scope = build_dataset_in_scope(cfg, phase)
    holder = find_pipeline_holder(dataset)
    recorder = RecordingPipeline(holder.pipeline)
    holder.pipeline = recorder
    bgr = bgr_pipeline(cfg) if channel_order == 'auto' else \
        channel_order == 'BGR'
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if indices is None:
        indices = range(min(number, len(dataset)))
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
    results = []
    for idx in indices:
        if not 0 <= idx < len(dataset):
            raise IndexError(f'index {idx} is outside the {phase} set '
                             f'(length {len(dataset)})')
        recorder.records = []
        item = dataset[idx]
        records = recorder.records
        if not records:
            raise ValueError(f'the {phase} pipeline never produced an "img" '
                             'to show')
        info = dataset.get_data_info(idx) if hasattr(
            dataset, 'get_data_info') else {}
        path = info.get('img_path') if isinstance(info, dict) else None
        stem = osp.splitext(osp.basename(path))[0] if path else 'sample'
        out = osp.join(output_dir, f'{idx:05d}_{stem}.png') if output_dir \
            else None
        title = f'{phase} #{idx}{_label(item, classes)} ({scope} scope)'
        first, last = records[0], records[-1]
        if mode == 'original' and not show:
            from PIL import Image
            Image.fromarray(to_display(first[1], bgr, rescale_factor)).save(
                out)
        else:
            cols = {'original': [first], 'transformed': [last],
                    'concat': [first, last], 'pipeline': records}[mode]
            cols = [(n, to_display(i, bgr, rescale_factor)) for n, i in cols]
            draw_grid(cols, title, out, show)
        results.append(dict(index=idx, out=out, records=records))
    return results


def main(argv: Optional[Sequence[str]] = None):
    args = parse_args(argv)
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    res = browse_dataset(cfg, args.phase, args.output_dir, args.show,
                         args.indices, args.show_number, args.mode,
                         args.channel_order, args.rescale_factor)
    if args.output_dir:
        print(f'{len(res)} images written to {args.output_dir}')
    return res


if __name__ == '__main__':
    main()
