"""Draw ContrastiveCrop boxes and a few sampled crops as a PNG grid.

Row = one training image. Column 0: the image with its current box (red,
thick) and the sampled crops (thin, coloured); the next columns: those
crops as the network sees them (resized to the transform's ``scale``,
before colour augmentation).

Boxes come from (first match):

* ``--compute-boxes``: run the box refresh of the config's
  ``ContrastiveCropHook`` now, with the model of the config (weights from
  ``--checkpoint`` if given, else the random initialisation);
* ``--checkpoint``: the ``contrastive_crop`` entry that
  ``ContrastiveCropHook`` saves in every checkpoint;
* otherwise the initial boxes (full image) with a warning.

Examples::

    python tools/analysis_tools/visualize_ccrop_boxes.py \\
        configs/ccrop/ccrop-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py \\
        --checkpoint work_dirs/.../epoch_20.pth --out ccrop_boxes.png
    python tools/analysis_tools/visualize_ccrop_boxes.py CONFIG \\
        --checkpoint CKPT --compute-boxes --num-images 6 --num-crops 5
"""
import argparse
import os.path as osp
import sys
import warnings

import numpy as np
import torch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='training config with ContrastiveCrop')
    p.add_argument('--checkpoint', help='checkpoint (boxes and/or weights)')
    p.add_argument('--compute-boxes', action='store_true',
                   help='recompute the boxes with the (checkpoint) model')
    p.add_argument('--out', default='ccrop_boxes.png', help='output PNG')
    p.add_argument('--indices', type=int, nargs='+',
                   help='data-set indices to draw (default: evenly spaced)')
    p.add_argument('--num-images', type=int, default=8)
    p.add_argument('--num-crops', type=int, default=4)
    p.add_argument('--alpha', type=float,
                   help="override the transform's alpha")
    p.add_argument('--threshold', type=float,
                   help="override the hook's threshold (--compute-boxes)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value overrides of the config')
    return p.parse_args(argv)


def _find(obj, type_name):
    if isinstance(obj, dict):
        if obj.get('type') == type_name:
            return obj
        for v in obj.values():
            r = _find(v, type_name)
            if r is not None:
                return r
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            r = _find(v, type_name)
            if r is not None:
                return r
    return None


def load_boxes(args, cfg, box_ds):
    from mmssl_ext.ccrop.hook import CKPT_KEY
    from mmssl_ext.registry import HOOKS, MODELS
    if args.compute_boxes:
        from mmengine.runner import load_checkpoint
        model = MODELS.build(cfg.model)
        if args.checkpoint:
            load_checkpoint(model, args.checkpoint, map_location='cpu')
        hook_cfg = dict(
            _find(cfg.to_dict().get('custom_hooks', []),
                  'ContrastiveCropHook') or dict(type='ContrastiveCropHook'))
        if args.threshold is not None:
            hook_cfg['threshold'] = args.threshold
        hook_cfg['progress'] = False
        hook = HOOKS.build(hook_cfg)
        bs = hook.batch_size or cfg.train_dataloader.get('batch_size', 64)
        return hook.compute_boxes(model, box_ds, bs), 'computed now'
    if args.checkpoint:
        ckpt = torch.load(args.checkpoint, map_location='cpu')
        if CKPT_KEY in ckpt:
            state = ckpt[CKPT_KEY]
            src = (f"checkpoint (active={state.get('active')}, refreshed "
                   f"after epoch {state.get('last_refresh_epoch')})")
            return state['boxes'].float(), src
        warnings.warn(f'{args.checkpoint} has no {CKPT_KEY!r} entry; '
                      'drawing the initial boxes')
    else:
        warnings.warn('no --checkpoint / --compute-boxes: drawing the '
                      'initial boxes')
    return box_ds.store.boxes.clone(), 'initial'


def get_image(inner, idx, bgr):
    from mmcv.transforms import LoadImageFromFile
    data = inner.get_data_info(idx)
    if 'img' not in data:
        data = LoadImageFromFile()(data)
    img = np.ascontiguousarray(data['img'])
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., ::-1] if bgr else img


