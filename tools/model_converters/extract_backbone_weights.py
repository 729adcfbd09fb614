"""Pre-training checkpoint -> backbone-only checkpoint.

    python tools/model_converters/extract_backbone_weights.py IN OUT
        [--source {online,momentum}] [--prefix PREFIX]
        [--depth D | --config PRETRAIN_CONFIG] [--target-config CONFIG]
        [--verify] [--verify-target {mmpretrain,mmdet}] [--sha256 HEX]
        [--allow-pickle] [--boxes-out BOXES.pth]

The output is ``{'state_dict': ..., 'meta': ...}`` whose keys are those of the
backbone module itself (``conv1.weight``, ``layer1.0.bn1.running_mean`` ...),
as MMPretrain's and MMDetection's ``ResNet`` (and torchvision) name them, so
it loads with ``init_cfg=dict(type='Pretrained', checkpoint=OUT)`` (no
``prefix``) into a classifier backbone, a detector backbone or a C4 shared
head. (A raw pre-training checkpoint instead needs ``prefix='backbone.'``.)

Layouts recognised by themselves (``--prefix`` is needed for none of them;
see ``LAYOUTS`` below and docs/pretrained_weights.md):

* MMEngine runners (this package, MMPretrain, MMSelfSup 1.x) and the mmcv
  runner of MMSelfSup 0.x / OpenSelfSup (InterCLR's released checkpoint):
  ``{'state_dict': {'backbone.*', 'encoder_k.*' ...}, 'meta': ...}``;
* facebookresearch/moco ``main_moco.py`` and CLD's
  ``main_imagenet_moco_cld.py``: ``{'state_dict': {'module.encoder_q.*',
  'module.encoder_k.*'}, ...}`` (CLD's also pickles the optimizer object and
  the argparse ``args``: see ``--allow-pickle``);
* InvP ``main.py``: ``{'state_dict': {'module.conv1.*', 'module.fc.*'},
  'memory_banks', 'neigh', ...}`` (an ``nn.DataParallel`` ResNet);
* InfoMin-style trainers (CLD's ``main_imagenet_infomin_cld.py``):
  ``{'model': {'module.encoder.*', 'module.head.*' ...}, 'model_ema':
  {'encoder.*' ...}, 'contrast', ...}``;
* ContrastiveCrop ``DDP_{moco,simclr,byol,simsiam}_ccrop.py``:
  ``{'moco_state' | 'simclr_state' | 'byol_state' | 'simsiam_state': ...,
  'boxes', 'optimizer_state', 'epoch'}``;
* a bare ResNet state dict (torchvision) or this converter's own output.

``--source online`` (default) keeps the trained encoder; ``--source
momentum`` the EMA / key / target encoder where the method has one (MoCo,
BYOL, InfoMin's ``model_ema`` ...). Classifier / projection heads (``fc``,
``instDis`` ...) are dropped; ``shortcut`` blocks of CIFAR ResNets written
in the kuangliu style (InvP, CLD) are renamed ``downsample``.

Running it on an already extracted file is not an error (MMSelfSup#286): the
file is recognised and rewritten unchanged (with a note).

``--verify`` builds the target backbone (from ``--config``'s
``model.backbone``, from the config embedded in the checkpoint's ``meta``, or
a ResNet / ResNet_CIFAR of ``--depth`` with the channel widths read from the
weights), loads the weights and reports missing / unexpected / shape-mismatched
keys; the exit status is 1 if any. The depth is checked against ``--depth``
or the pre-training config before anything is written.

``--target-config`` names the *downstream* config the weights will
initialise (e.g. a detector): its ``model.backbone`` (and the C4 shared head
``model.roi_head.shared_head``) are built, the depth is checked against them
(exit status 2, nothing written) and every ResNet key they need must be in
the converted file with the right shape (exit status 1 otherwise).

``--allow-pickle`` lets ``torch.load`` unpickle arbitrary Python objects
(``weights_only=False``). UNPICKLING CAN EXECUTE ARBITRARY CODE: use it only
for files whose origin you trust (e.g. CLD's MoCo checkpoints, which pickle
a ``torch.optim.SGD`` and an ``argparse.Namespace``).

``--boxes-out`` writes the ContrastiveCrop boxes saved in the checkpoint to
a file that ``ContrastiveCropDataset(boxes_file=...)`` and
``tools/analysis_tools/visualize_ccrop_boxes.py --checkpoint`` read.
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
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import urlparse

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
    'encoder_k.0.',  # MMSelfSup 0.x MoCo, InterCLR
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
#: Module types of a downstream config that hold part of a ResNet (C4
#: detectors put ``layer4`` into the RoI head's shared head).
RESNET_PART_TYPES = RESNET_TYPES + ('ResLayer', 'ResLayerExtraNorm',
                                    'mmdet.ResLayer',
                                    'mmpretrain.ResLayerExtraNorm')
#: Hosts whose share links are web pages, not files.
WEB_PAGE_HOSTS = ('drive.google.com', 'docs.google.com')
#: Key of the ContrastiveCrop box state (as ContrastiveCropHook saves it).
CCROP_BOX_STATE_KEY = 'contrastive_crop'

#: torch's weights-only refusal: 'Unsupported global: GLOBAL a.B' or
#: 'unsupported GLOBAL os.system whose module os is blocked'.
_UNSAFE = re.compile(r'unsupported (?:global: )?GLOBAL ([\w.]+)', re.I)
PICKLE_RISK = ('unpickling a file can execute arbitrary code on this '
               'machine, so only do this for a file whose origin you '
               'trust')


class ConversionError(ValueError):
    """Base of the converter's errors (a clear message, no traceback in the
    CLI)."""


class NotACheckpointError(ConversionError):
    pass


class NoBackboneKeysError(ConversionError):
    pass


class DepthMismatchError(ConversionError):
    pass


class PickledObjectsError(ConversionError):
    """The file holds Python objects the safe loader refuses."""


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------
def _refuse_unsafe(path: str, name: str, e: Exception):
    raise PickledObjectsError(
        f'{path} holds a pickled Python object ({name}) that torch\'s safe '
        'loader (weights_only=True) refuses. Some releases save such '
        "objects on purpose (CLD's MoCo script pickles its optimizer and "
        'argparse args). To read the file anyway pass --allow-pickle '
        f'(allow_pickle=True): {PICKLE_RISK}.') from e


def load_checkpoint_file(path: str, sha256: Optional[str] = None,
                         allow_pickle: bool = False) -> dict:
    """Load ``path`` (local file or URL) with mmengine's loader; turn the
    many ways a wrong file fails into one clear error.

    ``allow_pickle=True`` loads with ``weights_only=False`` (arbitrary
    objects; arbitrary code execution if the file is malicious).
    """
    from mmssl_ext.utils.hub import is_url, load_checkpoint_verified
    if is_url(path) and urlparse(path).hostname in WEB_PAGE_HOSTS:
        raise ConversionError(
            f'{path} is a share page, not the checkpoint file itself: '
            'download the file in a browser (or with a Google Drive client '
            'such as gdown) and pass the local path')
    if not is_url(path) and not osp.isfile(osp.expanduser(path)):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    try:
        ckpt = load_checkpoint_verified(path, sha256=sha256,
                                        allow_pickle=allow_pickle)
    except pickle.UnpicklingError as e:
        unsafe = _UNSAFE.search(str(e))
        if unsafe:
            _refuse_unsafe(path, unsafe.group(1), e)
        raise NotACheckpointError(
            f'{path} is not a PyTorch checkpoint (torch.load failed: '
            f'UnpicklingError)') from e
    except (EOFError, zipfile.BadZipFile, UnicodeDecodeError,
            KeyError) as e:
        # KeyError: the legacy (non-zip) reader on arbitrary bytes
        raise NotACheckpointError(
            f'{path} is not a PyTorch checkpoint (torch.load failed: '
            f'{type(e).__name__}: {str(e)[:200]})') from e
    except (ModuleNotFoundError, AttributeError) as e:
        # --allow-pickle: the pickled object's class is not importable here
        raise ConversionError(
            f'{path} pickles an object whose class cannot be imported here '
            f'({e}); the converter cannot read it') from e
    except RuntimeError as e:
        # mmssl_ext's checked local loader (CheckpointLoadError) or torch's
        # own reader errors
        msg = str(e)
        unsafe = _UNSAFE.search(msg)
        if unsafe or 'not allow-listed' in msg:
            _refuse_unsafe(path, unsafe.group(1) if unsafe else
                           'a non-allow-listed type', e)
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


def _tensors(d: dict) -> 'OrderedDict[str, torch.Tensor]':
    return OrderedDict(
        (k, v) for k, v in d.items() if isinstance(v, torch.Tensor))


def get_state_dict(ckpt: dict, path: str = '<checkpoint>') -> Dict:
    """The tensor dict of a checkpoint: ``state_dict``, ``model`` (DeiT /
    MAE releases) or the dict itself when all its values are tensors."""
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            sd = ckpt[key]
            break
    else:
        sd = ckpt
    tensors = _tensors(sd)
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
# layouts of the released checkpoints
# --------------------------------------------------------------------------
class Layout(NamedTuple):
    """Where a checkpoint layout keeps its encoders.

    ``online`` / ``momentum``: ``(container, prefixes)``: the top-level key
    of the checkpoint holding the state dict, and the key prefixes tried in
    order (the first one holding a ResNet stem wins). ``momentum`` is None
    for methods without a momentum encoder. ``boxes``: top-level key of
    ContrastiveCrop's saved boxes, if any.
    """
    name: str
    origin: str
    online: Tuple[str, Tuple[str, ...]]
    momentum: Optional[Tuple[str, Tuple[str, ...]]] = None
    boxes: Optional[str] = None


#: ContrastiveCrop (``DDP_<method>_ccrop.py``): ``'<method>_state'`` is the
#: state dict of the DDP-wrapped model -> (online, momentum) prefixes.
CCROP_STATES = {
    'moco_state': (('module.encoder_q.', 'encoder_q.'),
                   ('module.encoder_k.', 'encoder_k.')),
    'byol_state': (('module.encoder_q.', 'encoder_q.'),
                   ('module.encoder_k.', 'encoder_k.')),
    'simclr_state': (('module.', ''), None),
    'simsiam_state': (('module.encoder.', 'encoder.'), None),
}


def _has_resnet_root(sd: Dict, prefix: str) -> bool:
    return any(
        k.startswith(prefix) and k[len(prefix):].split('.', 1)[0] in
        RESNET_ROOTS for k in sd)


def _is_resnet_with_head(sd: Dict) -> bool:
    """A bare ResNet (stem and ``layer1`` at the top level) plus other
    top-level modules (``fc`` ...). Without extras it is a backbone-only
    file, handled as already extracted."""
    roots = {k.split('.', 1)[0] for k in sd}
    return 'layer1' in roots and bool(roots & {'conv1', 'stem'}) and bool(
        roots - set(RESNET_ROOTS))


def detect_layout(ckpt: dict) -> Optional[Layout]:
    """The :class:`Layout` of a loaded checkpoint, or None when it matches
    no release layout (then the generic prefixes are tried)."""
    for key, (online, momentum) in CCROP_STATES.items():
        if isinstance(ckpt.get(key), dict):
            method = key[:-len('_state')]
            return Layout(
                f'contrastivecrop-{method}',
                f'ContrastiveCrop DDP_{method}_ccrop.py '
                f'({{{key!r}, \'boxes\', ...}})',
                (key, online), (key, momentum) if momentum else None,
                'boxes' if isinstance(ckpt.get('boxes'), torch.Tensor)
                else None)
    model = ckpt.get('model')
    if isinstance(model, dict) and any(
            _has_resnet_root(model, p)
            for p in ('module.encoder.', 'encoder.')):
        momentum = None
        if isinstance(ckpt.get('model_ema'), dict):
            momentum = ('model_ema', ('encoder.', 'module.encoder.'))
        return Layout(
            'infomin', "InfoMin-style trainer (CLD's "
            "main_imagenet_infomin_cld.py): {'model', 'model_ema', "
            "'contrast', ...}", ('model', ('module.encoder.', 'encoder.')),
            momentum)
    sd = ckpt.get('state_dict')
    if not isinstance(sd, dict):
        if _is_resnet_with_head(_tensors(ckpt)):
            return Layout('bare-resnet', 'bare ResNet state dict with a '
                          'classifier (torchvision style)', ('', ('', )))
        return None
    if _is_resnet_with_head(sd):
        return Layout('bare-resnet', "ResNet with a classifier in "
                      "{'state_dict'} (torchvision style)",
                      ('state_dict', ('', )))
    if any(k.startswith('module.encoder_q.') for k in sd):
        origin = ("CLD's main_imagenet_moco_cld.py (pickled optimizer and "
                  "args)" if 'args' in ckpt else
                  'facebookresearch/moco main_moco.py')
        return Layout('moco', origin, ('state_dict', ('module.encoder_q.', )),
                      ('state_dict', ('module.encoder_k.', )))
    if _has_resnet_root(sd, 'module.'):
        origin = ("InvP main.py (nn.DataParallel ResNet, {'state_dict', "
                  "'memory_banks', 'neigh', ...})" if 'memory_banks' in ckpt
                  else 'nn.DataParallel / DDP-wrapped ResNet')
        return Layout('dataparallel-resnet', origin,
                      ('state_dict', ('module.', )))
    if any(k.startswith(('backbone.', 'module.backbone.')) for k in sd):
        meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
        if 'mmcv_version' in meta or 'config' in meta:
            name, origin = 'mmselfsup-0.x', \
                'MMSelfSup 0.x / OpenSelfSup (mmcv runner)'
        else:
            name, origin = 'mmengine', ('MMEngine runner (mmssl_ext, '
                                        'MMPretrain, MMSelfSup 1.x)')
        return Layout(name, origin, ('state_dict', ONLINE_PREFIXES[:2]),
                      ('state_dict', MOMENTUM_PREFIXES[:5]))
    return None


# --------------------------------------------------------------------------
# selecting
# --------------------------------------------------------------------------
def _pick(sd: Dict, candidates: Sequence[str]) -> List[str]:
    found = [p for p in candidates if any(k.startswith(p) for k in sd)]
    if len(found) > 1:
        # e.g. MMSelfSup 0.x MoCo stores the online backbone twice
        # ('backbone.' and 'encoder_q.0.'); prefer one holding a ResNet stem.
        resnet = [p for p in found if _has_resnet_root(sd, p)]
        found = resnet[:1] or found[:1]
    return found


def _strip(sd: Dict, prefix: str) -> 'OrderedDict[str, torch.Tensor]':
    return OrderedDict(
        (k[len(prefix):], v.detach().cpu().clone()) for k, v in sd.items()
        if k.startswith(prefix))


def select_backbone(sd: Dict,
                    source: str = 'online',
                    prefix: Optional[str] = None
                    ) -> Tuple['OrderedDict[str, torch.Tensor]', str]:
    """Keys of the chosen encoder's backbone with the prefix stripped
    (generic prefixes, for checkpoints of no known release layout).

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
    found = _pick(sd, candidates)
    if not found:
        hint = ''
        if source == 'momentum':
            hint = (' This checkpoint has no momentum / target encoder that '
                    'the converter knows (SimCLR, SimSiam, NPID, ODC ... '
                    'have none: use --source online), or pass its prefix '
                    'with --prefix.')
        else:
            hint = (' It matches none of the release layouts the converter '
                    'knows (see docs/pretrained_weights.md); pass the '
                    "backbone's key prefix with --prefix.")
        raise NoBackboneKeysError(
            f'no backbone keys: none of the prefixes {list(candidates)} '
            f'occurs in the checkpoint (its top-level modules: '
            f'{_roots(sd)[:15]}).{hint}')
    return _strip(sd, found[0]), found[0]


