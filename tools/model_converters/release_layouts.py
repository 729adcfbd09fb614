"""Where each release layout keeps its encoders: a registry of small readers
(``READERS``, tried in order; docs/pretrained_weights.md), one row per
release: a test that recognises the checkpoint and the :class:`Layout` of
that release.
"""
from typing import NamedTuple, Optional, Tuple

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
ENCODER_Q = ('module.encoder_q.', 'encoder_q.')
ENCODER_K = ('module.encoder_k.', 'encoder_k.')
ENCODER = ('module.encoder.', 'encoder.')
SD = 'state_dict'
Place = Tuple[str, Tuple[str, ...]]


class Layout(NamedTuple):
    """``online`` / ``momentum``: ``(container, prefixes)``, the top-level
    key holding the state dict ('' = the checkpoint itself) and the key
    prefixes tried in order; ``momentum`` None for single-encoder methods
    (or a container the checkpoint lacks). Every layout but ``generic``
    keeps a ResNet (with its stem) there."""
    name: str
    origin: str
    online: Place
    momentum: Optional[Place] = None


def tensors(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)}


def has_resnet_root(sd: dict, prefix: str) -> bool:
    return any(
        k.startswith(prefix) and k[len(prefix):].split('.', 1)[0] in
        RESNET_ROOTS for k in sd)


def _sd(ckpt: dict, key='state_dict') -> dict:
    return ckpt[key] if isinstance(ckpt.get(key), dict) else {}


def _prefixed(ckpt: dict, prefixes, key='state_dict') -> bool:
    return any(k.startswith(prefixes) for k in _sd(ckpt, key))


def _resnet_with_head(sd: dict) -> bool:
    """A bare ResNet plus other top-level modules (``fc`` ...); without
    extras it is a backbone-only file (already extracted)."""
    roots = {k.split('.', 1)[0] for k in sd}
    return 'layer1' in roots and bool(roots & {'conv1', 'stem'}) and bool(
        roots - set(RESNET_ROOTS))


def _ccrop(method: str, online, momentum=None):
    key = f'{method}_state'
    return (lambda ckpt: isinstance(ckpt.get(key), dict),
            Layout(f'contrastivecrop-{method}', f'ContrastiveCrop DDP_'
                   f"{method}_ccrop.py ({{{key!r}, 'boxes', ...}})",
                   (key, online), (key, momentum) if momentum else None))


#: ``(recognises(ckpt), Layout)``, the first match wins
READERS = (
    # ContrastiveCrop DDP_{moco,byol,simclr,simsiam}_ccrop.py:
    # {'<m>_state', 'boxes', 'optimizer_state', 'epoch'}
    _ccrop('moco', ENCODER_Q, ENCODER_K),
    _ccrop('byol', ENCODER_Q, ENCODER_K),
    _ccrop('simclr', ('module.', '')), _ccrop('simsiam', ENCODER),
    (lambda ckpt: any(has_resnet_root(_sd(ckpt, 'model'), p)
                      for p in ENCODER),
     Layout('infomin', "InfoMin-style trainer (CLD's main_imagenet_infomin_"
            "cld.py): {'model', 'model_ema', 'contrast', ...}",
            ('model', ENCODER), ('model_ema', ENCODER[::-1]))),
    (lambda ckpt: _resnet_with_head(_sd(ckpt)),
     Layout('bare-resnet', "ResNet with a classifier in {'state_dict'} "
            '(torchvision style)', (SD, ('', )))),
    (lambda ckpt: not isinstance(ckpt.get(SD), dict) and _resnet_with_head(
        tensors(ckpt)),
     Layout('bare-resnet', 'bare ResNet state dict with a classifier '
            '(torchvision style)', ('', ('', )))),
    (lambda ckpt: 'args' in ckpt and _prefixed(ckpt, ENCODER_Q[0]),
     Layout('moco', "CLD's main_imagenet_moco_cld.py (pickled optimizer and "
            'args)', (SD, ENCODER_Q[:1]), (SD, ENCODER_K[:1]))),
    (lambda ckpt: _prefixed(ckpt, ENCODER_Q[0]),
     Layout('moco', 'facebookresearch/moco main_moco.py',
            (SD, ENCODER_Q[:1]), (SD, ENCODER_K[:1]))),
    (lambda ckpt: 'memory_banks' in ckpt and has_resnet_root(_sd(ckpt),
                                                             'module.'),
     Layout('dataparallel-resnet', "InvP main.py (nn.DataParallel ResNet, "
            "{'state_dict', 'memory_banks', 'neigh', ...})",
            (SD, ('module.', )))),
    (lambda ckpt: has_resnet_root(_sd(ckpt), 'module.'),
     Layout('dataparallel-resnet', 'nn.DataParallel / DDP-wrapped ResNet',
            (SD, ('module.', )))),
    # MMSelfSup 0.x / OpenSelfSup (InterCLR's release): meta of mmcv's runner
    (lambda ckpt: _prefixed(ckpt, ONLINE_PREFIXES[:2]) and bool(
        {'mmcv_version', 'config'} & set(_sd(ckpt, 'meta'))),
     Layout('mmselfsup-0.x', 'MMSelfSup 0.x / OpenSelfSup (mmcv runner)',
            (SD, ONLINE_PREFIXES[:2]), (SD, MOMENTUM_PREFIXES[:5]))),
    (lambda ckpt: _prefixed(ckpt, ONLINE_PREFIXES[:2]),
     Layout('mmengine', 'MMEngine runner (mmssl_ext, MMPretrain, MMSelfSup '
            '1.x)', (SD, ONLINE_PREFIXES[:2]), (SD, MOMENTUM_PREFIXES[:5]))),
)


def detect_layout(ckpt: dict) -> Optional[Layout]:
    """The layout of the first reader that recognises ``ckpt``."""
    return next((lay for test, lay in READERS if test(ckpt)), None)


def generic_layout(ckpt: dict) -> Layout:
    """No known release: the generic prefixes in ``state_dict`` /
    ``model`` / the checkpoint itself."""
    container = next((k for k in (SD, 'model')
                      if isinstance(ckpt.get(k), dict)), '')
    return Layout('generic', 'checkpoint of no known release layout',
                  (container, ONLINE_PREFIXES),
                  (container, MOMENTUM_PREFIXES))
