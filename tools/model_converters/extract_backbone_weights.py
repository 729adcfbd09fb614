"""Pre-training checkpoint -> backbone-only checkpoint.

    python tools/model_converters/extract_backbone_weights.py IN OUT
        [--source {online,momentum}] [--prefix PREFIX]
        [--depth D | --config PRETRAIN_CONFIG] [--target-config CONFIG]
        [--verify] [--sha256 HEX]
        [--allow-pickle] [--boxes-out BOXES.pth]

The output is ``{'state_dict': ..., 'meta': ...}`` whose keys are those of the
backbone module itself (``conv1.weight``, ``layer1.0.bn1.running_mean`` ...),
as MMPretrain's and MMDetection's ``ResNet`` (and torchvision) name them, so
it loads with ``init_cfg=dict(type='Pretrained', checkpoint=OUT)`` (no
``prefix``) into a classifier backbone, a detector backbone or a C4 shared
head.

The release layouts (MMEngine and MMSelfSup 0.x runners, facebookresearch/
moco and CLD's MoCo script, InvP, InfoMin-style trainers, ContrastiveCrop,
torchvision ResNets) are recognised by the readers of
``release_layouts.py`` (docs/pretrained_weights.md); any other checkpoint is
searched for the generic prefixes (``--prefix`` names one). ``--source
online`` (default) keeps the trained encoder, ``--source momentum`` the EMA /
key / target encoder. Classifier / projection heads are dropped;
kuangliu-style ``shortcut`` blocks (InvP, CLD) are renamed ``downsample``.
An already extracted file is rewritten unchanged (MMSelfSup#286).

``--verify`` builds the target backbone (``--config``'s ``model.backbone``,
the config embedded in the checkpoint's meta, or a ResNet of the depth and
widths read from the weights) and reports missing / unexpected /
shape-mismatched keys (exit status 1 if any). ``--target-config`` checks the
*downstream* config's backbone (and C4 shared head): depth (exit 2, nothing
written) and keys (exit 1). ``--allow-pickle`` loads with
``weights_only=False``: UNPICKLING CAN EXECUTE ARBITRARY CODE, use it only
for files whose origin you trust (CLD's MoCo script pickles its optimizer
and args). ``--boxes-out`` writes the ContrastiveCrop boxes of the
checkpoint for ``ContrastiveCropDataset(boxes_file=...)``.
"""
import argparse
import os
import os.path as osp
import pickle
import re
import sys
import zipfile
from collections import OrderedDict
from urllib.parse import urlparse

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from release_layouts import (RESNET_ROOTS, Layout, detect_layout,  # noqa
                             generic_layout, has_resnet_root, tensors)

KEPT_META = ('epoch', 'iter', 'cfg', 'seed', 'experiment_name',
             'mmengine_version', 'dataset_meta')
#: (block, blocks per stage) -> depth
RESNET_DEPTHS = {('BasicBlock', (2, 2, 2, 2)): 18,
                 ('BasicBlock', (3, 4, 6, 3)): 34,
                 ('Bottleneck', (3, 4, 6, 3)): 50,
                 ('Bottleneck', (3, 4, 23, 3)): 101,
                 ('Bottleneck', (3, 8, 36, 3)): 152}
#: Module types that hold (part of) a ResNet (C4 detectors put ``layer4``
#: into the RoI head's shared head).
RESNET_PART_TYPES = ('ResNet', 'ResNet_CIFAR', 'ResNetV1c', 'ResNetV1d',
                     'ResLayer', 'ResLayerExtraNorm')
NEW_IN_TARGET = ('initialised by the target itself (expected, not part of '
                 'a backbone)')
SHORTCUT = re.compile(r'^(layer\d+\.\d+\.)shortcut\.')
PICKLE_RISK = ('unpickling a file can execute arbitrary code on this '
               'machine, so only do this for a file whose origin you trust')


class ConversionError(ValueError):
    """A bad input (a clear message, no traceback in the CLI)."""


class NotACheckpointError(ConversionError):
    """The file is no checkpoint."""