def select_from_layout(ckpt: dict, layout: Layout, source: str = 'online',
                       prefix: Optional[str] = None
                       ) -> Tuple['OrderedDict[str, torch.Tensor]', str,
                                  str]:
    """The ``source`` encoder of a checkpoint of a known ``layout``.

    Returns ``(backbone_state_dict, prefix, container)``: the key prefix
    stripped and the top-level entry of ``ckpt`` that held the keys.
    """
    if source not in ('online', 'momentum'):
        raise ConversionError(
            f"--source must be 'online' or 'momentum', got {source!r}")
    place = layout.online if source == 'online' else layout.momentum
    if place is None:
        raise NoBackboneKeysError(
            f'this {layout.origin} checkpoint has no momentum / target '
            'encoder (the method trains a single encoder): use --source '
            'online')
    container, candidates = place
    sd = _tensors(ckpt[container] if container else ckpt)
    if prefix is not None:
        candidates = (prefix if prefix == '' or prefix.endswith('.') else
                      prefix + '.', )
    found = _pick(sd, candidates)
    if not found or (prefix is None
                     and not _has_resnet_root(sd, found[0])):
        hint = ''
        if source == 'momentum':
            hint = (' If the method has no momentum / target encoder '
                    '(SimCLR, SimSiam, NPID, ODC ...), use --source online.')
        raise NoBackboneKeysError(
            f'no backbone keys: the {source} encoder of a {layout.origin} '
            f'checkpoint is expected under {list(candidates)} in '
            f"ckpt['{container}'], whose top-level modules are "
            f'{_roots(sd)[:15]}; pass the prefix with --prefix.{hint}')
    return _strip(sd, found[0]), found[0], container


