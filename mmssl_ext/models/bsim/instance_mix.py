"""Instance mixing for mixture-view methods (BSIM, configs/bsim/README.md).

One component, written once: it draws the mixing parameters of a batch
(``lambda ~ Beta(alpha, alpha)``, mixup or cutmix, the partner of every
sample) and applies them to any view of that batch.

* **mixup**: ``x_m[i] = lam * x[i] + (1 - lam) * x[j(i)]``.
* **cutmix**: a box of area fraction about ``1 - lam`` is copied from
  ``x[j(i)]`` into ``x[i]``; ``lam`` is then *recomputed* from the box that
  was really pasted (after clipping at the border):
  ``lam = 1 - box_area / image_area`` (the exact pixel ratio).
* **both**: one of the two per batch, mixup with probability ``p_mixup``.
* partner ``j``: the reversed batch order (``pairing='reverse'``; for an odd
  batch the middle sample is paired with itself) or a random permutation
  (``pairing='random'``).

Where things run. The images are only touched on their own device (an
element-wise blend, or a slice copy for cutmix). The random draws of a batch
are a handful of *scalars* (lambda, the mode coin, the box centre) and are
drawn on the host from torch's CPU generator (the global one, seeded by the
runner, or the ``generator`` passed in); reading a CPU scalar with
``.item()`` is not a device synchronisation. The random permutation is drawn
directly on the batch's device. Nothing is ever copied device -> host, so
the mixer adds no host round trip, and the exact cutmix lambda is computed in
exact integer arithmetic from the box.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

MIX_MODES = ('mixup', 'cutmix', 'both')
PAIRINGS = ('reverse', 'random')


def sample_beta(alpha: float,
                generator: Optional[torch.Generator] = None) -> float:
    """One draw of ``Beta(alpha, alpha)`` on the host.

    ``Beta(a, a) = G1 / (G1 + G2)`` with ``G1, G2 ~ Gamma(a, 1)``; the gammas
    come from torch's CPU generator (``generator`` or the global one).
    """
    g = torch._standard_gamma(
        torch.full((2, ), float(alpha), dtype=torch.float64),
        generator=generator)
    s = g.sum()
    if s <= 0:  # both gammas underflowed (tiny alpha): a fair coin
        return float(g[0] >= g[1])
    return float(g[0] / s)  # CPU tensor: no device sync


def cutmix_box(height: int, width: int, lam: float, cy: int,
               cx: int) -> Tuple[int, int, int, int]:
    """Box ``(y1, y2, x1, x2)`` (half-open) of a cutmix with nominal ``lam``.

    The box has sides ``int(H * sqrt(1 - lam))`` x ``int(W * sqrt(1 - lam))``
    (area fraction ``1 - lam`` before rounding), its top-left corner at
    ``(cy - h // 2, cx - w // 2)``, clipped to the image.
    """
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    top, left = cy - cut_h // 2, cx - cut_w // 2
    y1, y2 = min(max(top, 0), height), min(max(top + cut_h, 0), height)
    x1, x2 = min(max(left, 0), width), min(max(left + cut_w, 0), width)
    return y1, y2, x1, x2


def box_lambda(box: Tuple[int, int, int, int], height: int,
               width: int) -> float:
    """Exact share of the base image left by a cutmix box:
    ``1 - box_area / image_area``."""
    y1, y2, x1, x2 = box
    return 1.0 - (y2 - y1) * (x2 - x1) / float(height * width)


def mixup(x: torch.Tensor, partner: torch.Tensor, lam: float) -> torch.Tensor:
    """``lam * x + (1 - lam) * partner`` (same device and dtype as ``x``)."""
    return x * lam + partner * (1.0 - lam)


def cutmix(x: torch.Tensor, partner: torch.Tensor,
           box: Tuple[int, int, int, int]) -> torch.Tensor:
    """Copy of ``x`` (N, C, H, W) with ``partner``'s pixels inside ``box``."""
    y1, y2, x1, x2 = box
    out = x.clone()
    out[..., y1:y2, x1:x2] = partner[..., y1:y2, x1:x2]
    return out


def partner_index(batch_size: int,
                  pairing: str,
                  device=None,
                  generator: Optional[torch.Generator] = None
                  ) -> torch.Tensor:
    """Index ``j`` (LongTensor (B,), on ``device``) of every sample's partner.

    ``'reverse'``: ``j(i) = B - 1 - i``. ``'random'``: a uniform random
    permutation, drawn on ``device`` (or with ``generator``, on its device,
    then moved).
    """
    if pairing == 'reverse':
        return torch.arange(batch_size - 1, -1, -1, device=device)
    if generator is None:
        return torch.randperm(batch_size, device=device)
    perm = torch.randperm(
        batch_size, generator=generator, device=generator.device)
    return perm.to(device, non_blocking=True)


@dataclass
class MixParams:
    """The mixing parameters of one batch (one lambda per batch).

    Attributes:
        lam (float): weight of the base image (exact pixel share for cutmix).
        mode (str): ``'mixup'`` or ``'cutmix'``.
        perm (Tensor): partner index ``j`` (B,), on the batch's device.
        box (tuple, optional): cutmix box ``(y1, y2, x1, x2)``.
        pairing (str): ``'reverse'`` (an involution, ``j(j(i)) = i``: the
            mixture in the reversed order is a row permutation of the
            mixture) or ``'random'``.
    """
    lam: float
    mode: str
    perm: torch.Tensor
    box: Optional[Tuple[int, int, int, int]] = None
    pairing: str = 'reverse'


class InstanceMixer:
    """Draws and applies BSIM's instance mixtures.

    Args:
        mix_mode (str): ``'mixup'``, ``'cutmix'`` or ``'both'`` (a per-batch
            random choice, mixup with probability ``p_mixup``). Defaults to
            ``'both'`` (the Un-Mix recipe, adopted for BSIM).
        alpha (float): ``lambda ~ Beta(alpha, alpha)``; must be > 0.
            Defaults to 1.0 (uniform).
        p_mixup (float): probability of mixup in ``'both'`` mode, in [0, 1].
            Defaults to 0.5.
        pairing (str): ``'reverse'`` (the reversed batch order) or
            ``'random'`` (a random permutation). Defaults to ``'reverse'``.
        key_prefix (str): prefix of the config keys in error messages.
    """

    def __init__(self,
                 mix_mode: str = 'both',
                 alpha: float = 1.0,
                 p_mixup: float = 0.5,
                 pairing: str = 'reverse',
                 key_prefix: str = '') -> None:
        if mix_mode not in MIX_MODES:
            raise ValueError(f'{key_prefix}mix_mode must be one of '
                             f'{MIX_MODES}, got {mix_mode!r}')
        if not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f'{key_prefix}alpha (the Beta(alpha, alpha) '
                             f'parameter) must be > 0, got {alpha!r}')
        if not isinstance(p_mixup, (int, float)) or not 0 <= p_mixup <= 1:
            raise ValueError(
                f'{key_prefix}p_mixup must be in [0, 1], got {p_mixup!r}')
        if pairing not in PAIRINGS:
            raise ValueError(f'{key_prefix}pairing must be one of '
                             f'{PAIRINGS}, got {pairing!r}')
        self.mix_mode = mix_mode
        self.alpha = float(alpha)
        self.p_mixup = float(p_mixup)
        self.pairing = pairing

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mix_mode={self.mix_mode!r}, '
                f'alpha={self.alpha}, p_mixup={self.p_mixup}, '
                f'pairing={self.pairing!r})')

    def sample(self,
               batch_size: int,
               img_hw: Tuple[int, int],
               device=None,
               generator: Optional[torch.Generator] = None) -> MixParams:
        """Draw the parameters of one batch.

        Args:
            batch_size (int): B.
            img_hw (tuple): image height and width.
            device: the batch's device (the permutation lives there).
            generator (torch.Generator, optional): CPU generator for the
                scalar draws (and the permutation); the global generators
                otherwise.
        """
        h, w = int(img_hw[0]), int(img_hw[1])
        mode = self.mix_mode
        if mode == 'both':
            coin = torch.rand((), generator=generator, dtype=torch.float64)
            mode = 'mixup' if float(coin) < self.p_mixup else 'cutmix'
        lam = sample_beta(self.alpha, generator)
        box = None
        if mode == 'cutmix':
            cy = int(torch.randint(h, (), generator=generator))
            cx = int(torch.randint(w, (), generator=generator))
            box = cutmix_box(h, w, lam, cy, cx)
            lam = box_lambda(box, h, w)
        perm = partner_index(batch_size, self.pairing, device, generator)
        return MixParams(
            lam=lam, mode=mode, perm=perm, box=box, pairing=self.pairing)

    @staticmethod
    def apply(x: torch.Tensor,
              params: MixParams,
              mirror: bool = False) -> torch.Tensor:
        """Mix the batch ``x`` (B, C, H, W) with its partners.

        ``mirror=False``: ``x_m[i] = mix(base=x[i], partner=x[j(i)])``
        (source ``i`` has weight ``lam``, ``j(i)`` weight ``1 - lam``).
        ``mirror=True``: the reversed-order mixture
        ``mix(base=x[j(i)], partner=x[i])`` with the same lambda and box
        (``i`` weighs ``1 - lam``, ``j(i)`` weighs ``lam``); under reverse
        pairing it equals ``x_m.flip(0)``.
        """
        if params.pairing == 'reverse':
            partner = x.flip(0)  # no gather index needed
        else:
            partner = x.index_select(0, params.perm.to(x.device))
        base, partner = (partner, x) if mirror else (x, partner)
        if params.mode == 'mixup':
            return mixup(base, partner, params.lam)
        return cutmix(base, partner, params.box)

    def __call__(self,
                 x: torch.Tensor,
                 generator: Optional[torch.Generator] = None):
        """Draw parameters for ``x`` and mix it: ``(x_mixed, params)``."""
        params = self.sample(x.size(0), x.shape[-2:], x.device, generator)
        return self.apply(x, params), params
