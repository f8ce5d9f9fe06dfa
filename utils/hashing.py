"""Counter-based random numbers: values that are a function of a key and a seed only, not of the order in
which a batch, a process or an epoch reaches them (the same under DDP as in one process)."""

from __future__ import annotations

import torch
from torch import Tensor

#: odd 64-bit constants of the SplitMix64 finaliser (Steele, Lea & Flood 2014)
_MIX = (0x9E3779B97F4A7C15 - 2**64, 0xBF58476D1CE4E5B9 - 2**64, 0x94D049BB133111EB - 2**64)


def mix64(keys: Tensor, salt: int) -> Tensor:
    """A well-mixed int64 of each int64 key and the integer ``salt`` (SplitMix64's finaliser; int64
    arithmetic wraps around, shifts are arithmetic). Same shape as ``keys``."""
    mix = [torch.tensor(m, dtype=torch.long, device=keys.device) for m in _MIX]
    h = keys.to(torch.long) * mix[0] + torch.tensor(salt % 2**31, dtype=torch.long, device=keys.device) * mix[1]
    h = (h ^ (h >> 31)) * mix[1]
    h = (h ^ (h >> 27)) * mix[2]
    return h ^ (h >> 31)


def hashed_integers(keys: Tensor, salt: int, high: int) -> Tensor:
    """Integers uniform in ``[0, high)``, one per key (same shape), a function of ``(key, salt)``."""
    return torch.remainder(mix64(keys, salt), high)


def hashed_uniform(keys: Tensor, salt: int) -> Tensor:
    """Floats uniform in ``[0, 1)`` (float64, 53 bits), one per key (same shape), a function of ``(key, salt)``."""
    return torch.remainder(mix64(keys, salt), 2**53).to(torch.float64) / 2**53
