"""Pre-training checkpoint -> backbone-only checkpoint.

    python tools/model_converters/extract_backbone_weights.py IN OUT
        [--source {online,momentum}] [--prefix PREFIX]
        [--depth D | --config PRETRAIN_CONFIG] [--verify]
        [--verify-target {mmpretrain,mmdet}] [--sha256 HEX]

The output is ``{'state_dict': ..., 'meta': ...}`` whose keys are those of the
backbone module itself (``conv1.weight``, ``layer1.0.bn1.running_mean`` ...),
as MMPretrain's and MMDetection's ``ResNet`` (and torchvision) name them, so
it loads with ``init_cfg=dict(type='Pretrained', checkpoint=OUT)`` (no
``prefix``) into a classifier backbone, a detector backbone or a C4 shared
head. (A raw pre-training checkpoint instead needs ``prefix='backbone.'``.)

``--source online`` keeps ``backbone.*`` (the trained encoder);
``--source momentum`` keeps the EMA / target encoder's backbone
(MMPretrain MoCo / DenseCL ``encoder_k.module.0.``, BYOL ``target_net.module.0.``,
MoCo v3 ``momentum_encoder.module.0.``, MMSelfSup 0.x ``encoder_k.0.``,
``target_net.0.``; ``--prefix`` for anything else, e.g. ``module.encoder_q.``
for the original MoCo release).

Running it on an already extracted file is not an error (MMSelfSup#286): the
file is recognised and rewritten unchanged (with a note).

``--verify`` builds the target backbone (from ``--config``'s
``model.backbone``, from the config embedded in the checkpoint's ``meta``, or
a ResNet / ResNet_CIFAR of ``--depth`` with the channel widths read from the
weights), loads the weights and reports missing / unexpected / shape-mismatched
keys; the exit status is 1 if any. The depth is checked against ``--depth``
or the pre-training config before anything is written.
"""
import argparse
import copy
import os
import os.path as osp
import pickle
import re
import sys
import zipfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

#: ``--source online``: the trained encoder's backbone.
ONLINE_PREFIXES = ('backbone.', 'module.backbone.', 'module.encoder_q.')
#: ``--source momentum``: EMA / target encoders (MMEngine ``ExponentialMovingAverage``
#: / ``CosineEMA`` wrap ``nn.Sequential(backbone, neck)`` -> ``module.0.``).
MOMENTUM_PREFIXES = (
    'encoder_k.module.0.',  # MMPretrain MoCo v2, DenseCL; MMSelfSup 1.x
    'target_net.module.0.',  # MMPretrain BYOL; MMSelfSup 1.x
    'momentum_encoder.module.0.',  # MMPretrain MoCo v3
    'encoder_k.0.',  # MMSelfSup 0.x MoCo
    'target_net.0.',  # MMSelfSup 0.x BYOL
    'module.encoder_k.',  # facebookresearch/moco release
)
#: Top-level module names of a (torchvision / MMPretrain / MMDetection) ResNet.
RESNET_ROOTS = ('conv1', 'bn1', 'stem', 'layer1', 'layer2', 'layer3',
                'layer4')
#: meta keys of the source checkpoint carried over.
KEPT_META = ('epoch', 'iter', 'cfg', 'seed', 'experiment_name',
             'mmengine_version', 'dataset_meta')
RESNET_DEPTHS = {
    ('BasicBlock', (2, 2, 2, 2)): 18,
    ('BasicBlock', (3, 4, 6, 3)): 34,
    ('Bottleneck', (3, 4, 6, 3)): 50,
    ('Bottleneck', (3, 4, 23, 3)): 101,
    ('Bottleneck', (3, 8, 36, 3)): 152,
}
RESNET_TYPES = ('ResNet', 'ResNet_CIFAR', 'ResNetV1c', 'ResNetV1d',
                'mmdet.ResNet', 'mmpretrain.ResNet', 'mmpretrain.ResNet_CIFAR')


class ConversionError(ValueError):
    """Base of the converter's errors (a clear message, no traceback in the
    CLI)."""


class NotACheckpointError(ConversionError):
    pass