class NoBackboneKeysError(ConversionError):
    """The encoder asked for is not in the checkpoint."""


class DepthMismatchError(ConversionError):
    """The weights are not the ResNet the user or a config asks for."""


class PickledObjectsError(ConversionError):
    """The file holds Python objects the safe loader refuses."""


# ------------------------------------------------------------------ loading
def load_checkpoint_file(path, sha256=None, allow_pickle=False) -> dict:
    """Load ``path`` (file or URL, :mod:`mmssl_ext.utils.hub`); every way a
    wrong file fails becomes one clear error."""
    from mmssl_ext.utils.hub import ChecksumError, load_checkpoint_verified
    if urlparse(path).hostname in ('drive.google.com', 'docs.google.com'):
        raise ConversionError(
            f'{path} is a share page, not the checkpoint file itself: '
            'download the file in a browser (or with a Google Drive client '
            'such as gdown) and pass the local path')
    try:
        ckpt = load_checkpoint_verified(path, sha256,
                                        allow_pickle=allow_pickle)
    except ChecksumError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError,
            zipfile.BadZipFile, UnicodeDecodeError, KeyError) as e:
        msg = str(e) or type(e).__name__
        unsafe = re.search(r'GLOBAL ([\w.]+)', msg)
        if 'not allow-listed' in msg:  # the safe loader refused a type
            raise PickledObjectsError(
                f'{path} holds a pickled Python object '
                f'({unsafe.group(1) if unsafe else "of another type"}) that '
                "torch's safe loader (weights_only=True) refuses. Some "
                "releases save such objects on purpose (CLD's MoCo script "
                'pickles its optimizer and argparse args). To read the file '
                f'anyway pass --allow-pickle: {PICKLE_RISK}.') from e
        raise NotACheckpointError(
            f'{path} is not a PyTorch checkpoint (torch.load failed: '
            f'{type(e).__name__}: {msg.splitlines()[0][:200]})') from e
    except (ModuleNotFoundError, AttributeError) as e:  # --allow-pickle
        raise ConversionError(
            f'{path} pickles an object whose class cannot be imported here '
            f'({e}); the converter cannot read it') from e
    if not isinstance(ckpt, dict):
        raise NotACheckpointError(
            f'{path} holds a {type(ckpt).__name__}, not a checkpoint dict '
            '(expected a state_dict or {"state_dict": ..., "meta": ...})')
    return ckpt


# ---------------------------------------------------------------- selecting
def select(ckpt: dict, layout: Layout, source='online', prefix=None):
    """``(backbone state dict, prefix stripped, container)`` of the
    ``source`` encoder of a checkpoint of ``layout``."""
    if source not in ('online', 'momentum'):
        raise ConversionError(
            f"--source must be 'online' or 'momentum', got {source!r}")
    container, candidates = (layout.online if source == 'online' else
                             layout.momentum) or (None, ())
    if container is None or container and container not in ckpt:
        raise NoBackboneKeysError(
            f'this {layout.origin} checkpoint has no momentum / target '
            'encoder (the method trains a single encoder): use --source '
            'online')
    sd = tensors(ckpt[container] if container else ckpt)
    if prefix is not None:  # '' selects the whole (bare) state dict
        candidates = (prefix + '.' if prefix and prefix[-1] != '.' else
                      prefix, )
    found = [p for p in candidates if any(k.startswith(p) for k in sd)]
    # MMSelfSup 0.x MoCo stores the online backbone twice: prefer the prefix
    # that holds a ResNet stem; a known release must have one
    found = [p for p in found if has_resnet_root(sd, p)][:1] or (
        found[:1] if prefix is not None or layout.name == 'generic' else [])
    if not found:
        raise NoBackboneKeysError(
            f'no backbone keys: the {source} encoder of a {layout.origin} '
            f"is expected under {list(candidates)} in ckpt['{container}'], "
            f'whose top-level modules are '
            f'{sorted({k.split(".", 1)[0] for k in sd})[:15]}; pass the '
            f'prefix with --prefix (docs/pretrained_weights.md).' + (
                ' If the method has no momentum / target encoder (SimCLR, '
                'SimSiam, NPID, ODC ...), use --source online.'
                if source == 'momentum' else ''))
    return OrderedDict((k[len(found[0]):], v.detach().cpu().clone())
                       for k, v in sd.items()
                       if k.startswith(found[0])), found[0], container


