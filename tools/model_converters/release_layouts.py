"""Where each release layout keeps its encoders: one small reader per
layout, in a registry (``READERS``, tried in order; docs/pretrained_weights.md).

A reader looks at a loaded checkpoint and returns its :class:`Layout`, or
None when the checkpoint is not of its layout.
"""
from collections import OrderedDict
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch

#: Top-level module names of a (torchvision / MMPretrain / MMDetection) ResNet.
RESNET_ROOTS = ('conv1', 'bn1', 'stem', 'layer1', 'layer2', 'layer3',
                'layer4')
#: ``--source online``: the trained encoder's backbone.
ONLINE_PREFIXES = ('backbone.', 'module.backbone.', 'module.encoder_q.')
#: ``--source momentum``: EMA / target encoders (MMEngine's EMA modules wrap
#: ``nn.Sequential(backbone, neck)`` -> ``module.0.``).
MOMENTUM_PREFIXES = (
    'encoder_k.module.0.',  # MMPretrain MoCo v2; MMSelfSup 1.x
    'target_net.module.0.',  # MMPretrain BYOL; MMSelfSup 1.x
    'momentum_encoder.module.0.',  # MMPretrain MoCo v3
    'encoder_k.0.',  # MMSelfSup 0.x MoCo, InterCLR
    'target_net.0.',  # MMSelfSup 0.x BYOL
    'module.encoder_k.',  # facebookresearch/moco release
)

Place = Tuple[str, Tuple[str, ...]]


class Layout(NamedTuple):
    """``online`` / ``momentum``: ``(container, prefixes)``, the top-level
    key holding the state dict ('' = the checkpoint itself) and the key
    prefixes tried in order; ``momentum`` None for single-encoder methods.
    ``boxes``: top-level key of ContrastiveCrop's boxes. ``resnet``: the
    encoder must hold a ResNet stem (False for the generic prefixes)."""
    name: str
    origin: str
    online: Place
    momentum: Optional[Place] = None
    boxes: Optional[str] = None
    resnet: bool = True


READERS: List[Callable[[dict], Optional[Layout]]] = []


def reader(fn):
    READERS.append(fn)
    return fn


def tensors(d: dict) -> 'OrderedDict[str, torch.Tensor]':
    return OrderedDict(
        (k, v) for k, v in d.items() if isinstance(v, torch.Tensor))


def has_resnet_root(sd: Dict, prefix: str) -> bool:
    return any(
        k.startswith(prefix) and k[len(prefix):].split('.', 1)[0] in
        RESNET_ROOTS for k in sd)


def resnet_with_head(sd: Dict) -> bool:
    """A bare ResNet plus other top-level modules (``fc`` ...); without
    extras it is a backbone-only file (already extracted)."""
    roots = {k.split('.', 1)[0] for k in sd}
    return 'layer1' in roots and bool(roots & {'conv1', 'stem'}) and bool(
        roots - set(RESNET_ROOTS))


#: ContrastiveCrop ``'<method>_state'`` -> (online, momentum) prefixes
CCROP_STATES = {
    'moco_state': (('module.encoder_q.', 'encoder_q.'),
                   ('module.encoder_k.', 'encoder_k.')),
    'byol_state': (('module.encoder_q.', 'encoder_q.'),
                   ('module.encoder_k.', 'encoder_k.')),
    'simclr_state': (('module.', ''), None),
    'simsiam_state': (('module.encoder.', 'encoder.'), None),
}


@reader
def contrastivecrop(ckpt: dict) -> Optional[Layout]:
    """``DDP_{moco,simclr,byol,simsiam}_ccrop.py``: ``{'<m>_state',
    'boxes', 'optimizer_state', 'epoch'}``."""
    for key, (online, momentum) in CCROP_STATES.items():
        if isinstance(ckpt.get(key), dict):
            method = key[:-len('_state')]
            boxes = 'boxes' if isinstance(ckpt.get('boxes'),
                                          torch.Tensor) else None
            return Layout(
                f'contrastivecrop-{method}', f'ContrastiveCrop DDP_{method}'
                f"_ccrop.py ({{{key!r}, 'boxes', ...}})", (key, online),
                (key, momentum) if momentum else None, boxes)
    return None


