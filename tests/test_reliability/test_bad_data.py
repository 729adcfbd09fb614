"""Bad data: truncated JPEG, zero-byte file, missing file (skipped with one
warning per file, or a clear error naming the file), grayscale and CMYK
images (converted to 3 channels); a real Runner with 2 data-loader
workers."""
import glob
import io
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from PIL import Image

from mmssl_ext.datasets.transforms.loading import (ImageLoadError,
                                                   SafeLoadImageFromFile)
from mmssl_ext.registry import TRANSFORMS

SIZE = 16
BAD = ('trunc.jpg', 'empty.jpg', 'missing.jpg')


def _rgb(seed):
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3),
                                                dtype=np.uint8)


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, 'JPEG', quality=95)
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    """12 good RGB JPEGs, a grayscale and a CMYK JPEG, a truncated JPEG, a
    zero-byte file and an annotation line naming a missing file."""
    names = []
    for i in range(12):
        (tmp_path / f'good_{i:02d}.jpg').write_bytes(
            _jpeg(Image.fromarray(_rgb(i))))
        names.append(f'good_{i:02d}.jpg')
    (tmp_path / 'gray.jpg').write_bytes(
        _jpeg(Image.fromarray(_rgb(100)[..., 0])))
    (tmp_path / 'cmyk.jpg').write_bytes(
        _jpeg(Image.fromarray(_rgb(101)).convert('CMYK')))
    full = _jpeg(Image.fromarray(_rgb(102)))
    (tmp_path / 'trunc.jpg').write_bytes(full[:len(full) // 2])
    (tmp_path / 'empty.jpg').write_bytes(b'')
    # interleave the special files with good ones
    order = (names[:2] + ['trunc.jpg'] + names[2:5] + ['gray.jpg'] +
             names[5:7] + ['empty.jpg'] + names[7:9] + ['cmyk.jpg'] +
             names[9:11] + ['missing.jpg'] + names[11:])
    (tmp_path / 'ann.txt').write_text('\n'.join(order) + '\n')
    return tmp_path, order


def _load(path, **kw):
    t = TRANSFORMS.build(dict(type='SafeLoadImageFromFile', **kw))
    return t(dict(img_path=str(path)))


# ------------------------------------------------------------ the transform
@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_gray_and_cmyk_become_three_channels(image_folder, backend):
    root, _ = image_folder
    gray = _load(root / 'gray.jpg', imdecode_backend=backend)['img']
    assert gray.shape == (SIZE, SIZE, 3) and gray.dtype == np.uint8
    assert (gray[..., 0] == gray[..., 1]).all()
    cmyk = _load(root / 'cmyk.jpg', imdecode_backend=backend)['img']
    assert cmyk.shape == (SIZE, SIZE, 3) and cmyk.dtype == np.uint8
    # BGR like LoadImageFromFile; colours survive RGB->CMYK->JPEG->BGR
    err = np.abs(cmyk[..., ::-1].astype(int) - _rgb(101).astype(int))
    assert err.mean() < 20


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('name,reason', [('trunc.jpg', 'truncated'),
                                         ('empty.jpg', 'empty'),
                                         ('missing.jpg', 'not found')])
def test_bad_file_raise_names_file(image_folder, backend, name, reason):
    root, _ = image_folder
    with pytest.raises(ImageLoadError) as e:
        _load(root / name, on_error='raise', imdecode_backend=backend)
    msg = str(e.value)
    assert str(root / name) in msg and reason in msg, msg


def test_bad_file_skip_warns_once(image_folder, monkeypatch):
    from mmssl_ext.datasets.transforms import loading
    logged = []
    monkeypatch.setattr(loading, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    root, _ = image_folder
    t = SafeLoadImageFromFile(on_error='skip')
    for _ in range(3):
        for name in BAD:
            assert t(dict(img_path=str(root / name))) is None
    assert len(logged) == 3
    for (msg, kw), name in zip(logged, BAD):
        assert str(root / name) in msg and kw['level'] == 30  # WARNING
    logged.clear()
    t = SafeLoadImageFromFile(on_error='skip', warn='always')
    for _ in range(2):
        assert t(dict(img_path=str(root / 'trunc.jpg'))) is None
    assert len(logged) == 2
    logged.clear()
    t = SafeLoadImageFromFile(on_error='skip', warn='never')
    assert t(dict(img_path=str(root / 'trunc.jpg'))) is None
    assert not logged


def test_invalid_arguments_named():
    with pytest.raises(ValueError, match='on_error'):
        SafeLoadImageFromFile(on_error='ignore')
    with pytest.raises(ValueError, match='warn'):
        SafeLoadImageFromFile(warn='sometimes')
    with pytest.raises(ValueError, match='ignore_empty'):
        SafeLoadImageFromFile(ignore_empty=True)


# ------------------------------------------------------------ training
class RecordingModel(BaseModel):
    """Tiny conv net that records the sample indices and input shapes it
    was trained on (it runs in the main process)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen, self.shapes = [], set()

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.shapes.update(tuple(x.shape) for x in inputs)
        self.seen += [int(ds.sample_idx) for ds in data_samples]
        x = torch.stack(inputs).float() / 255.
        out = self.conv(x).mean()
        return dict(loss=out * out)


def _runner(root, work, ann, on_error, epochs=2):
    pipeline = [dict(type='SafeLoadImageFromFile', on_error=on_error),
                dict(type='Resize', scale=(12, 12)),
                dict(type='PackInputs')]
    return Runner(
        model=RecordingModel(),
        work_dir=str(work),
        train_dataloader=dict(
            dataset=dict(type='CustomDataset', data_root=str(root),
                         ann_file=ann, with_label=False, pipeline=pipeline),
            batch_size=4, num_workers=2, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=100)),
        randomness=dict(seed=0),
        default_scope='mmssl_ext',
        log_level='WARNING')


def test_training_skips_bad_files_with_one_warning_each(image_folder,
                                                         tmp_path):
    root, order = image_folder
    runner = _runner(root, tmp_path / 'work', 'ann.txt', 'skip', epochs=2)
    runner.train()
    model = runner.model
    bad_idx = {order.index(n) for n in BAD}
    # every good sample (gray and CMYK included) was trained on, no bad one
    assert set(model.seen) == set(range(len(order))) - bad_idx
    assert model.shapes == {(3, 12, 12)}
    assert len(model.seen) == 2 * len(order)  # bad ones were replaced
    # one warning per bad file for the whole run (2 epochs, 2 workers
    # started anew each epoch)
    log = open(glob.glob(osp.join(tmp_path, 'work', '*', '*.log'))[0]).read()
    for name in BAD:
        assert log.count(str(root / name)) == 1, log
    for name in ('gray.jpg', 'cmyk.jpg'):
        assert name not in log


def test_training_raise_names_file(image_folder, tmp_path):
    root, order = image_folder
    good = [n for n in order if n.startswith('good')]
    (root / 'ann_trunc.txt').write_text('\n'.join(good[:5] + ['trunc.jpg'] +
                                                  good[5:]) + '\n')
    runner = _runner(root, tmp_path / 'work', 'ann_trunc.txt', 'raise')
    with pytest.raises(ImageLoadError) as e:
        runner.train()
    last = str(e.value).strip().splitlines()[-1]
    assert str(root / 'trunc.jpg') in last and 'truncated' in last, last