def select_backbone(sd: dict, source='online', prefix=None):
    """The generic selection on a bare state dict: ``(backbone, prefix)``."""
    return select(sd, generic_layout(sd), source, prefix)[:2]


def drop_non_backbone(sd: dict):
    """Drop the keys outside the ResNet modules (``fc.``, ``instDis.`` ...)
    of a ResNet: ``(kept, dropped keys)``."""
    if not any(k.split('.', 1)[0] in RESNET_ROOTS for k in sd):
        return sd, []
    keep = OrderedDict(
        (k, v) for k, v in sd.items() if k.split('.', 1)[0] in RESNET_ROOTS)
    return keep, [k for k in sd if k not in keep]


# ------------------------------------------------------------- architecture
def infer_resnet_arch(sd: dict):
    """A ResNet's structure read from its weights, or None."""
    blocks = {}
    for m in filter(None, (re.match(r'layer(\d)\.(\d+)\.', k) for k in sd)):
        blocks[int(m[1])] = max(blocks.get(int(m[1]), 0), int(m[2]) + 1)
    if 1 not in blocks:
        return None
    n = max(blocks)
    stage_blocks = tuple(blocks.get(i, 0) for i in range(1, n + 1))
    block = 'Bottleneck' if any(
        re.match(r'layer\d\.\d+\.conv3\.', k) for k in sd) else 'BasicBlock'
    deep = [v for k, v in sd.items() if k.startswith('stem.') and v.dim() == 4]
    conv = sd.get('conv1.weight', deep[-1] if deep else None)
    stem = ('unknown' if conv is None else 'deep' if 'conv1.weight' not in sd
            else 'cifar' if conv.shape[-1] == 3 else 'imagenet')
    base = sd.get('layer1.0.conv1.weight')
    return dict(
        depth=next((d for (b, full), d in RESNET_DEPTHS.items()
                    if b == block and full[:n] == stage_blocks), None),
        block=block, stage_blocks=list(stage_blocks), stem=stem,
        stem_channels=None if conv is None else int(conv.shape[0]),
        num_stages=n, base_channels=None if base is None else int(
            base.shape[0]),
        avg_down=any(re.match(r'layer\d\.0\.downsample\.2\.', k)
                     for k in sd))


def describe_arch(arch) -> str:
    if arch is None:
        return 'not a ResNet'
    name = (f'ResNet-{arch["depth"]}' if arch['depth'] else
            'a non-standard ResNet')
    return (f'{name} ({arch["block"]}, stage blocks '
            f'{tuple(arch["stage_blocks"])}, {arch["stem"]} stem, base '
            f'channels {arch["base_channels"]})')


def backbone_cfg_from_config(cfg):
    """``model.backbone`` of a config (path or text), or None."""
    from mmengine.config import Config
    cfg = (Config.fromfile(cfg) if osp.isfile(cfg) else
           Config.fromstring(cfg, '.py'))
    return (cfg.get('model', None) or {}).get('backbone', None)


def default_backbone_cfg(arch: dict, depth=None):
    """An MMPretrain ResNet config of the structure of ``arch`` (for
    ``--verify``)."""
    depth = depth or arch['depth']
    if depth is None:
        raise DepthMismatchError(
            'cannot build a target ResNet: the stage sizes '
            f'{arch["stage_blocks"]} match no standard depth; give --config')
    n = arch['num_stages']
    cfg = dict(type='ResNet_CIFAR' if arch['stem'] == 'cifar' else 'ResNet',
               depth=depth, num_stages=n, out_indices=(n - 1, ),
               strides=(1, 2, 2, 2)[:n], dilations=(1, ) * n)
    if arch['stem'] == 'deep':
        cfg['type'] = 'ResNetV1d' if arch['avg_down'] else 'ResNetV1c'
    cfg.update({k: arch[k] for k in ('base_channels', 'stem_channels')
                if arch[k]})
    return cfg


