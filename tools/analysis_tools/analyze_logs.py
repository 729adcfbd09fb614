"""Curves and iteration times from training logs: MMPretrain's
``tools/analysis_tools/analyze_logs.py``, run on this package's logs.

    python tools/analysis_tools/analyze_logs.py plot_curve LOG [LOG ...] \
        --keys loss knn/top1 [--legend ...] [--out curves.png]
    python tools/analysis_tools/analyze_logs.py cal_train_time LOG [LOG ...]

LOG is the JSON log MMEngine writes, ``<work_dir>/<timestamp>/vis_data/
scalars.json`` (one line per logged iteration: ``loss``, ``lr``, each
method's ``loss_*`` terms and ``train/...`` diagnostics; one line per
validation: ``knn/top1`` ...), or a work directory / run directory, which
stands for the newest such file inside it. Every option is MMPretrain's
(``--keys``, ``--legend``, ``--title``, ``--out``, ``--window-size``,
``--include-outliers``); its script does the work (``mmpretrain/.mim/
tools/analysis_tools/analyze_logs.py``), unchanged. Logs written by the
mmcv runner of MMSelfSup 0.x (``*.log.json``) are another format and are
not read.
"""
import glob
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

TASKS = ('plot_curve', 'cal_train_time')


def resolve_log(path: str) -> str:
    """A JSON log, or the newest ``vis_data/scalars.json`` under a
    directory (a work directory or one run of it)."""
    if not osp.isdir(path):
        return path
    found = glob.glob(osp.join(path, 'vis_data', 'scalars.json')) + \
        glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json'))
    if not found:
        raise SystemExit(f'error: no vis_data/scalars.json under {path} '
                         '(MMEngine writes it with the LocalVisBackend of '
                         'configs/_base_/default_runtime.py)')
    return max(found, key=os.path.getmtime)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TASKS:
        # positional logs follow the task name until the first option
        i = 1
        while i < len(argv) and not argv[i].startswith('-'):
            argv[i] = resolve_log(argv[i])
            i += 1
    from mmssl_ext.utils.upstream import run_mmpretrain_tool
    run_mmpretrain_tool('analysis_tools/analyze_logs.py', argv,
                        prog='analyze_logs.py')


if __name__ == '__main__':
    main()
