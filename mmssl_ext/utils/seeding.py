"""Seeded random generators that a resumed run re-creates exactly."""
from typing import Optional, Union

import torch

_BASE = 1000003
_MOD = 2**63


def seeded_generator(*parts: Union[int, torch.Tensor],
                     device: Optional[Union[str, torch.device]] = None
                     ) -> torch.Generator:
    """A ``torch.Generator`` (on ``device``, CPU by default) seeded from
    integers -- a seed, then counters such as the rank and a persistent step
    buffer: ``s = (s * 1000003 + part) mod 2**63`` over ``parts``.

    Random draws that must repeat after a resume (negative sampling, cluster
    splits) take a fresh generator from their seed and checkpointed counters
    at every call, instead of a generator whose state would have to be
    saved. Distinct counters give distinct streams (for counters below
    1000003, e.g. the rank)."""
    s = 0
    for p in parts:
        s = (s * _BASE + int(p)) % _MOD
    g = torch.Generator(device=device) if device is not None else \
        torch.Generator()
    g.manual_seed(s)
    return g