# ------------------------------------------------------------- verification
def _bn_instead_of_syncbn(obj):
    """SyncBN -> BN in a module config (same parameter names; SyncBN
    modules need a process group to run, not to be built)."""
    if isinstance(obj, (list, tuple)):
        return type(obj)(_bn_instead_of_syncbn(v) for v in obj)
    if not isinstance(obj, dict):
        return obj
    out = {k: _bn_instead_of_syncbn(v) for k, v in obj.items()}
    if out.get('type') in ('SyncBN', 'MMSyncBN', 'TorchSyncBN'):
        out['type'] = 'BN'
    return out


def verify(sd: dict, parts, scope: str, target: str, forward=False) -> dict:
    """Build the modules ``parts`` (``[(name, config)]`` in ``scope``) and
    compare ``sd`` with their state: every key under a ResNet root must be
    in ``sd`` with its shape, keys no part takes are unexpected; parameters
    a part adds itself (the extra norm of ``ResLayerExtraNorm``) are
    ``new_in_target``, not errors. ``forward``: run the first part on a
    zero image (``forward_shape``)."""
    from mmengine.registry import MODELS, DefaultScope
    __import__('mmdet.models' if scope == 'mmdet' else 'mmssl_ext')
    expected, modules = {}, []
    for _, part in parts:
        cfg = _bn_instead_of_syncbn(part)
        for key in ('init_cfg', 'pretrained', 'frozen_stages'):
            cfg.pop(key, None)
        cfg['type'] = str(cfg['type']).replace('mmdet.', '')
        with DefaultScope.overwrite_default_scope(scope):
            modules.append(MODELS.build(cfg))
        for k, v in modules[-1].state_dict().items():
            expected.setdefault(k, tuple(v.shape))
    required = [k for k in expected if k.split('.', 1)[0] in RESNET_ROOTS]
    missing = [k for k in required if k not in sd]
    mismatched = [(k, tuple(sd[k].shape), expected[k]) for k in sd
                  if k in expected and tuple(sd[k].shape) != expected[k]]
    unexpected = [k for k in sd if k not in expected]
    report = dict(
        target=target, missing=missing, unexpected=unexpected,
        mismatched=mismatched, parts=[n for n, _ in parts],
        new_in_target=[k for k in expected if k not in required],
        loaded=len(required) - len(missing) - len(mismatched),
        ok=not (missing or unexpected or mismatched))
    if forward and report['ok']:
        model = modules[0]
        model.load_state_dict(sd, strict=False)
        model.eval()  # (MMPretrain's ResNet.train returns None)
        size = 32 if 'CIFAR' in target else 64
        # DeepCluster's Sobel ResNet takes 2 channels
        x = torch.zeros(1, parts[0][1].get('in_channels', 3), size, size)
        with torch.no_grad():
            out = model(x)
        report['forward_shape'] = tuple(
            (out[-1] if isinstance(out, (tuple, list)) else out).shape)
    return report


def verify_state_dict(sd: dict, backbone_cfg: dict, forward=True) -> dict:
    """``sd`` against the MMPretrain backbone ``backbone_cfg``."""
    return verify(sd, [('backbone', backbone_cfg)], 'mmssl_ext',
                  f'mmpretrain:{backbone_cfg.get("type")}', forward)


def target_parts(config: str):
    """``([(name, cfg)], default scope)``: ``model.backbone`` (and a C4
    detector's ``model.roi_head.shared_head``) of a downstream config, whose
    ``custom_imports`` are imported."""
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports', None):
        import_modules_from_strings(**cfg['custom_imports'])
    model = cfg.get('model', None) or {}
    if model.get('backbone', None) is None:
        raise ConversionError(f'{config} has no model.backbone')
    shared = (model.get('roi_head', None) or {}).get('shared_head', None)
    parts = [('model.backbone', model['backbone'].to_dict())] + (
        [('model.roi_head.shared_head', shared.to_dict())] if shared else [])
    return parts, cfg.get('default_scope', None) or 'mmssl_ext'


