"""Prepare a checkpoint for publication and print its model-zoo fields.

    python tools/model_converters/publish_model.py IN.pth OUT.pth \
        [--url-prefix https://host/path/] [--no-ema] [--dataset-type T]

The file is processed by MMPretrain's ``tools/model_converters/
publish_model.py`` (unchanged, called from its installed copy): the
optimizer, parameter schedulers, hook messages and message hub are dropped,
the ``meta`` gets ``mmpretrain_version``, and the result is saved as
``OUT_<yyyymmdd>-<first 8 digits of its SHA-256>.pth``, the OpenMMLab name
whose suffix ``mmssl_ext.utils.hub`` checks. The model's state is kept
whole: for this package's methods that includes their per-sample state
(memory banks, pseudo-labels, queues, ContrastiveCrop's boxes), which
downstream use does not need (``extract_backbone_weights.py`` makes the
backbone file from it).

Then the fields of the config's row in ``configs/<method>/metafile.yml``
are printed, ready to paste: ``Weights`` (``--url-prefix`` + the file
name), ``Weights SHA256`` (the full digest) and, where the run directory is
given with ``--log``, ``Training Log``. ``tools/benchmarks/model_zoo.py
--write`` keeps these fields.
"""
import argparse
import glob
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('in_file', help='checkpoint written by tools/train.py')
    p.add_argument('out_file', help='output name; the date and hash are '
                   'appended')
    p.add_argument('--url-prefix', default='',
                   help='where the file will be served (for the printed '
                   'Weights field)')
    p.add_argument('--log', default=None,
                   help='URL of the published training log (vis_data/'
                   'scalars.json), printed as Training Log')
    p.add_argument('--no-ema', action='store_true',
                   help='as MMPretrain\'s: keep the non-EMA weights')
    p.add_argument('--dataset-type', default=None,
                   help='as MMPretrain\'s: data set whose METAINFO goes '
                   'into meta')
    return p.parse_args(argv)


def publish(args) -> dict:
    import mmssl_ext  # noqa: F401  (torch.load allow-list of mmengine types)
    from mmssl_ext.utils.hub import file_sha256
    from mmssl_ext.utils.upstream import load_mmpretrain_tool
    out_dir = osp.dirname(osp.abspath(args.out_file))
    if not osp.isdir(out_dir):
        raise SystemExit(f'error: the output directory {out_dir} does not '
                         'exist')
    stem = args.out_file[:-4] if args.out_file.endswith('.pth') else \
        args.out_file
    before = set(glob.glob(glob.escape(stem) + '_*-*.pth'))
    tool = load_mmpretrain_tool('model_converters/publish_model.py')
    tool['process_checkpoint'](args.in_file, args.out_file, args)
    new = sorted(set(glob.glob(glob.escape(stem) + '_*-*.pth')) - before,
                 key=os.path.getmtime)
    if not new:  # the same file published twice the same day
        new = sorted(before, key=os.path.getmtime)
    final = new[-1]
    digest = file_sha256(final)
    name = osp.basename(final)
    assert name.rsplit('-', 1)[-1][:-4] == digest[:8], (name, digest)
    fields = {'Weights': args.url_prefix + name, 'Weights SHA256': digest}
    if args.log:
        fields['Training Log'] = args.log
    print('Fields of the row in configs/<method>/metafile.yml:')
    for key, value in fields.items():
        print(f'    {key}: {value}')
    return dict(fields, file=final)


def main(argv=None):
    return publish(parse_args(argv))


if __name__ == '__main__':
    main()
