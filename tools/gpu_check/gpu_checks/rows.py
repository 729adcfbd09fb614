"""Which recipes the kit runs, in priority order (the time guard drops the
tail first)."""
import os.path as osp
import sys

from .common import ROOT

sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
import digits_rows  # noqa: E402  (one table of digits rows for every tool)

sys.path.pop(0)

#: digits rows beyond benchmarks/digits_rows.py: the clustering baselines,
#: whose k-means / cluster-memory paths have their own CUDA code
EXTRA_DIGITS = {
    'odc': 'configs/odc/odc_resnet18-cifar_1xb64-coslr-20e_digits.py',
    'deepcluster': ('configs/deepcluster/deepcluster-sobel_resnet18-cifar_'
                    '1xb64-coslr-20e_digits.py'),
}
COMPOSED = ('mocov2-interimage-group-ccrop', 'byol-interimage',
            'simsiam-group')
_FIRST = ('interclr', 'mocov2', 'invp', 'npid', 'cld-npid',
          'npid-fullsoftmax', 'cld-mocov2')


def digits_table():
    """``[(row, config, base)]``: every row of ``digits_rows`` (the issue's
    methods and their bases first), then the extra baselines."""
    names = list(_FIRST) + [n for n in digits_rows.CONFIGS
                            if n not in _FIRST]
    rows = [(n, digits_rows.CONFIGS[n], digits_rows.BASE.get(n))
            for n in names]
    rows += [(n, c, None) for n, c in EXTRA_DIGITS.items()]
    # ComposedSSL on the device: branches on frameworks without negatives,
    # and the stack (inter-image + group + ContrastiveCrop on MoCo v2)
    rows += [(n, digits_rows.MATRIX[n], digits_rows.MATRIX_BASE[n])
             for n in COMPOSED]
    return rows


_MMP = 'mmpretrain::{}_resnet50_{}-coslr-200e_in1k.py'
_INVP = 'configs/invp/invp_resnet50_8xb16-coslr-200e_in1k.py'
_CLD = 'configs/cld/cld-mocov2_resnet50_8xb64-coslr-200e_in1k.py'

#: ImageNet-1k ResNet-50 rows: (row, config, base, model overrides, note).
#: Targets: the issue's >= 0.9x of the base's images/s for these rows.
IMAGENET = [
    ('mocov2', _MMP.format('mocov2/mocov2', '8xb32'), None, {}, ''),
    ('interclr', 'configs/interclr/'
     'interclr-moco_resnet50_8xb32-coslr-200e_in1k.py', 'mocov2', {}, ''),
    ('invp-npid-baseline', _INVP, None, {'model.lambda_inv': 0.0},
     'InvP with lambda_inv=0: the instance term alone (the digits rows\' '
     '"npid")'),
    ('invp', _INVP, 'invp-npid-baseline', {'model.ramp_up': 'none'},
     'ramp-up off: the invariance term (forward and backward) is on from '
     'the first iteration, as after the 30-epoch ramp-up'),
    ('cld-mocov2-nogroup', _CLD, None, {'model.group_head': None},
     'MoCoCLD without the group branch: same three views'),
    ('cld-mocov2', _CLD, 'cld-mocov2-nogroup', {}, ''),
    ('npid', 'configs/npid/npid_resnet50_8xb32-steplr-200e_in1k.py', None,
     {}, 'NPID, 65,536 sampled negatives'),
    ('simclr', _MMP.format('simclr/simclr', '8xb32'), None, {}, ''),
    ('bsim-simclr', 'configs/bsim/bsim-simclr_resnet50_8xb32-coslr-200e_'
     'in1k.py', 'simclr', {}, ''),
    ('bsim-mocov2', 'configs/bsim/bsim-mocov2_resnet50_8xb32-coslr-200e_'
     'in1k.py', 'mocov2', {}, ''),
    ('byol', _MMP.format('byol/byol', '16xb256'), None, {},
     'recipe batch 256 per GPU; measured at 32'),
    ('bsim-byol', 'configs/bsim/bsim-byol_resnet50_16xb256-coslr-200e_'
     'in1k.py', 'byol', {}, ''),
    ('simsiam', _MMP.format('simsiam/simsiam', '8xb32'), None, {}, ''),
    ('bsim-simsiam', 'configs/bsim/bsim-simsiam_resnet50_8xb32-coslr-200e_'
     'in1k.py', 'simsiam', {}, ''),
    ('ccrop-mocov2', 'configs/ccrop/ccrop-mocov2_resnet50_8xb32-coslr-100e_'
     'in1k.py', 'mocov2', {},
     'same model as MoCo v2: ContrastiveCrop works in the CPU data '
     'pipeline and the box refresh, not in the step measured here'),
    ('odc', 'configs/odc/odc_resnet50_8xb64-steplr-440e_in1k.py', None, {},
     ''),
    ('deepcluster', 'configs/deepcluster/'
     'deepcluster-sobel_resnet50_8xb64-steplr-200e_in1k.py', None, {}, ''),
]
#: (method row, base row, minimum images/s ratio): the issue's targets
IMAGENET_TARGETS = [('interclr', 'mocov2', 0.9),
                    ('invp', 'invp-npid-baseline', 0.9),
                    ('cld-mocov2', 'cld-mocov2-nogroup', 0.9)]
#: extra ratios reported for information (different view counts / bases)
IMAGENET_INFO_RATIOS = [('invp', 'npid'), ('cld-mocov2', 'mocov2')]
IMAGENET_FIRST = ('mocov2', 'interclr', 'invp-npid-baseline', 'invp',
                  'cld-mocov2-nogroup', 'cld-mocov2')

#: digits recipes trained by two ranks on one device
DDP_ROWS = ('interclr', 'invp')