def verify_against_target(sd: dict, config: str, parts=None) -> dict:
    """``sd`` against the parts of a downstream config it initialises
    (``parts``: :func:`target_parts` of it, if already read)."""
    parts, scope = parts or target_parts(config)
    return verify(sd, parts, scope,
                  f'{config} ({" + ".join(n for n, _ in parts)})')


def format_report(report: dict, limit: int = 10) -> str:
    lines = [f'verify against {report["target"]}: {report["loaded"]} '
             f'tensors loaded, {len(report["missing"])} missing, '
             f'{len(report["unexpected"])} unexpected, '
             f'{len(report["mismatched"])} shape-mismatched']
    for key in ('missing', 'unexpected', 'mismatched', 'new_in_target'):
        items, label = report[key], NEW_IN_TARGET if key == \
            'new_in_target' else key
        more = f' ... (+{len(items) - limit})' if len(items) > limit else ''
        if items:
            lines.append(f'  {label}: {items[:limit]}{more}')
    if 'forward_shape' in report:
        lines.append(f'  forward output {report["forward_shape"]}')
    return '\n'.join(lines + ['  OK' if report['ok'] else '  FAILED'])


def _check_depths(arch, meta_in, depth, config, parts, target_config):
    """Check the depth asked for: ``--depth``, else ``--config``'s backbone,
    else the config embedded in the checkpoint's meta; and the depth of the
    ResNet ``parts`` of ``--target-config``. Returns the pre-training
    backbone config (or None)."""
    bb_cfg = backbone_cfg_from_config(config) if config else None
    if config and bb_cfg is None:
        raise ConversionError(f'{config} has no model.backbone')
    if not (config or depth) and isinstance(meta_in.get('cfg'), str):
        try:
            bb_cfg = backbone_cfg_from_config(meta_in['cfg'])
        except Exception:  # noqa: BLE001 - best effort, a hint only
            pass
    redo = ('pass the depth the model was pre-trained with (or the '
            'pre-training config)')
    have = f'a ResNet-{arch["depth"]}' if arch and arch['depth'] else 'this'
    asked = [(dict(type='ResNet', depth=depth), f'--depth {depth}', redo)] \
        if depth else [(bb_cfg or {}, f'{config} (model.backbone)' if config
                        else 'the config stored in the checkpoint meta', redo)]
    asked += [(p, f'{target_config} ({n})', 'these weights cannot initialise '
               f'it: transfer a ResNet-{p.get("depth")} checkpoint, or use a '
               f'config built for {have} backbone') for n, p in parts]
    for cfg, where, hint in asked:
        want = cfg.get('depth')
        if want is None or (arch and arch['depth'] == int(want)) or str(
                cfg.get('type')).split('.')[-1] not in RESNET_PART_TYPES:
            continue
        raise DepthMismatchError(
            f'{where} asks for a ResNet-{want} but the extracted weights '
            'are not a ResNet (no layer1.* keys)' if arch is None else
            f'{where} asks for a ResNet-{want} but the checkpoint holds '
            f'{describe_arch(arch)}; {hint}')
    return bb_cfg