def draw(images, boxes, crops, out, title, scale):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt
    n, k = len(images), len(crops[0])
    colours = plt.cm.tab10(np.arange(max(k, 1)) % 10)
    fig, axes = plt.subplots(
        n, k + 1, figsize=(1.8 * (k + 1), 1.8 * n), squeeze=False)
    for r, (idx, img) in enumerate(images):
        H, W = img.shape[:2]
        ax = axes[r, 0]
        ax.imshow(img)
        h0, w0, h1, w1 = boxes[r]
        ax.add_patch(patches.Rectangle(
            (w0 * W - 0.5, h0 * H - 0.5), (w1 - w0) * W, (h1 - h0) * H,
            fill=False, edgecolor='red', linewidth=2.5))
        for c, ((i, j, h, w), _) in enumerate(crops[r]):
            ax.add_patch(patches.Rectangle(
                (j - 0.5, i - 0.5), w, h, fill=False,
                edgecolor=colours[c], linewidth=1, linestyle='--'))
            ax.plot(j + w / 2 - 0.5, i + h / 2 - 0.5, 'o', ms=3,
                    color=colours[c])
        ax.set_title(f'#{idx} box ({h0:.2f},{w0:.2f},{h1:.2f},{w1:.2f})',
                     fontsize=6)
        for c, (_, patch) in enumerate(crops[r]):
            a = axes[r, c + 1]
            a.imshow(patch)
            for s in a.spines.values():
                s.set_edgecolor(colours[c])
                s.set_linewidth(2)
            a.set_title(f'crop {c}', fontsize=6)
        for a in axes[r]:
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..',
                                            '..')))
    import mmcv
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmssl_ext  # noqa: F401
    from mmssl_ext.ccrop.box_store import find_box_dataset
    from mmssl_ext.registry import DATASETS, TRANSFORMS

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        opts = {}
        for kv in args.cfg_options:
            k, v = kv.split('=', 1)
            try:
                v = eval(v, {}, {})  # numbers, tuples, booleans
            except Exception:
                pass
            opts[k] = v
        cfg.merge_from_dict(opts)
    init_default_scope(cfg.get('default_scope', 'mmssl_ext'))

    ds_cfg = cfg.train_dataloader.dataset
    crop_cfg = _find(ds_cfg.to_dict(), 'ContrastiveCrop')
    if crop_cfg is None:
        raise ValueError(f'{args.config}: no ContrastiveCrop in '
                         'train_dataloader.dataset')
    crop_cfg = dict(crop_cfg)
    if args.alpha is not None:
        crop_cfg['alpha'] = args.alpha
    crop = TRANSFORMS.build(crop_cfg)
    box_ds = find_box_dataset(DATASETS.build(ds_cfg))
    boxes, src = load_boxes(args, cfg, box_ds)
    if boxes.shape != box_ds.store.boxes.shape:
        raise ValueError(f'{tuple(boxes.shape)} boxes for a training set of '
                         f'{len(box_ds)} samples')

    n = len(box_ds)
    idx = args.indices or np.linspace(
        0, n - 1, min(args.num_images, n)).round().astype(int).tolist()
    bgr = bool(cfg.get('data_preprocessor', {}).get('to_rgb', False))
    np.random.seed(args.seed)
    images, sel, crops = [], [], []
    for i in idx:
        img = get_image(box_ds.dataset, i, bgr)
        b = boxes[i].tolist()
        row = []
        for _ in range(args.num_crops):
            oh, ow, th, tw = crop.box_crop_params(img.shape, b)
            patch = mmcv.imresize(
                img[oh:oh + th, ow:ow + tw], tuple(crop.scale[::-1]),
                interpolation=crop.interpolation, backend=crop.backend)
            row.append(((oh, ow, th, tw), patch))
        images.append((i, img))
        sel.append(b)
        crops.append(row)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    title = (f'{osp.basename(args.config)}: boxes {src}; mean box area '
             f'{float(area.mean()):.3f} over {n} images; alpha={crop.alpha}')
    draw(images, sel, crops, args.out, title, crop.scale)
    print(f'wrote {args.out} ({len(images)} images x {args.num_crops} crops; '
          f'boxes {src})')
    return args.out


if __name__ == '__main__':
    main()
