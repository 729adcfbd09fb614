"""OfflineClusterHook logs how long the k-means (and the feature extraction
before it) took, in the run's log, and pushes the k-means time to the
message hub."""
import logging

import pytest
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmssl_testing import (TINY_BACKBONE, TINY_PREPROCESSOR, dataloader,
                               runner_cfg, synthetic_dataset)

N, K, D = 16, 3, 8
DEEPCLUSTER = dict(
    type='DeepCluster', with_sobel=True,
    memory=dict(type='LabelMemory', length=N, num_clusters=K),
    data_preprocessor=TINY_PREPROCESSOR,
    backbone=dict(TINY_BACKBONE, in_channels=2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=K, in_channels=32))


@pytest.fixture(autouse=True)
def _clean_loggers():
    yield
    logging.shutdown()
    MMLogger._instance_dict.clear()


def test_kmeans_time_is_logged(tmp_path):
    hook = dict(type='OfflineClusterHook',
                extract_dataloader=dataloader(synthetic_dataset(N),
                                              batch_size=5, round_up=False),
                clustering=dict(backend='torch', num_iters=7),
                progress=False, reset_head=True)
    runner = Runner(**runner_cfg(DEEPCLUSTER, str(tmp_path), max_epochs=1,
                                 custom_hooks=[hook], log_level='INFO'))
    runner.train()
    with open(runner.logger.handlers[-1].baseFilename) as f:
        log = f.read()
    lines = [ln for ln in log.splitlines() if 'k-means:' in ln]
    assert len(lines) == 1  # the initial clustering (interval=None)
    assert (f'{N} x 32 features -> K={K} (backend=torch, 7 iterations'
            in lines[0])
    assert 'feature extraction' in lines[0]
    seconds = float(lines[0].split(') in ')[1].split('s;')[0])
    assert seconds >= 0
    hub_time = runner.message_hub.get_scalar('train/kmeans_time').current()
    assert seconds == pytest.approx(hub_time, abs=0.006)