# -------------------------------------------------------------------- boxes
def export_boxes(ckpt: dict, layout, dst: str, src: str, log=print):
    """Write the ContrastiveCrop boxes of ``ckpt`` (a ContrastiveCrop
    release's ``'boxes'`` or one of our own checkpoints) to ``dst`` as
    ``ContrastiveCropHook`` saves them (``{'contrastive_crop': {'boxes',
    'active', 'last_refresh_epoch'}, 'meta'}``)."""
    from mmssl_ext.ccrop.box_store import (BOX_STATE_KEY, FULL_BOX,
                                           SharedBoxStore)
    own = ckpt.get(BOX_STATE_KEY)
    if layout and layout.name.startswith('contrastivecrop') and isinstance(
            ckpt.get('boxes'), torch.Tensor):
        boxes, epoch = ckpt['boxes'], ckpt.get('epoch', -1)
    elif isinstance(own, dict):
        boxes, epoch = own.get('boxes'), own.get('last_refresh_epoch', -1)
    else:
        raise ConversionError(
            f'--boxes-out: {src} holds no ContrastiveCrop boxes (expected '
            "the 'boxes' of a ContrastiveCrop DDP_*_ccrop.py checkpoint or "
            f"the '{BOX_STATE_KEY}' entry of ContrastiveCropHook)")
    try:  # the store's own checks (shape, normalised boxes)
        store = SharedBoxStore(len(boxes), active=True)
        store.update(boxes)
    except (ValueError, TypeError, IndexError, RuntimeError) as e:
        raise ConversionError(f'{src}: {e}') from e
    state = dict(store.state_dict(), last_refresh_epoch=epoch if isinstance(
        epoch, int) else -1)
    _atomic_save({BOX_STATE_KEY: state, 'meta': dict(
        converted_from=osp.basename(src),
        layout=layout.name if layout else 'mmssl_ext',
        box_format='(h0, w0, h1, w1), normalised to [0, 1]',
        num_boxes=len(store), order='data-set order of the run that saved '
        'them')}, dst)
    full = int((store.boxes == torch.tensor(FULL_BOX)).all(1).sum())
    log(f'wrote {len(store)} ContrastiveCrop boxes ({full} still the full '
        f'image) to {dst}')
    return state['boxes']


