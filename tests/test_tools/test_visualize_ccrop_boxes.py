"""tools/analysis_tools/visualize_ccrop_boxes.py writes a PNG grid from
computed boxes and from a checkpoint's boxes."""
import importlib.util
import os.path as osp

import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(ROOT, 'configs', 'ccrop',
               'ccrop-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'visualize_ccrop_boxes',
        osp.join(ROOT, 'tools', 'analysis_tools', 'visualize_ccrop_boxes.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_png_from_computed_and_checkpoint_boxes(tmp_path):
    tool = _tool()
    opts = ['--cfg-options', 'train_dataloader.dataset.dataset.indices=24']
    out = tool.main([CFG, '--compute-boxes', '--num-images', '3',
                     '--num-crops', '2', '--out', str(tmp_path / 'a.png')] +
                    opts)
    assert osp.getsize(out) > 1000
    boxes = torch.tensor([[0.25, 0.25, 0.75, 0.75]]).repeat(24, 1)
    ckpt = tmp_path / 'c.pth'
    torch.save(dict(contrastive_crop=dict(boxes=boxes, active=True,
                                          last_refresh_epoch=4)), ckpt)
    out = tool.main([CFG, '--checkpoint', str(ckpt), '--indices', '0', '5',
                     '--out', str(tmp_path / 'b.png')] + opts)
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
