import numpy as np
import pytest

from mmssl_ext.datasets import DigitsDataset, SyntheticImageDataset
from mmssl_ext.datasets.digits import stratified_split, stratified_take


def test_stratified_split_is_fixed_and_balanced():
    labels = np.repeat(np.arange(5), 10)
    a = stratified_split(labels, 0.2, seed=0)
    b = stratified_split(labels, 0.2, seed=0)
    assert (a == b).all()
    assert a.sum() == 10
    assert all(a[labels == c].sum() == 2 for c in range(5))


def test_mnist5k_digits_real_data():
    train = DigitsDataset(split='train')
    test = DigitsDataset(split='test')
    assert len(train) == 4000 and len(test) == 1000
    s = train[0]
    assert s['img'].shape == (32, 32, 3) and s['img'].dtype == np.uint8
    assert s['sample_idx'] == 0
    counts = np.bincount(test.get_gt_labels(), minlength=10)
    # stratified: every class has ~20% of its images in the test split
    assert counts.min() > 70 and counts.sum() == 1000
    # the two splits are disjoint and cover the 5,000 images
    allset = DigitsDataset(split='all')
    assert len(allset) == 5000


def test_sklearn_source_and_pipeline_packs_sample_idx():
    ds = DigitsDataset(split='test', source='sklearn', img_size=16,
                       pipeline=[dict(type='PackInputs')])
    assert 300 < len(ds) < 400
    out = ds[5]
    assert out['inputs'].shape == (3, 16, 16)
    assert out['data_samples'].sample_idx == 5
    assert int(out['data_samples'].gt_label) == ds.get_gt_labels()[5]


def test_bad_arguments_name_the_key():
    with pytest.raises(ValueError, match='split'):
        DigitsDataset(split='valid')
    with pytest.raises(ValueError, match='source'):
        DigitsDataset(source='emnist')
    with pytest.raises(ValueError, match='val_size'):
        DigitsDataset(split='val', val_size=5)  # a class gets no image
    with pytest.raises(ValueError, match='val_size'):
        DigitsDataset(split='val', val_size=0)
    with pytest.raises(TypeError, match='val_size'):
        DigitsDataset(split='val', val_size=0.1)
    with pytest.raises(ValueError, match='canvas'):
        DigitsDataset(canvas=dict(size=32, scale=(0.5, 1.2)))
    with pytest.raises(ValueError, match='canvas'):
        DigitsDataset(canvas=dict(side=32))


def test_validation_split_is_carved_from_train():
    """val (500) + train_noval (3,500) partition train, stratified (50 and
    350 per class), and the split is the same in every run."""
    train = DigitsDataset(split='train', pipeline=[])
    val = DigitsDataset(split='val', pipeline=[])
    rest = DigitsDataset(split='train_noval', pipeline=[])
    assert len(val) == 500 and len(rest) == 3500
    assert (np.bincount(val.get_gt_labels()) == 50).all()

    def keys(ds):
        labels = ds.get_gt_labels()
        return {ds.get_data_info(i)['img'].tobytes() + bytes([labels[i]])
                for i in range(len(ds))}

    k_train, k_val, k_rest = keys(train), keys(val), keys(rest)
    assert not k_val & k_rest and (k_val | k_rest) == k_train
    again = DigitsDataset(split='val', pipeline=[])
    assert keys(again) == k_val
    assert not k_val & keys(DigitsDataset(split='test', pipeline=[]))


def test_stratified_take_by_hand():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1 + [3] * 2)
    # shares of 4 (12 samples): 2.0, 1.0, 0.33, 0.67 -> 2, 1, 0, 1 (largest
    # remainder) -> class 2 would have no validation image
    with pytest.raises(ValueError, match='leaves class 2 empty'):
        stratified_take(labels, 4, seed=0)
    labels = np.array([0] * 6 + [1] * 6)
    m = stratified_take(labels, 4, seed=0)
    assert m.sum() == 4 and m[:6].sum() == 2 and m[6:].sum() == 2


def test_canvas_digits_sit_inside_their_boxes():
    ds = DigitsDataset(split='test', canvas=dict(size=32, scale=(0.4, 0.6),
                                                 seed=3), pipeline=[])
    plain = DigitsDataset(split='test', pipeline=[])
    assert len(ds) == len(plain)
    assert (ds.get_gt_labels() == plain.get_gt_labels()).all()
    for i in range(0, 1000, 97):
        info = ds.get_data_info(i)
        img, (y0, x0, y1, x1) = info['img'][..., 0], info['object_box'] * 32
        side = y1 - y0
        assert abs(side - (x1 - x0)) < 1e-6 and 0.4 * 32 - 1 <= side <= (
            0.6 * 32 + 1)
        outside = img.copy()
        outside[int(y0):int(y1), int(x0):int(x1)] = 0
        assert outside.max() == 0 and img.max() > 100
    again = DigitsDataset(split='test', canvas=dict(size=32, scale=(0.4, 0.6),
                                                    seed=3), pipeline=[])
    assert (again.get_data_info(5)['img'] == ds.get_data_info(5)['img']).all()
    assert 'object_box' not in plain.get_data_info(0)


def test_synthetic_dataset_is_deterministic():
    a = SyntheticImageDataset(num_samples=6, num_classes=3, img_size=8,
                              seed=3)
    b = SyntheticImageDataset(num_samples=6, num_classes=3, img_size=8,
                              seed=3)
    assert all((a[i]['img'] == b[i]['img']).all() for i in range(6))
    assert list(a.get_gt_labels()) == [0, 1, 2, 0, 1, 2]