def _atomic_save(obj, dst: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(obj, dst + '.tmp')
    os.replace(dst + '.tmp', dst)


# --------------------------------------------------------------- conversion
def extract_backbone(src, dst=None, source='online', prefix=None, depth=None,
                     config=None, verify=False, sha256=None,
                     allow_pickle=False, target_config=None, boxes_out=None,
                     log=print) -> dict:
    """Convert ``src`` into a backbone-only checkpoint written to ``dst``.

    Returns ``state_dict``, ``meta``, ``already_extracted``, ``layout``,
    ``arch``, ``dropped``, ``report`` (``verify``), ``target_report``
    (``target_config``) and ``boxes`` (``boxes_out``). Raises a
    :class:`ConversionError` for a bad input; nothing is written unless
    every check passed (a failed ``verify`` still writes; a file that does
    not fit ``target_config`` is not written).
    """
    ckpt = load_checkpoint_file(src, sha256, allow_pickle)
    layout = detect_layout(ckpt)
    meta_in = ckpt['meta'] if isinstance(ckpt.get('meta'), dict) else {}
    name, dropped = osp.basename(src), []
    read_as = layout or generic_layout(ckpt)
    sd = tensors(ckpt[read_as.online[0]] if read_as.online[0] else ckpt)
    if not sd:
        raise NotACheckpointError(
            f'{src} contains no tensors (top-level keys: '
            f'{sorted(map(str, ckpt))[:10]}); is it a checkpoint?')
    roots = {k.split('.', 1)[0] for k in sd}
    already = layout is None and (bool(meta_in.get('extracted_backbone')) or (
        prefix is None and 'layer1' in roots and roots <= set(RESNET_ROOTS)))
    if already:
        if meta_in.get('source', source) != source:
            raise ConversionError(
                f'{src} is already a backbone-only checkpoint extracted '
                f'from the {meta_in["source"]} encoder; --source {source} '
                'cannot be taken from it (run the converter on the '
                'pre-training checkpoint)')
        log(f'{src} is already a backbone-only checkpoint; writing it '
            'unchanged')
        backbone, used = OrderedDict(sd), meta_in.get('prefix', '')
        container = meta_in.get('container', '')
        meta = dict(meta_in, converted_from=meta_in.get('converted_from',
                                                        name))
    else:
        if layout is not None:
            log(f'{name}: {layout.origin} checkpoint')
        backbone, used, container = select(ckpt, read_as, source, prefix)
        backbone, dropped = drop_non_backbone(backbone)
        # kuangliu-style CIFAR ResNets call the projection ``shortcut``
        renamed = [k for k in backbone if SHORTCUT.match(k)]
        backbone = OrderedDict((SHORTCUT.sub(r'\1downsample.', k), v)
                               for k, v in backbone.items())
        if dropped:
            log(f'dropped {len(dropped)} non-backbone keys: {dropped[:5]}')
        if renamed:
            log(f'renamed {len(renamed)} shortcut.* keys to downsample.*')
        meta = {k: meta_in[k] for k in KEPT_META if k in meta_in}
        if 'epoch' not in meta and isinstance(ckpt.get('epoch'), int):
            meta['epoch'] = ckpt['epoch']  # the release scripts' top level
        meta.update(converted_from=name,
                    layout=layout.name if layout else 'generic')
    arch = infer_resnet_arch(backbone)
    parts = target_parts(target_config) if target_config else ([], None)
    bb_cfg = _check_depths(arch, meta_in, depth, config, parts[0],
                           target_config)
    from mmssl_ext.version import __version__
    meta.update(extracted_backbone=True, source=source, prefix=used,
                container=container, arch=arch,
                mmssl_ext_version=__version__)
    report = target_report = boxes = None
    if verify:
        if bb_cfg is None or depth is not None:
            if arch is None:
                raise ConversionError(
                    '--verify without --config needs a ResNet checkpoint '
                    '(to build ResNet-<depth>); pass --config')
            bb_cfg = default_backbone_cfg(arch, depth)
        report = verify_state_dict(backbone, bb_cfg)
        log(format_report(report))
    if target_config is not None:
        target_report = verify_against_target(backbone, target_config, parts)
        log(format_report(target_report))
    if boxes_out is not None:
        boxes = export_boxes(ckpt, layout, boxes_out, src, log)
    if dst is not None and target_report and not target_report['ok']:
        log(f'{dst} not written: the weights do not fit {target_config}')
    elif dst is not None:
        _atomic_save(dict(state_dict=backbone, meta=meta), dst)
        log(f'wrote {len(backbone)} tensors of {describe_arch(arch)} '
            f'({source} encoder, keys {container or "<top level>"}'
            f'[{used!r}*]) to {dst}')
    return dict(state_dict=backbone, meta=meta, already_extracted=already,
                layout=layout, arch=arch, dropped=dropped, report=report,
                target_report=target_report, boxes=boxes)


# ---------------------------------------------------------------------- CLI
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('checkpoint', help='pre-training checkpoint (path / URL)')
    p.add_argument('output', help='backbone-only checkpoint to write')
    p.add_argument('--source', choices=['online', 'momentum'],
                   default='online', help='online (default) or momentum / '
                   'key / target (EMA) encoder')
    p.add_argument('--prefix', help='key prefix of the backbone')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--depth', type=int, help='expected ResNet depth')
    g.add_argument('--config', help='pre-training config (its backbone)')
    p.add_argument('--target-config', help='downstream config the file will '
                   'initialise: depth (exit 2) and keys (exit 1) checked')
    p.add_argument('--verify', action='store_true', help='build the backbone '
                   'and report key problems (exit 1 if any)')
    p.add_argument('--sha256', help='expected SHA-256 (or >= 8-digit prefix)')
    p.add_argument('--allow-pickle', action='store_true', help='torch.load '
                   f'with weights_only=False. DANGER: {PICKLE_RISK}')
    p.add_argument('--boxes-out', help='write the ContrastiveCrop boxes here')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = vars(parse_args(argv))
    try:
        out = extract_backbone(args.pop('checkpoint'), args.pop('output'),
                               **args)
    except (ConversionError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for rep in (out['report'], out['target_report']):
        if rep is not None and not rep['ok']:
            print(f'error: the converted weights do not fit {rep["target"]} '
                  '(see the report above)', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
