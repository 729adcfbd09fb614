"""Evaluate a checkpoint with the config's test loop (OpenMMLab form).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--out FILE [--out-item {metrics,pred}]]
        [--cfg-options k=v ...] [--launcher ...]

For self-supervised checkpoints, configs with ``test_cfg=dict(type=
'KNNTestLoop', ...)`` report the weighted-kNN accuracy.

``--out`` dumps the results as MMPretrain's ``tools/test.py`` does:
``--out-item pred`` the per-sample predictions (a ``.pkl`` of data samples
with ``gt_label`` and ``pred_score``, through mmengine's ``DumpResults``),
``--out-item metrics`` the metrics dict (``.json`` / ``.yaml`` / ``.pkl``).
Without ``--out-item`` a ``.pkl`` / ``.pickle`` file gets the predictions
and any other file the metrics.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir')
    parser.add_argument('--out', help='file to dump the results to')
    parser.add_argument(
        '--out-item', choices=['metrics', 'pred'],
        help='dump the metrics or the per-sample predictions (default: '
        'predictions for a .pkl/.pickle file, metrics otherwise)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out_item is not None and args.out is None:
        parser.error('--out-item needs --out FILE')
    if args.out is not None:
        is_pkl = args.out.endswith(('.pkl', '.pickle'))
        if args.out_item is None:
            args.out_item = 'pred' if is_pkl else 'metrics'
        if args.out_item == 'pred' and not is_pkl:
            parser.error('--out-item pred writes a pickle of data samples: '
                         'give --out a .pkl file')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    import mmssl_ext  # noqa: F401  (before the config: `mmssl_ext::` bases)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    from mmssl_ext.utils.config_check import (UnknownConfigKeyError,
                                              check_config_arguments)
    try:  # before the Runner logs and builds anything
        check_config_arguments(cfg)
    except UnknownConfigKeyError as e:
        print(f'error: {args.config}: {e}', file=sys.stderr)
        sys.exit(2)
    from mmssl_ext.utils.checkpoint_compat import checked_checkpoint_loading
    from mmssl_ext.utils.launch import (setup_distributed_cpu,
                                        teardown_distributed)
    setup_distributed_cpu(cfg, args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        RUNNERS.build(cfg)
    if args.out and args.out_item == 'pred':
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    with checked_checkpoint_loading():  # errors that name the file
        metrics = runner.test()
    if args.out and args.out_item == 'metrics':
        from mmengine import dist, dump
        if dist.is_main_process():
            out_dir = osp.dirname(osp.abspath(args.out))
            os.makedirs(out_dir, exist_ok=True)
            dump(metrics, args.out)
    teardown_distributed()
    return metrics


if __name__ == '__main__':
    main()