def drop_non_backbone(sd: Dict) -> Tuple[Dict, List[str]]:
    """For a ResNet, drop keys outside the ResNet modules (the classifier /
    projection ``fc.``, ``linear.``, ``instDis.`` ... of torchvision-style
    encoders)."""
    if not any(k.split('.', 1)[0] in RESNET_ROOTS for k in sd):
        return sd, []
    keep = OrderedDict(
        (k, v) for k, v in sd.items() if k.split('.', 1)[0] in RESNET_ROOTS)
    dropped = [k for k in sd if k not in keep]
    return keep, dropped


_SHORTCUT = re.compile(r'^(layer\d+\.\d+\.)shortcut\.')


def rename_shortcuts(sd: Dict) -> Tuple[Dict, int]:
    """kuangliu-style CIFAR ResNets (InvP's and CLD's ``resnet_cifar.py``)
    call the projection branch ``shortcut`` (``nn.Sequential(conv, bn)``);
    MMPretrain / MMDetection / torchvision call it ``downsample``."""
    n = sum(1 for k in sd if _SHORTCUT.match(k))
    if not n:
        return sd, 0
    return OrderedDict((_SHORTCUT.sub(r'\1downsample.', k), v)
                       for k, v in sd.items()), n


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


def check_depth(arch: Optional[dict], depth: int, where: str,
                hint: str = 'pass the depth the model was pre-trained with '
                '(or the pre-training config)') -> None:
    if arch is None:
        raise DepthMismatchError(
            f'{where} asks for a ResNet-{depth} but the extracted weights are '
            'not a ResNet (no layer1.* keys)')
    if arch['depth'] != depth:
        raise DepthMismatchError(
            f'{where} asks for a ResNet-{depth} but the checkpoint holds '
            f'{describe_arch(arch)}; {hint}')


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
            # DeepCluster's Sobel ResNet takes 2 channels
            channels = backbone_cfg.get('in_channels', 3)
            out = model(torch.zeros(1, channels, size, size))
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
    if report.get('new_in_target'):
        items = report['new_in_target']
        more = f' ... (+{len(items) - limit})' if len(items) > limit else ''
        lines.append(f'  initialised by the target itself (expected, not '
                     f'part of a backbone): {items[:limit]}{more}')
    if 'forward_shape' in report:
        lines.append(f'  forward on a dummy image: output '
                     f'{report["forward_shape"]}')
    lines.append('  OK' if report['ok'] else '  FAILED')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# downstream (target) configs