class NoBackboneKeysError(ConversionError):
    pass


class DepthMismatchError(ConversionError):
    pass


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------
def load_checkpoint_file(path: str, sha256: Optional[str] = None) -> dict:
    """Load ``path`` (local file or URL) with mmengine's loader; turn the
    many ways a wrong file fails into one clear error."""
    from mmssl_ext.utils.hub import is_url, load_checkpoint_verified
    if not is_url(path) and not osp.isfile(osp.expanduser(path)):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    try:
        ckpt = load_checkpoint_verified(path, sha256=sha256)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(e))
        if unsafe:
            raise ConversionError(
                f'{path} holds a Python object ({unsafe.group(1)}) that '
                "torch's safe loader (weights_only=True) refuses. If you "
                'trust the file, allow it with '
                'torch.serialization.add_safe_globals'
            ) from e
        raise NotACheckpointError(
            f'{path} is not a PyTorch checkpoint (torch.load failed: '
            f'UnpicklingError)') from e
    except (EOFError, zipfile.BadZipFile, UnicodeDecodeError,
            KeyError) as e:
        # KeyError: the legacy (non-zip) reader on arbitrary bytes
        raise NotACheckpointError(
            f'{path} is not a PyTorch checkpoint (torch.load failed: '
            f'{type(e).__name__}: {str(e)[:200]})') from e
    except RuntimeError as e:
        # mmssl_ext's checked local loader (CheckpointLoadError) or torch's
        # own reader errors
        msg = str(e)
        unsafe = re.search(r'Unsupported global: GLOBAL ([\w.]+)', msg)
        if unsafe or 'not allow-listed' in msg:
            name = unsafe.group(1) if unsafe else 'a non-allow-listed type'
            raise ConversionError(
                f'{path} holds a Python object ({name}) that torch\'s safe '
                'loader (weights_only=True) refuses. If you trust the file, '
                'allow it with torch.serialization.add_safe_globals') from e
        if type(e).__name__ == 'CheckpointLoadError' or any(
                s in msg for s in ('invalid load key', 'failed finding central',
                                   'PytorchStreamReader', 'magic number',
                                   'Invalid magic')):
            raise NotACheckpointError(
                f'{path} is not a PyTorch checkpoint: '
                f'{msg.splitlines()[0][:300]}') from e
        raise
    if not isinstance(ckpt, dict):
        raise NotACheckpointError(
            f'{path} holds a {type(ckpt).__name__}, not a checkpoint dict '
            '(expected a state_dict or {"state_dict": ..., "meta": ...})')
    return ckpt


