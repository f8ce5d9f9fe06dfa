"""``faces3d``: procedurally rendered 3-D faces in one-factor batches (embedded: needs no files).

A stand-in for the Basel-face-model renders of Kulkarni et al. 2015 (Sec. 4.1): each identity is a head
(shape and texture parameters) drawn by :mod:`datamodules.factors.faces3d_render` as a face mask, like the Basel
model (no back or top of the head: pose moves the mask's edges); an image is that head at an
azimuth and elevation, lit from a light azimuth. Train, validation and test identities are disjoint and
fixed by ``split_seed``. Batches vary one factor — azimuth, elevation, light (one identity, the other
factors fixed) or the identity (``intrinsic``: several heads at one pose and light) — drawn in the ratio
``batch_ratio`` (the paper's 1:1:1:10).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from datamodules.base import fixed_split
from datamodules.factors.batches import INTRINSIC, FactorBatches, FactorDataModule
from datamodules.factors.faces3d_render import FACTOR_NAMES, FACTOR_RANGES, FaceRenderer, sample_identities
from datamodules.transforms import convert_channels, to_signed

#: the factor columns of faces3d batches: the three extrinsic factors (radians), then the identity id
FACES3D_FACTORS = (*FACTOR_NAMES, "identity")


class RenderedFaceBatches(FactorBatches):
    """One-factor batches of rendered faces; batch ``i`` is the same in every epoch and run.

    Args:
        renderer: the :class:`FaceRenderer` (its ``image_size`` is the batches').
        identities: float ``(N, IDENTITY_DIM)`` parameters of all heads.
        identity_ids: int64 ``(M,)`` the heads of this split (indices into ``identities``).
        batch_size: images per batch (an intrinsic batch needs that many heads in the split).
        channels: 1 (as rendered) or 3 (gray repeated).
        cache: keep each rendered batch (uint8) in memory after its first use (the split's first ``num_batches``
            batches; later epochs' new batches are rendered once and dropped).
        num_batches, batch_types, ratio, seed: see :class:`FactorBatches`.

    Items: ``(images (B, C, H, W) in [-1, 1], factors (B, 4) = azimuth, elevation, light [rad], identity,
    batch_type ())``. Varied values are drawn uniformly from ``FACTOR_RANGES``, fixed ones too (once per
    batch).

    Raises:
        ValueError: when the split has fewer heads than an intrinsic batch needs.
    """

    def __init__(self, renderer: FaceRenderer, identities: np.ndarray, identity_ids: torch.Tensor,
                 batch_size: int, channels: int, num_batches: int, batch_types: Sequence[str],
                 ratio: Sequence[float], seed: int, cache: bool = True) -> None:
        super().__init__(num_batches, batch_types, ratio, seed)
        if INTRINSIC in self.batch_types and len(identity_ids) < batch_size:
            raise ValueError(f"an intrinsic batch of data.batch_size={batch_size} heads needs as many identities "
                             f"in the split, got {len(identity_ids)}")
        self.renderer, self.identities, self.identity_ids = renderer, identities, identity_ids
        self.batch_size, self.channels, self.cache = batch_size, channels, cache
        self._cached: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def draw_factors(self, index: int, batch_type: str) -> torch.Tensor:
        """float64 ``(B, 4)`` factor values of batch ``index``: one factor varies, the others are fixed."""
        g = self.generator(index)
        b = self.batch_size
        lows = torch.tensor([FACTOR_RANGES[n][0] for n in FACTOR_NAMES], dtype=torch.float64)
        highs = torch.tensor([FACTOR_RANGES[n][1] for n in FACTOR_NAMES], dtype=torch.float64)
        base = lows + (highs - lows) * torch.rand(len(FACTOR_NAMES), generator=g, dtype=torch.float64)
        angles = base.repeat(b, 1)
        if batch_type == INTRINSIC:
            heads = self.identity_ids[torch.randperm(len(self.identity_ids), generator=g)[:b]]
        else:
            k = FACTOR_NAMES.index(batch_type)
            angles[:, k] = lows[k] + (highs[k] - lows[k]) * torch.rand(b, generator=g, dtype=torch.float64)
            head = self.identity_ids[torch.randint(len(self.identity_ids), (1,), generator=g)]
            heads = head.repeat(b)
        return torch.cat([angles, heads.double().unsqueeze(1)], 1)

    def make_batch(self, index: int, batch_type: str):
        if index in self._cached:
            pixels, factors = self._cached[index]
        else:
            factors = self.draw_factors(index, batch_type)
            rendered = self.renderer.render(self.identities[factors[:, 3].long().numpy()],
                                            *(factors[:, k].numpy() for k in range(3)))
            pixels = torch.from_numpy(rendered).mul(255.0).round().to(torch.uint8)
            factors = factors.float()
            if self.cache and index < len(self):
                self._cached[index] = (pixels, factors)
        images = to_signed(convert_channels(pixels, self.channels))
        return images, factors


class Faces3DDataModule(FactorDataModule):
    """Rendered faces for DC-IGN (embedded, procedural; Kulkarni et al. 2015, Sec. 4.1 uses Basel faces).

    Args:
        train_identities, val_identities, test_identities: heads per split (disjoint, fixed by
            ``split_seed``).
        cache: keep rendered batches in memory (each batch is rendered once per process).
        **kwargs: :class:`FactorDataModule` (``factor_names`` must be
            ``[azimuth, elevation, light, identity]``; ``batch_types`` any of azimuth, elevation, light,
            intrinsic).

    Raises:
        ValueError: on other factor names, or splits too small for a batch.
    """

    def __init__(self, train_identities: int = 400, val_identities: int = 40, test_identities: int = 100,
                 cache: bool = True, **kwargs) -> None:
        kwargs.setdefault("factor_names", list(FACES3D_FACTORS))
        super().__init__(**kwargs)
        if self.factor_names != FACES3D_FACTORS:
            raise ValueError(f"data.factor_names of faces3d must be {list(FACES3D_FACTORS)}, "
                             f"got {list(self.factor_names)}")
        self.sizes = (train_identities, val_identities, test_identities)
        self.cache = cache

    def build_splits(self):
        identities = sample_identities(sum(self.sizes), self.split_seed)
        renderer = FaceRenderer(self.image_size)
        ids = fixed_split(len(identities), self.sizes, self.split_seed)
        return {split: RenderedFaceBatches(renderer, identities, ids[k], self.batch_size, self.channels,
                                           self.num_batches[split], self.batch_types, self.ratio_of(split),
                                           self.split_seed_of(split), self.cache)
                for k, split in enumerate(("train", "val", "test"))}
