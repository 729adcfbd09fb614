from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmssl_ext.registry import HOOKS


@HOOKS.register_module()
class ValBeforeTrainHook(Hook):
    """Run the validation loop once before the first training epoch.

    For self-supervised runs this records the kNN accuracy of the randomly
    initialised network (after ``init_weights``, with the run's seed), the
    floor every pre-training must beat. Skipped when resuming. The metrics
    are logged with the prefix ``init/`` and kept in the message hub under
    ``val_before_train``.
    """
    # after CheckpointHook.before_train (VERY_LOW too, registered earlier):
    # a save_best checkpoint hook needs its file backend during validation
    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        if runner.val_loop is None or runner.iter > 0:
            return
        metrics = runner.val_loop.run()
        runner.message_hub.update_info('val_before_train', dict(metrics))
        msg = ', '.join(f'{k}: {v:.2f}' for k, v in metrics.items())
        print_log(f'Before training (random init): {msg}', logger='current')