def get_state_dict(ckpt: dict, path: str = '<checkpoint>') -> Dict:
    """The tensor dict of a checkpoint: ``state_dict``, ``model`` (DeiT /
    MAE releases) or the dict itself when all its values are tensors."""
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            sd = ckpt[key]
            break
    else:
        sd = ckpt
    tensors = OrderedDict(
        (k, v) for k, v in sd.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise NotACheckpointError(
            f'{path} contains no tensors (top-level keys: '
            f'{sorted(map(str, ckpt))[:10]}); is it a checkpoint?')
    return tensors


def _roots(keys) -> List[str]:
    return sorted({k.split('.', 1)[0] for k in keys})


def looks_like_backbone(sd: Dict) -> bool:
    """True if ``sd`` is already a bare ResNet state dict (no module
    prefix): every key under a ResNet root module."""
    keys = list(sd)
    return bool(keys) and all(k.split('.', 1)[0] in RESNET_ROOTS
                              for k in keys) and any(
                                  k.startswith('layer1.') for k in keys)


# --------------------------------------------------------------------------
# selecting
# --------------------------------------------------------------------------
def _has_resnet_root(sd: Dict, prefix: str) -> bool:
    return any(
        k.startswith(prefix) and k[len(prefix):].split('.', 1)[0] in
        RESNET_ROOTS for k in sd)


def select_backbone(sd: Dict,
                    source: str = 'online',
                    prefix: Optional[str] = None
                    ) -> Tuple['OrderedDict[str, torch.Tensor]', str]:
    """Keys of the chosen encoder's backbone with the prefix stripped.

    Returns ``(backbone_state_dict, prefix_used)``.
    """
    if source not in ('online', 'momentum'):
        raise ConversionError(
            f"--source must be 'online' or 'momentum', got {source!r}")
    if prefix is not None:
        # '' selects the whole (bare) state dict, e.g. a torchvision ResNet
        candidates = (prefix if prefix == '' or prefix.endswith('.') else
                      prefix + '.', )
    else:
        candidates = ONLINE_PREFIXES if source == 'online' else \
            MOMENTUM_PREFIXES
    found = [p for p in candidates if any(k.startswith(p) for k in sd)]
    if prefix is None and len(found) > 1:
        # e.g. MMSelfSup 0.x MoCo stores the online backbone twice
        # ('backbone.' and 'encoder_q.0.'); prefer one holding a ResNet stem.
        resnet = [p for p in found if _has_resnet_root(sd, p)]
        found = resnet[:1] or found[:1]
    if not found:
        hint = ''
        if source == 'momentum':
            hint = (' This checkpoint has no momentum / target encoder that '
                    'the converter knows (SimCLR, SimSiam, NPID, ODC ... '
                    'have none: use --source online), or pass its prefix '
                    'with --prefix.')
        else:
            hint = ' Pass the backbone\'s key prefix with --prefix.'
        raise NoBackboneKeysError(
            f'no backbone keys: none of the prefixes {list(candidates)} '
            f'occurs in the checkpoint (its top-level modules: '
            f'{_roots(sd)[:15]}).{hint}')
    used = found[0]
    out = OrderedDict(
        (k[len(used):], v.detach().cpu().clone()) for k, v in sd.items()
        if k.startswith(used))
    return out, used


def drop_non_backbone(sd: Dict) -> Tuple[Dict, List[str]]:
    """For a ResNet, drop keys outside the ResNet modules (the classifier
    ``fc.`` of torchvision-style encoders)."""
    if not any(k.split('.', 1)[0] in RESNET_ROOTS for k in sd):
        return sd, []
    keep = OrderedDict(
        (k, v) for k, v in sd.items() if k.split('.', 1)[0] in RESNET_ROOTS)
    dropped = [k for k in sd if k not in keep]
    return keep, dropped


# --------------------------------------------------------------------------
# architecture
# --------------------------------------------------------------------------
def infer_resnet_arch(sd: Dict) -> Optional[dict]:
    """Read a ResNet's structure from its weights.

    Returns ``dict(depth, block, stage_blocks, stem, stem_channels,
    base_channels, num_stages, avg_down)`` (``depth`` None when the stage
    sizes match no standard depth) or None when ``sd`` is not a ResNet.
    """
    stage_blocks = {}
    bottleneck = False
    for k in sd:
        m = re.match(r'layer(\d)\.(\d+)\.(\w+)', k)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            stage_blocks[s] = max(stage_blocks.get(s, 0), b + 1)
            if m.group(3) == 'conv3':
                bottleneck = True
    if not stage_blocks or 1 not in stage_blocks:
        return None
    num_stages = max(stage_blocks)
    blocks = tuple(stage_blocks.get(i, 0) for i in range(1, num_stages + 1))
    block = 'Bottleneck' if bottleneck else 'BasicBlock'
    depth = None
    for (b, full), d in RESNET_DEPTHS.items():
        if b == block and full[:num_stages] == blocks:
            depth = d
            break
    if 'conv1.weight' in sd:
        ks = sd['conv1.weight'].shape[-1]
        stem = 'cifar' if ks == 3 else 'imagenet'
        stem_channels = int(sd['conv1.weight'].shape[0])
    elif any(k.startswith('stem.') for k in sd):
        stem = 'deep'
        convs = [v for k, v in sd.items()
                 if k.startswith('stem.') and v.dim() == 4]
        stem_channels = int(convs[-1].shape[0]) if convs else None
    else:
        stem, stem_channels = 'unknown', None
    base = sd.get('layer1.0.conv1.weight')
    avg_down = any(
        re.match(r'layer\d\.0\.downsample\.2\.', k) for k in sd)
    return dict(
        depth=depth,
        block=block,
        stage_blocks=list(blocks),
        stem=stem,
        stem_channels=stem_channels,
        base_channels=int(base.shape[0]) if base is not None else None,
        num_stages=num_stages,
        avg_down=avg_down)


def describe_arch(arch: Optional[dict]) -> str:
    if arch is None:
        return 'not a ResNet'
    name = f'ResNet-{arch["depth"]}' if arch['depth'] else 'a non-standard ' \
        'ResNet'
    return (f'{name} ({arch["block"]}, stage blocks '
            f'{tuple(arch["stage_blocks"])}, {arch["stem"]} stem, base '
            f'channels {arch["base_channels"]})')


def backbone_cfg_from_config(cfg) -> Optional[dict]:
    """``model.backbone`` of a pre-training config (path, text or Config)."""
    from mmengine.config import Config
    if isinstance(cfg, str):
        if osp.isfile(cfg):
            cfg = Config.fromfile(cfg)
        else:
            cfg = Config.fromstring(cfg, '.py')
    model = cfg.get('model', None)
    if model is None or model.get('backbone', None) is None:
        return None
    bb = copy.deepcopy(model['backbone'])
    return bb.to_dict() if hasattr(bb, 'to_dict') else dict(bb)


def embedded_backbone_cfg(meta: dict) -> Optional[dict]:
    """``model.backbone`` of the config an mmengine Runner embeds in
    ``meta['cfg']``; None if absent or unparsable."""
    text = (meta or {}).get('cfg')
    if not isinstance(text, str):
        return None
    try:
        return backbone_cfg_from_config(text)
    except Exception:  # noqa: BLE001 - best effort, a hint only
        return None


def check_depth(arch: Optional[dict], depth: int, where: str) -> None:
    if arch is None:
        raise DepthMismatchError(
            f'{where} asks for a ResNet-{depth} but the extracted weights are '
            'not a ResNet (no layer1.* keys)')
    if arch['depth'] != depth:
        raise DepthMismatchError(
            f'{where} asks for a ResNet-{depth} but the checkpoint holds '
            f'{describe_arch(arch)}; pass the depth the model was '
            'pre-trained with (or the pre-training config)')


# --------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------
def default_backbone_cfg(arch: dict, depth: Optional[int] = None,
                         target: str = 'mmpretrain') -> dict:
    depth = depth or arch['depth']
    if depth is None:
        raise DepthMismatchError(
            'cannot build a target ResNet: the stage sizes '
            f'{arch["stage_blocks"]} match no standard depth; give --config')
    cfg = dict(depth=depth, num_stages=arch['num_stages'],
               out_indices=(arch['num_stages'] - 1, ),
               strides=(1, 2, 2, 2)[:arch['num_stages']],
               dilations=(1, ) * arch['num_stages'])
    if arch['base_channels']:
        cfg['base_channels'] = arch['base_channels']
    if arch['stem_channels']:
        cfg['stem_channels'] = arch['stem_channels']
    if target == 'mmdet':
        cfg.update(type='mmdet.ResNet', style='pytorch')
        if arch['stem'] == 'deep':
            cfg.update(deep_stem=True, avg_down=arch['avg_down'])
        return cfg
    if arch['stem'] == 'cifar':
        cfg['type'] = 'ResNet_CIFAR'
    elif arch['stem'] == 'deep':
        cfg['type'] = 'ResNetV1d' if arch['avg_down'] else 'ResNetV1c'
    else:
        cfg['type'] = 'ResNet'
    return cfg


def build_backbone(backbone_cfg: dict, target: str = 'mmpretrain'):
    cfg = copy.deepcopy(backbone_cfg)
    cfg.pop('init_cfg', None)
    cfg.pop('frozen_stages', None)
    if target == 'mmdet':
        import mmdet.models  # noqa: F401
        from mmdet.registry import MODELS as DET_MODELS
        from mmengine.registry import DefaultScope
        t = cfg['type']
        cfg['type'] = t.split('.', 1)[1] if t.startswith('mmdet.') else t
        with DefaultScope.overwrite_default_scope('mmdet'):
            return DET_MODELS.build(cfg)
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmssl_ext.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmssl_ext'):
        return MODELS.build(cfg)


def verify_state_dict(sd: Dict, backbone_cfg: dict,
                      target: str = 'mmpretrain',
                      forward: bool = True) -> dict:
    """Build the target backbone, load ``sd`` and report key problems.

    Returns ``dict(missing, unexpected, mismatched, loaded, ok, target)``;
    ``mismatched`` lists ``(key, checkpoint_shape, model_shape)``.
    """
    model = build_backbone(backbone_cfg, target)
    model_sd = model.state_dict()
    missing = [k for k in model_sd if k not in sd]
    unexpected = [k for k in sd if k not in model_sd]
    mismatched = [(k, tuple(sd[k].shape), tuple(model_sd[k].shape))
                  for k in sd
                  if k in model_sd and sd[k].shape != model_sd[k].shape]
    bad = {m[0] for m in mismatched}
    loadable = {k: v for k, v in sd.items() if k in model_sd and k not in bad}
    model.load_state_dict(loadable, strict=False)
    report = dict(
        target=f'{target}:{backbone_cfg.get("type")}',
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
        loaded=len(loadable),
        ok=not (missing or unexpected or mismatched))
    if forward and report['ok']:
        model.eval()
        with torch.no_grad():
            size = 32 if 'CIFAR' in str(backbone_cfg.get('type')) else 64
            out = model(torch.zeros(1, 3, size, size))
        out = out[-1] if isinstance(out, (tuple, list)) else out
        report['forward_shape'] = tuple(out.shape)
    return report


def format_report(report: dict, limit: int = 10) -> str:
    lines = [f'verify against {report["target"]}: '
             f'{report["loaded"]} tensors loaded, '
             f'{len(report["missing"])} missing, '
             f'{len(report["unexpected"])} unexpected, '
             f'{len(report["mismatched"])} shape-mismatched']
    for name in ('missing', 'unexpected', 'mismatched'):
        items = report[name]
        if items:
            more = f' ... (+{len(items) - limit})' if len(items) > limit \
                else ''
            lines.append(f'  {name}: {items[:limit]}{more}')
    if 'forward_shape' in report:
        lines.append(f'  forward on a dummy image: output '
                     f'{report["forward_shape"]}')
    lines.append('  OK' if report['ok'] else '  FAILED')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# the conversion
# --------------------------------------------------------------------------
def extract_backbone(src: str,
                     dst: Optional[str] = None,
                     source: str = 'online',
                     prefix: Optional[str] = None,
                     depth: Optional[int] = None,
                     config: Optional[str] = None,
                     verify: bool = False,
                     verify_target: str = 'mmpretrain',
                     sha256: Optional[str] = None,
                     log=print) -> dict:
    """Convert ``src`` into a backbone-only checkpoint written to ``dst``.

    Returns a summary dict: ``state_dict``, ``meta``, ``already_extracted``,
    ``arch``, ``dropped`` and (with ``verify``) ``report``. Raises a
    :class:`ConversionError` subclass for a bad input; the file is written
    only when every check passed (verification failures are reported, the
    file is still written).
    """
    ckpt = load_checkpoint_file(src, sha256=sha256)
    sd = get_state_dict(ckpt, src)
    meta_in = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}

    already = bool(meta_in.get('extracted_backbone')) or (
        looks_like_backbone(sd) and prefix is None)
    if already:
        prev = meta_in.get('source')
        if prev is not None and prev != source:
            raise ConversionError(
                f'{src} is already a backbone-only checkpoint extracted '
                f'from the {prev} encoder; --source {source} cannot be '
                'taken from it (run the converter on the pre-training '
                'checkpoint)')
        log(f'{src} is already a backbone-only checkpoint; writing it '
            'unchanged')
        backbone, used, dropped = OrderedDict(sd), meta_in.get(
            'prefix', ''), []
    else:
        backbone, used = select_backbone(sd, source, prefix)
        backbone, dropped = drop_non_backbone(backbone)
        if dropped:
            log(f'dropped {len(dropped)} non-backbone keys: {dropped[:5]}')

    arch = infer_resnet_arch(backbone)
    # the depth to check and build: --depth > --config > embedded config
    bb_cfg, where = None, None
    if config is not None:
        bb_cfg = backbone_cfg_from_config(config)
        if bb_cfg is None:
            raise ConversionError(f'{config} has no model.backbone')
        where = f'{config} (model.backbone)'
    elif depth is None:
        bb_cfg = embedded_backbone_cfg(meta_in)
        where = 'the config stored in the checkpoint meta'
    if depth is not None:
        check_depth(arch, depth, f'--depth {depth}')
    elif bb_cfg is not None and bb_cfg.get('depth') is not None and str(
            bb_cfg.get('type', '')).split('.')[-1] in {
                t.split('.')[-1] for t in RESNET_TYPES}:
        check_depth(arch, int(bb_cfg['depth']), where)

    meta = {k: meta_in[k] for k in KEPT_META if k in meta_in}
    if already:
        meta.update({k: v for k, v in meta_in.items()
                     if k not in meta})
    from mmssl_ext.version import __version__
    meta.update(
        extracted_backbone=True,
        source=source,
        prefix=used,
        converted_from=meta_in.get('converted_from', osp.basename(src))
        if already else osp.basename(src),
        arch=arch,
        mmssl_ext_version=__version__)

    report = None
    if verify:
        if bb_cfg is not None and depth is None and verify_target == \
                'mmpretrain':
            target_cfg = bb_cfg
        else:
            if arch is None:
                raise ConversionError(
                    '--verify without --config needs a ResNet checkpoint '
                    '(to build ResNet-<depth>); pass --config')
            target_cfg = default_backbone_cfg(arch, depth, verify_target)
        report = verify_state_dict(backbone, target_cfg, verify_target)
        log(format_report(report))

    if dst is not None:
        out_dir = osp.dirname(osp.abspath(dst))
        os.makedirs(out_dir, exist_ok=True)
        tmp = dst + '.tmp'
        torch.save(dict(state_dict=backbone, meta=meta), tmp)
        os.replace(tmp, dst)
        log(f'wrote {len(backbone)} tensors of {describe_arch(arch)} '
            f'({source} encoder, prefix {used!r}) to {dst}')
    return dict(state_dict=backbone, meta=meta, already_extracted=already,
                arch=arch, dropped=dropped, report=report)


