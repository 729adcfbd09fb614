"""FLOPs and parameters of a config's model (its backbone, as MMPretrain's
``get_flops.py`` counts them).

    python tools/analysis_tools/get_flops.py CONFIG [--shape 224 [224]]

MMPretrain's ``tools/analysis_tools/get_flops.py`` builds the model in
MMPretrain's scope, where this package's algorithms (``InterCLRMoCo``,
``NPID`` ...) are not registered; this script builds it from the config in
the config's own scope (``mmssl_ext``) and then counts exactly as that
script does: ``model.extract_feat`` (the backbone, and the neck where the
algorithm's ``extract_feat`` includes it) on one image of ``--shape``,
through MMEngine's ``get_model_complexity_info``. Use ``--shape 32`` for
the CIFAR and digits recipes, 96 for STL-10, 64 for Tiny-ImageNet.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='config file path')
    p.add_argument('--shape', type=int, nargs='+', default=[224, 224],
                   help='input image size: one number (square) or H W')
    return p.parse_args(argv)


def build_model(config: str):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmssl_ext  # noqa: F401  (registries)
    from mmssl_ext.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmssl_ext'))
    cfg.model.setdefault('data_preprocessor',
                         cfg.get('data_preprocessor', None))
    return MODELS.build(cfg.model)


def main(argv=None):
    args = parse_args(argv)
    if len(args.shape) == 1:
        shape = (3, args.shape[0], args.shape[0])
    elif len(args.shape) == 2:
        shape = (3, ) + tuple(args.shape)
    else:
        raise SystemExit('error: --shape takes one or two numbers')
    from mmengine.analysis import get_model_complexity_info
    model = build_model(args.config)
    model.eval()
    if not hasattr(model, 'extract_feat'):
        raise SystemExit(f'error: {type(model).__name__} has no extract_feat '
                         'to count')
    model.forward = model.extract_feat
    res = get_model_complexity_info(model, shape, show_table=False,
                                    show_arch=False)
    from mmengine.analysis.print_helper import _format_size
    backbone = getattr(model, 'backbone', None)
    n_backbone = sum(p.numel() for p in backbone.parameters()) \
        if backbone is not None else None
    n_all = sum(p.numel() for p in model.parameters())
    res['backbone_params'] = n_backbone
    line = '=' * 30
    print(f'{line}\nConfig: {args.config}\nModel: {type(model).__name__}\n'
          f'Input shape: {shape}\n'
          f'Flops (extract_feat): {res["flops_str"]}\n'
          f'Activation: {res["activations_str"]}\n'
          'Params of the backbone: '
          f'{_format_size(n_backbone) if n_backbone else "-"}\n'
          f'Params of the whole model (heads, momentum encoder ...): '
          f'{_format_size(n_all)}\n{line}')
    print('FLOPs count extract_feat only (the backbone): heads, memories, '
          'momentum encoders and the losses are not.')
    return res


if __name__ == '__main__':
    main()
