from .inter_image_branch import InterImageBranch
from .interclr import InterCLRMoCo
from .margin_head import MarginContrastiveHead
from .neg_sampling import (HardNegativeSampler, RandomNegativeSampler,
                           SemiEasyNegativeSampler, SemiHardNegativeSampler,
                           build_neg_sampler, sample_positives)

__all__ = [
    'InterCLRMoCo', 'InterImageBranch', 'MarginContrastiveHead',
    'HardNegativeSampler', 'RandomNegativeSampler',
    'SemiEasyNegativeSampler', 'SemiHardNegativeSampler',
    'build_neg_sampler', 'sample_positives'
]