# --------------------------------------------------------------------------
def _plain(cfg) -> dict:
    cfg = copy.deepcopy(cfg)
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)


def _bn_instead_of_syncbn(obj):
    """SyncBN -> BN in a module config (same parameter names; SyncBN
    modules need a process group to run, not to be built)."""
    if isinstance(obj, dict):
        out = {k: _bn_instead_of_syncbn(v) for k, v in obj.items()}
        if out.get('type') in ('SyncBN', 'MMSyncBN', 'TorchSyncBN'):
            out['type'] = 'BN'
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_bn_instead_of_syncbn(v) for v in obj)
    return obj


def target_parts(config: str) -> Tuple[List[Tuple[str, dict]], str]:
    """The modules of a downstream config that the backbone file
    initialises: ``model.backbone`` and, for C4 detectors,
    ``model.roi_head.shared_head``. Returns ``([(name, cfg), ...],
    default_scope)``; the config's ``custom_imports`` are imported."""
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports', None):
        import_modules_from_strings(**cfg['custom_imports'])
    model = cfg.get('model', None)
    if model is None or model.get('backbone', None) is None:
        raise ConversionError(f'{config} has no model.backbone')
    parts = [('model.backbone', _plain(model['backbone']))]
    roi_head = model.get('roi_head', None)
    if roi_head is not None and roi_head.get('shared_head', None):
        parts.append(('model.roi_head.shared_head',
                      _plain(roi_head['shared_head'])))
    return parts, cfg.get('default_scope', None) or 'mmssl_ext'


