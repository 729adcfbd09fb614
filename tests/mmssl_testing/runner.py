"""Tiny Runner configs for hook / resume tests (seconds on a CPU)."""
import copy
from typing import List, Optional

#: CIFAR ResNet-18 stem with 4 base channels (last stage: 32 channels).
TINY_BACKBONE = dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                     base_channels=4, norm_cfg=dict(type='BN'),
                     zero_init_residual=False)
TINY_PREPROCESSOR = dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3,
                         std=[127.5] * 3, to_rgb=False)


def synthetic_dataset(num_samples: int = 16, img_size: int = 16,
                      num_classes: int = 4, seed: int = 0,
                      pipeline: Optional[List[dict]] = None) -> dict:
    """``SyntheticImageDataset`` config (default pipeline: PackInputs)."""
    return dict(type='SyntheticImageDataset', num_samples=num_samples,
                num_classes=num_classes, img_size=img_size, seed=seed,
                pipeline=pipeline or [dict(type='PackInputs')])


def dataloader(dataset: dict, batch_size: int = 4, shuffle: bool = False,
               num_workers: int = 0, persistent_workers: bool = False,
               drop_last: bool = False, round_up: bool = True) -> dict:
    return dict(
        batch_size=batch_size, num_workers=num_workers,
        persistent_workers=persistent_workers, drop_last=drop_last,
        sampler=dict(type='DefaultSampler', shuffle=shuffle,
                     round_up=round_up),
        collate_fn=dict(type='default_collate'), dataset=dataset)


def runner_cfg(model: dict, work_dir: str, max_epochs: int = 2,
               train_dataloader: Optional[dict] = None,
               custom_hooks: Optional[List[dict]] = None,
               lr: float = 0.01, seed: int = 0, **kwargs) -> dict:
    """A Runner config: SGD, epoch-based loop, checkpoint every epoch, no
    validation, logger every iteration."""
    cfg = dict(
        model=copy.deepcopy(model),
        work_dir=work_dir,
        train_dataloader=train_dataloader or dataloader(
            synthetic_dataset(), shuffle=True),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        custom_hooks=copy.deepcopy(custom_hooks or []),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1,
                            max_keep_ckpts=-1)),
        default_scope='mmssl_ext',
        randomness=dict(seed=seed),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
    )
    cfg.update(kwargs)
    return cfg