@reader
def infomin(ckpt: dict) -> Optional[Layout]:
    """InfoMin-style trainers (CLD's ``main_imagenet_infomin_cld.py``):
    ``{'model', 'model_ema', 'contrast', ...}``."""
    prefixes = ('module.encoder.', 'encoder.')
    model = ckpt.get('model')
    if not isinstance(model, dict) or not any(
            has_resnet_root(model, p) for p in prefixes):
        return None
    ema = isinstance(ckpt.get('model_ema'), dict)
    return Layout('infomin', "InfoMin-style trainer (CLD's main_imagenet_"
                  "infomin_cld.py): {'model', 'model_ema', 'contrast', ...}",
                  ('model', prefixes),
                  ('model_ema', prefixes[::-1]) if ema else None)


@reader
def bare_resnet(ckpt: dict) -> Optional[Layout]:
    """A torchvision-style ResNet with a classifier, bare or in
    ``{'state_dict'}``."""
    if isinstance(ckpt.get('state_dict'), dict):
        if resnet_with_head(ckpt['state_dict']):
            return Layout('bare-resnet', "ResNet with a classifier in "
                          "{'state_dict'} (torchvision style)",
                          ('state_dict', ('', )))
    elif resnet_with_head(tensors(ckpt)):
        return Layout('bare-resnet', 'bare ResNet state dict with a '
                      'classifier (torchvision style)', ('', ('', )))
    return None


@reader
def moco_builder(ckpt: dict) -> Optional[Layout]:
    """facebookresearch/moco ``main_moco.py`` and CLD's
    ``main_imagenet_moco_cld.py`` (which also pickles its optimizer and
    argparse args)."""
    sd = ckpt.get('state_dict')
    if not isinstance(sd, dict) or not any(
            k.startswith('module.encoder_q.') for k in sd):
        return None
    origin = ("CLD's main_imagenet_moco_cld.py (pickled optimizer and args)"
              if 'args' in ckpt else 'facebookresearch/moco main_moco.py')
    return Layout('moco', origin, ('state_dict', ('module.encoder_q.', )),
                  ('state_dict', ('module.encoder_k.', )))


@reader
def dataparallel_resnet(ckpt: dict) -> Optional[Layout]:
    """InvP ``main.py`` (``{'state_dict', 'memory_banks', 'neigh'}``) and
    other ``nn.DataParallel`` / DDP-wrapped ResNets."""
    sd = ckpt.get('state_dict')
    if not isinstance(sd, dict) or not has_resnet_root(sd, 'module.'):
        return None
    origin = ("InvP main.py (nn.DataParallel ResNet, {'state_dict', "
              "'memory_banks', 'neigh', ...})" if 'memory_banks' in ckpt else
              'nn.DataParallel / DDP-wrapped ResNet')
    return Layout('dataparallel-resnet', origin,
                  ('state_dict', ('module.', )))


@reader
def openmmlab(ckpt: dict) -> Optional[Layout]:
    """MMEngine runners (this package, MMPretrain, MMSelfSup 1.x) and the
    mmcv runner of MMSelfSup 0.x / OpenSelfSup (InterCLR's release)."""
    sd = ckpt.get('state_dict')
    if not isinstance(sd, dict) or not any(
            k.startswith(ONLINE_PREFIXES[:2]) for k in sd):
        return None
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    if 'mmcv_version' in meta or 'config' in meta:
        name, origin = 'mmselfsup-0.x', ('MMSelfSup 0.x / OpenSelfSup (mmcv '
                                         'runner)')
    else:
        name, origin = 'mmengine', ('MMEngine runner (mmssl_ext, '
                                    'MMPretrain, MMSelfSup 1.x)')
    return Layout(name, origin, ('state_dict', ONLINE_PREFIXES[:2]),
                  ('state_dict', MOMENTUM_PREFIXES[:5]))


def detect_layout(ckpt: dict) -> Optional[Layout]:
    """The layout of the first reader that recognises ``ckpt``."""
    return next((lay for lay in map(lambda r: r(ckpt), READERS) if lay),
                None)


def generic_layout(ckpt: dict) -> Layout:
    """No known release: the generic prefixes in ``state_dict`` /
    ``model`` / the checkpoint itself."""
    container = next((k for k in ('state_dict', 'model')
                      if isinstance(ckpt.get(k), dict)), '')
    return Layout('generic', 'checkpoint of no known release layout',
                  (container, ONLINE_PREFIXES),
                  (container, MOMENTUM_PREFIXES), resnet=False)