def _build_in_scope(part_cfg: dict, scope: str):
    from mmengine.registry import MODELS, DefaultScope
    cfg = _bn_instead_of_syncbn(part_cfg)
    for key in ('init_cfg', 'pretrained'):
        cfg.pop(key, None)
    if scope == 'mmssl_ext':
        import mmssl_ext  # noqa: F401
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def check_target_depth(arch: Optional[dict], config: str,
                       parts: Sequence[Tuple[str, dict]]) -> None:
    """Raise :class:`DepthMismatchError` if a ResNet part of the target
    config has another depth than the extracted weights."""
    resnet_types = {t.split('.')[-1] for t in RESNET_PART_TYPES}
    for name, part in parts:
        if part.get('depth') is not None and str(part.get('type', '')).split(
                '.')[-1] in resnet_types:
            have = f'a ResNet-{arch["depth"]}' if arch and arch['depth'] \
                else 'this'
            check_depth(
                arch, int(part['depth']), f'{config} ({name})',
                hint=f'these weights cannot initialise it: transfer a '
                f'ResNet-{part["depth"]} checkpoint, or use a config built '
                f'for {have} backbone')


def verify_against_target(sd: Dict, config: str) -> dict:
    """Build the parts of a downstream config that the backbone file
    initialises and compare keys and shapes.

    Every key of those modules under a ResNet root (``conv1``, ``bn1``,
    ``stem``, ``layer1``-``layer4``) must be in ``sd`` with the same
    shape; keys of ``sd`` no part takes are unexpected. Parameters the
    detector adds itself (e.g. the extra norm of MMPretrain's
    ``ResLayerExtraNorm``) are listed as ``new_in_target``, not as errors.
    Returns the :func:`verify_state_dict` report plus ``new_in_target`` and
    ``parts``.
    """
    parts, scope = target_parts(config)
    expected: Dict[str, Tuple[int, ...]] = OrderedDict()
    for _, part in parts:
        module = _build_in_scope(part, scope)
        for k, v in module.state_dict().items():
            expected.setdefault(k, tuple(v.shape))
    required = [k for k in expected if k.split('.', 1)[0] in RESNET_ROOTS]
    new_in_target = [k for k in expected if k not in required]
    missing = [k for k in required if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [(k, tuple(sd[k].shape), expected[k]) for k in sd
                  if k in expected and tuple(sd[k].shape) != expected[k]]
    return dict(
        target=f'{config} ({" + ".join(n for n, _ in parts)})',
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
        loaded=len(required) - len(missing) - len(mismatched),
        new_in_target=new_in_target,
        parts=[n for n, _ in parts],
        ok=not (missing or unexpected or mismatched))


# --------------------------------------------------------------------------
# ContrastiveCrop boxes
# --------------------------------------------------------------------------
def check_boxes(boxes, where: str) -> torch.Tensor:
    """(N, 4) normalised ``(h0, w0, h1, w1)`` boxes (ContrastiveCrop's
    ``update_box`` order) as float32, or a :class:`ConversionError`."""
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or \
            boxes.shape[1] != 4 or boxes.shape[0] < 1:
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) \
            else type(boxes).__name__
        raise ConversionError(f'{where}: expected boxes of shape (N, 4), '
                              f'got {shape}')
    b = boxes.detach().cpu().float().clone()
    if not torch.isfinite(b).all() or (b < 0).any() or (b > 1).any() or \
            (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise ConversionError(
            f'{where}: boxes must be normalised (h0, w0, h1, w1) with '
            '0 <= h0 <= h1 <= 1 and 0 <= w0 <= w1 <= 1')
    return b


def export_boxes(ckpt: dict, layout: Optional[Layout], dst: str, src: str,
                 log=print) -> torch.Tensor:
    """Write the ContrastiveCrop boxes of ``ckpt`` to ``dst`` as
    ``{'contrastive_crop': {'boxes', 'active', 'last_refresh_epoch'},
    'meta': ...}``: the entry ``ContrastiveCropHook`` saves in checkpoints,
    read by ``ContrastiveCropDataset(boxes_file=dst)`` and by
    ``tools/analysis_tools/visualize_ccrop_boxes.py --checkpoint dst``."""
    if layout is not None and layout.boxes is not None:
        boxes, epoch = ckpt[layout.boxes], ckpt.get('epoch', -1)
    elif isinstance(ckpt.get(CCROP_BOX_STATE_KEY), dict):
        state = ckpt[CCROP_BOX_STATE_KEY]  # one of our own checkpoints
        boxes, epoch = state.get('boxes'), state.get('last_refresh_epoch',
                                                     -1)
    else:
        raise ConversionError(
            f'--boxes-out: {src} holds no ContrastiveCrop boxes (expected '
            "the 'boxes' of a ContrastiveCrop DDP_*_ccrop.py checkpoint or "
            f"the '{CCROP_BOX_STATE_KEY}' entry of ContrastiveCropHook)")
    boxes = check_boxes(boxes, src)
    full = (boxes == boxes.new_tensor([0., 0., 1., 1.])).all(1)
    state = dict(boxes=boxes, active=True,
                 last_refresh_epoch=int(epoch) if isinstance(
                     epoch, int) else -1)
    meta = dict(converted_from=osp.basename(src),
                layout=layout.name if layout is not None else 'mmssl_ext',
                box_format='(h0, w0, h1, w1), normalised to [0, 1]',
                num_boxes=int(boxes.shape[0]),
                order='data-set order of the run that saved them')
    _atomic_save(dict(contrastive_crop=state, meta=meta), dst)
    log(f'wrote {boxes.shape[0]} ContrastiveCrop boxes ({int(full.sum())} '
        f'still the full image) to {dst}')
    return boxes


def _atomic_save(obj, dst: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, dst)


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
                     allow_pickle: bool = False,
                     target_config: Optional[str] = None,
                     boxes_out: Optional[str] = None,
                     log=print) -> dict:
    """Convert ``src`` into a backbone-only checkpoint written to ``dst``.

    Returns a summary dict: ``state_dict``, ``meta``, ``already_extracted``,
    ``layout`` (the release layout recognised, or None), ``arch``,
    ``dropped``, ``report`` (with ``verify``), ``target_report`` (with
    ``target_config``) and ``boxes`` (with ``boxes_out``). Raises a
    :class:`ConversionError` subclass for a bad input; nothing is written
    unless every check passed. ``verify`` failures are reported and the
    file is still written; with ``target_config`` a file that does not fit
    the target is not written.
    """
    ckpt = load_checkpoint_file(src, sha256=sha256,
                                allow_pickle=allow_pickle)
    layout = detect_layout(ckpt)
    meta_in = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}

    if layout is not None:
        already = False
    else:
        sd = get_state_dict(ckpt, src)
        already = bool(meta_in.get('extracted_backbone')) or (
            looks_like_backbone(sd) and prefix is None)
    dropped, renamed = [], 0
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
        backbone, used = OrderedDict(sd), meta_in.get('prefix', '')
        container = meta_in.get('container', '')
    else:
        if layout is not None:
            log(f'{osp.basename(src)}: {layout.origin} checkpoint')
            backbone, used, container = select_from_layout(
                ckpt, layout, source, prefix)
        else:
            backbone, used = select_backbone(sd, source, prefix)
            container = next((k for k in ('state_dict', 'model')
                              if isinstance(ckpt.get(k), dict)), '')
        backbone, dropped = drop_non_backbone(backbone)
        if dropped:
            log(f'dropped {len(dropped)} non-backbone keys: {dropped[:5]}')
        backbone, renamed = rename_shortcuts(backbone)
        if renamed:
            log(f'renamed {renamed} shortcut.* keys to downsample.*')

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
    if target_config is not None:
        parts, _ = target_parts(target_config)
        check_target_depth(arch, target_config, parts)

    meta = {k: meta_in[k] for k in KEPT_META if k in meta_in}
    if 'epoch' not in meta and isinstance(ckpt.get('epoch'), int):
        meta['epoch'] = ckpt['epoch']  # the release scripts' top-level epoch
    if already:
        meta.update({k: v for k, v in meta_in.items()
                     if k not in meta})
    from mmssl_ext.version import __version__
    meta.update(
        extracted_backbone=True,
        source=source,
        prefix=used,
        container=container,
        converted_from=meta_in.get('converted_from', osp.basename(src))
        if already else osp.basename(src),
        arch=arch,
        mmssl_ext_version=__version__)
    if layout is not None:
        meta['layout'] = layout.name
    elif not already:
        meta['layout'] = 'generic'

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
    target_report = None
    if target_config is not None:
        target_report = verify_against_target(backbone, target_config)
        log(format_report(target_report))

    boxes = None
    if boxes_out is not None:
        boxes = export_boxes(ckpt, layout, boxes_out, src, log)
    if dst is not None and target_report is not None and \
            not target_report['ok']:
        log(f'{dst} not written: the weights do not fit {target_config}')
    elif dst is not None:
        _atomic_save(dict(state_dict=backbone, meta=meta), dst)
        log(f'wrote {len(backbone)} tensors of {describe_arch(arch)} '
            f'({source} encoder, keys {container or "<top level>"}'
            f'[{used!r}*]) to {dst}')
    return dict(state_dict=backbone, meta=meta, already_extracted=already,
                layout=layout, arch=arch, dropped=dropped, report=report,
                target_report=target_report, boxes=boxes)


