import torch
from mmengine.hooks import Hook
from mmpretrain.utils import get_ori_model

from mmssl_ext.registry import HOOKS


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Stores every 4-D parameter and buffer of the model in the
    ``channels_last`` memory format, so that convolutions run in the layout
    oneDNN (CPU) and cuDNN tensor cores (CUDA, AMP) are fastest in; the
    values are unchanged. On the digits recipes it takes a training step
    about 20 % less CPU time on one thread
    (``benchmarks/bench_overhead.py --layout``).
    Applied before training (after the weights are initialised or loaded,
    the optimizer keeps its parameter objects) and before a test run;
    results agree with the default layout to rounding, not bit for bit.

    On the CPU, the oneDNN of PyTorch 2.14 corrupts the heap in the backward
    pass of a 1x1 convolution with stride > 1 and fewer than 8 input
    channels in this layout (measured: 2 -> 4 and 4 -> 8 abort, 8 -> 16 and
    wider agree with the default layout to 1e-14 in float64); such a model
    is refused, naming the module.

    ``custom_hooks = [dict(type='ChannelsLastHook')]``
    """
    priority = 'VERY_HIGH'  # before ValBeforeTrainHook's validation

    @staticmethod
    def _convert(runner) -> None:
        model = get_ori_model(runner.model)
        if next(model.parameters()).device.type == 'cpu':
            for name, m in model.named_modules():
                if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (
                        1, 1) and max(m.stride) > 1 and m.in_channels < 8:
                    raise ValueError(
                        f'ChannelsLastHook: {name} is a 1x1 convolution '
                        f'with stride {m.stride} and {m.in_channels} input '
                        "channels, whose channels_last backward corrupts "
                        "memory in the CPU's oneDNN; remove the hook from "
                        '`custom_hooks` or widen the network to >= 8 '
                        'channels.')
        model.to(memory_format=torch.channels_last)

    def before_train(self, runner) -> None:
        self._convert(runner)

    def before_test(self, runner) -> None:
        self._convert(runner)
