import numpy as np
import pytest

from mmssl_ext.datasets import DigitsDataset, SyntheticImageDataset
from mmssl_ext.datasets.digits import stratified_split


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
        DigitsDataset(split='val')
    with pytest.raises(ValueError, match='source'):
        DigitsDataset(source='emnist')


def test_synthetic_dataset_is_deterministic():
    a = SyntheticImageDataset(num_samples=6, num_classes=3, img_size=8,
                              seed=3)
    b = SyntheticImageDataset(num_samples=6, num_classes=3, img_size=8,
                              seed=3)
    assert all((a[i]['img'] == b[i]['img']).all() for i in range(6))
    assert list(a.get_gt_labels()) == [0, 1, 2, 0, 1, 2]