def parse_args(argv: Optional[Sequence[str]] = None):
    p = argparse.ArgumentParser(
        description='Extract the backbone of a self-supervised checkpoint '
        'for linear probing / detection transfer (the release layouts of '
        'MMSelfSup / MMPretrain, MoCo, InvP, CLD, ContrastiveCrop are '
        'recognised by themselves)')
    p.add_argument('checkpoint', help='pre-training checkpoint (path or URL)')
    p.add_argument('output', help='backbone-only checkpoint to write')
    p.add_argument('--source', choices=['online', 'momentum'],
                   default='online',
                   help='online encoder (default) or the momentum / key / '
                   'target (EMA) encoder, where the method has one')
    p.add_argument('--prefix', default=None,
                   help='key prefix of the backbone in the checkpoint '
                   '(default: detected from the layout and --source)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--depth', type=int, default=None,
                   help='expected ResNet depth (checked)')
    g.add_argument('--config', default=None,
                   help='pre-training config: its model.backbone is the '
                   'expected architecture and the --verify target')
    p.add_argument('--target-config', default=None,
                   help='downstream config the file will initialise (e.g. '
                   'a detector): its backbone (and C4 shared head) depth '
                   'is checked (exit 2) and their ResNet keys verified '
                   '(exit 1)')
    p.add_argument('--verify', action='store_true',
                   help='build the target backbone and report missing / '
                   'unexpected keys (exit status 1 if any)')
    p.add_argument('--verify-target', choices=['mmpretrain', 'mmdet'],
                   default='mmpretrain',
                   help='whose ResNet to build for --verify')
    p.add_argument('--sha256', default=None,
                   help='expected SHA-256 (or >= 8-digit prefix) of the '
                   'input file')
    p.add_argument('--allow-pickle', action='store_true',
                   help='let torch.load unpickle arbitrary Python objects '
                   '(weights_only=False), needed for checkpoints that '
                   "pickle e.g. an optimizer object and argparse args (CLD's "
                   f'MoCo script). DANGER: {PICKLE_RISK}')
    p.add_argument('--boxes-out', default=None,
                   help='also write the ContrastiveCrop boxes saved in the '
                   'checkpoint to this file (for ContrastiveCropDataset('
                   'boxes_file=...))')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        out = extract_backbone(
            args.checkpoint, args.output, source=args.source,
            prefix=args.prefix, depth=args.depth, config=args.config,
            verify=args.verify, verify_target=args.verify_target,
            sha256=args.sha256, allow_pickle=args.allow_pickle,
            target_config=args.target_config, boxes_out=args.boxes_out)
    except (ConversionError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for key in ('report', 'target_report'):
        if out[key] is not None and not out[key]['ok']:
            print(f'error: the converted weights do not fit '
                  f'{out[key]["target"]} (see the report above)',
                  file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