def parse_args(argv: Optional[Sequence[str]] = None):
    p = argparse.ArgumentParser(
        description='Extract the backbone of a self-supervised checkpoint '
        'for linear probing / detection transfer')
    p.add_argument('checkpoint', help='pre-training checkpoint (path or URL)')
    p.add_argument('output', help='backbone-only checkpoint to write')
    p.add_argument('--source', choices=['online', 'momentum'],
                   default='online',
                   help='online encoder (default) or the momentum / target '
                   '(EMA) encoder')
    p.add_argument('--prefix', default=None,
                   help='key prefix of the backbone in the checkpoint '
                   '(default: detected from --source)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--depth', type=int, default=None,
                   help='expected ResNet depth (checked)')
    g.add_argument('--config', default=None,
                   help='pre-training config: its model.backbone is the '
                   'expected architecture and the --verify target')
    p.add_argument('--verify', action='store_true',
                   help='build the target backbone and report missing / '
                   'unexpected keys (exit status 1 if any)')
    p.add_argument('--verify-target', choices=['mmpretrain', 'mmdet'],
                   default='mmpretrain',
                   help='whose ResNet to build for --verify')
    p.add_argument('--sha256', default=None,
                   help='expected SHA-256 (or >= 8-digit prefix) of the '
                   'input file')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        out = extract_backbone(
            args.checkpoint, args.output, source=args.source,
            prefix=args.prefix, depth=args.depth, config=args.config,
            verify=args.verify, verify_target=args.verify_target,
            sha256=args.sha256)
    except (ConversionError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if out['report'] is not None and not out['report']['ok']:
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
