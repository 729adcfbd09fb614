"""Registries of mmssl_ext.

Every node is a child of the matching MMPretrain node (scope ``mmssl_ext``),
so bare MMPretrain / MMEngine names (``ResNet``, ``PackInputs``, ``LARS``,
``UniversalVisualizer`` ...) still resolve through the parent chain while our
own types live in our scope. ``locations`` is set on every node: mmssl_ext is
not in MMEngine's ``MODULE2PACKAGE`` table, so lazy imports are the only way
a config that never imports the package explicitly finds our classes.

We mirror *every* MMPretrain node, even those we leave empty: with
``default_scope='mmssl_ext'`` a node without an ``mmssl_ext`` child would fall
back to MMEngine's root registry and miss MMPretrain's types.
"""
from mmengine.registry import Registry
from mmpretrain import registry as _mmpt

def _child(parent: Registry, location: str) -> Registry:
    return Registry(
        parent.name,
        parent=parent,
        scope='mmssl_ext',
        locations=[f'mmssl_ext.{location}'])


RUNNERS = _child(_mmpt.RUNNERS, 'engine')
RUNNER_CONSTRUCTORS = _child(_mmpt.RUNNER_CONSTRUCTORS, 'engine')
LOOPS = _child(_mmpt.LOOPS, 'engine')
HOOKS = _child(_mmpt.HOOKS, 'engine')
LOG_PROCESSORS = _child(_mmpt.LOG_PROCESSORS, 'engine')
OPTIMIZERS = _child(_mmpt.OPTIMIZERS, 'engine')
OPTIM_WRAPPERS = _child(_mmpt.OPTIM_WRAPPERS, 'engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child(_mmpt.OPTIM_WRAPPER_CONSTRUCTORS,
                                    'engine')
PARAM_SCHEDULERS = _child(_mmpt.PARAM_SCHEDULERS, 'engine')

DATASETS = _child(_mmpt.DATASETS, 'datasets')
DATA_SAMPLERS = _child(_mmpt.DATA_SAMPLERS, 'datasets')
TRANSFORMS = _child(_mmpt.TRANSFORMS, 'datasets')

MODELS = _child(_mmpt.MODELS, 'models')
MODEL_WRAPPERS = _child(_mmpt.MODEL_WRAPPERS, 'models')
WEIGHT_INITIALIZERS = _child(_mmpt.WEIGHT_INITIALIZERS, 'models')
BATCH_AUGMENTS = _child(_mmpt.BATCH_AUGMENTS, 'models')
TASK_UTILS = _child(_mmpt.TASK_UTILS, 'models')
TOKENIZER = _child(_mmpt.TOKENIZER, 'models')

METRICS = _child(_mmpt.METRICS, 'evaluation')
EVALUATORS = _child(_mmpt.EVALUATORS, 'evaluation')

VISUALIZERS = _child(_mmpt.VISUALIZERS, 'visualization')
VISBACKENDS = _child(_mmpt.VISBACKENDS, 'visualization')

#: Every node, for tests that check the mirror is complete.
ALL_REGISTRIES = {
    name: obj
    for name, obj in dict(globals()).items()
    if isinstance(obj, Registry)
}
