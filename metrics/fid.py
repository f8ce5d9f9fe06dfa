"""FID and KID between real and generated images, via torchmetrics, in a chosen feature space.

* FID, Heusel et al. 2017 ("GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", Eq. 6): ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2})`` between Gaussians fitted
  to the features; computed by ``torchmetrics.image.fid.FrechetInceptionDistance`` in float64.
* KID, Binkowski et al. 2018 ("Demystifying MMD GANs", Sec. 3 / Eq. 4): the unbiased squared MMD with the
  cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets; computed by
  ``torchmetrics.image.kid.KernelInceptionDistance``.

The features come from genforge's per-dataset :class:`metrics.feature_net.FeatureNet` (default) or from
Inception-v3 (:func:`metrics.feature_net.inception_feature`, needs torch-fidelity). Values are in squared
feature units and are comparable only between runs that use the same feature network.

Both torchmetrics metrics synchronise their states across processes, so :class:`FeatureDistances` gives the
same numbers under a Lightning DDP strategy as in one process (each rank updates with its share).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from datamodules.transforms import convert_channels
from metrics.feature_net import inception_feature, load_feature_net


class _Precomputed(nn.Module):
    """Feature "extractor" for features already extracted: casts to float64, so torchmetrics computes and
    returns FID in float64. ``num_features`` sizes FID's statistics."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.double()


class ClampedKID(KernelInceptionDistance):
    """``KernelInceptionDistance`` whose ``subset_size`` is clamped to the samples available at compute
    time (torchmetrics raises otherwise), with reproducible subsets.

    Args:
        subset_size: requested subset size; the effective one is ``min(subset_size, n_real, n_fake)`` over
            all processes (states are synchronised before ``compute``). When it equals the number of samples
            every subset is the whole set and ``kid_std`` is 0.
        seed: seed of the subset draws (the global RNG state is restored); ``None``: global RNG. Under DDP
            each process's features are gathered whole, in rank order, so with the same seed and data
            split contiguously over the ranks the subsets are the single-process ones.
        **kwargs: as ``KernelInceptionDistance`` (``feature``, ``subsets``, ``degree``, ...).
    """

    def __init__(self, *args, subset_size: int = 1000, seed: int | None = 0, **kwargs) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            super().__init__(*args, subset_size=subset_size, **kwargs)
        self.requested_subset_size = subset_size
        self.seed = seed
        # gather each process's features as one tensor (rank-major order, one all_gather per state) instead
        # of torchmetrics' per-batch gathering, which interleaves the processes' batches
        self._reductions["real_features"] = dim_zero_cat
        self._reductions["fake_features"] = dim_zero_cat

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(kid_mean, kid_std)`` over the subsets (squared feature units).

        Raises:
            RuntimeError: fewer than 2 real or 2 generated samples (the unbiased MMD needs 2).
        """
        n_real = dim_zero_cat(self.real_features).shape[0] if len(self.real_features) else 0
        n_fake = dim_zero_cat(self.fake_features).shape[0] if len(self.fake_features) else 0
        if n_real < 2 or n_fake < 2:
            raise RuntimeError(f"KID needs at least 2 real and 2 generated images, got {n_real} real and "
                               f"{n_fake} generated")
        self.subset_size = min(self.requested_subset_size, n_real, n_fake)
        if self.seed is None:
            return super().compute()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return super().compute()


def resolve_feature(feature: nn.Module | str) -> nn.Module:
    """Turn ``feature`` into a feature module: images float ``(B, C, H, W)`` in ``[-1, 1]`` ->
    ``(B, num_features)``.

    Args:
        feature: an ``nn.Module`` (used as is; needs an int ``num_features``), ``"inception"`` (Inception-v3
            pool3, torch-fidelity downloads the weights), ``"inception:<weights path>"``, or the path of a
            genforge feature-net cache file (:func:`metrics.feature_net.load_feature_net`).

    Raises:
        ImportError: Inception requested without torch-fidelity.
        FileNotFoundError: a path that does not exist.
        TypeError: anything else, or a module without an int ``num_features``.
    """
    if isinstance(feature, (str, os.PathLike)):
        text = str(feature)
        if text == "inception":
            feature = inception_feature(None)
        elif text.startswith("inception:"):
            feature = inception_feature(text[len("inception:"):])
        else:
            feature = load_feature_net(text)
    if not isinstance(feature, nn.Module):
        raise TypeError(f"feature must be an nn.Module, 'inception', 'inception:<path>' or a feature-net file, "
                        f"got {type(feature).__name__}")
    nf = getattr(feature, "num_features", None)
    if isinstance(nf, torch.Tensor):
        nf = int(nf.item())
    if not isinstance(nf, int) or nf < 1:
        raise TypeError(f"the feature module {type(feature).__name__} needs a positive int attribute num_features, "
                        f"got {nf!r}")
    return feature


class FeatureDistances(nn.Module):
    """FID and KID of generated images against real ones, in the feature space of ``feature``.

    Feed real and generated images with :meth:`update`, read :meth:`compute`. The real statistics survive
    :meth:`reset` (torchmetrics' ``reset_real_features=False``), so a run extracts the real features once and
    re-evaluates generated samples every validation epoch; ``reset(real=True)`` clears them too. Features
    are extracted once per batch and shared by both metrics. The feature module is used in eval mode
    without gradients.

    Args:
        feature: see :func:`resolve_feature` (an nn.Module such as a frozen
            :class:`metrics.feature_net.FeatureNet`, ``"inception[:<weights>]"``, or a feature-net file).
        kid_subset_size: KID subset size (Binkowski et al. used 1000); clamped to the samples available.
        kid_subsets: number of KID subsets.
        kid_degree: degree of KID's polynomial kernel (3 in the paper).
        kid_seed: seed of KID's subset draws (``None``: global RNG).

    Raises:
        ImportError, FileNotFoundError, TypeError: see :func:`resolve_feature`.
        ValueError: invalid KID arguments (from torchmetrics).
    """

    def __init__(
        self,
        feature: nn.Module | str,
        kid_subset_size: int = 1000,
        kid_subsets: int = 100,
        kid_degree: int = 3,
        kid_seed: int | None = 0,
    ) -> None:
        super().__init__()
        self.feature = resolve_feature(feature)
        self.feature.eval()
        nf = int(self.feature.num_features)
        self.num_features = nf
        self.fid = FrechetInceptionDistance(feature=_Precomputed(nf), reset_real_features=False)
        self.kid = ClampedKID(feature=_Precomputed(nf), subsets=kid_subsets, subset_size=kid_subset_size,
                              degree=kid_degree, reset_real_features=False, seed=kid_seed)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(images) or not images.is_floating_point() or images.dim() != 4:
            raise TypeError(f"images must be a float tensor (B, C, H, W) in [-1, 1], got "
                            f"{getattr(images, 'dtype', type(images))} {tuple(getattr(images, 'shape', ()))}")
        want = getattr(self.feature, "in_channels", None)
        if isinstance(want, int) and images.shape[1] != want:
            images = convert_channels(images, want)  # gray -> RGB repeats, RGB -> gray takes luma
        param = next(self.feature.parameters(), None)
        if param is not None:  # its device, and its dtype (generated images may come in half precision)
            images = images.to(device=param.device, dtype=param.dtype)
        if self.feature.training:
            self.feature.eval()
        with torch.no_grad():
            return self.feature(images).detach()

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Add a batch of real (``real=True``) or generated images.

        Args:
            images: float ``(B, C, H, W)`` in ``[-1, 1]``; converted to the feature's channels (1 <-> 3) and
                moved to its device and dtype.
            real: which distribution the batch belongs to.

        Raises:
            TypeError: not a float 4-d tensor.
        """
        f = self._features(images)
        self.fid.update(f, real=real)
        self.kid.update(f, real=real)

    @property
    def num_real(self) -> int:
        """Real images seen (this process)."""
        return int(self.fid.real_features_num_samples)

    @property
    def num_fake(self) -> int:
        """Generated images seen since the last reset (this process)."""
        return int(self.fid.fake_features_num_samples)

    def compute(self) -> dict[str, float]:
        """``{"fid": float, "kid_mean": float, "kid_std": float}`` (squared feature units, >= 0 up to
        rounding for FID; KID is unbiased and may be slightly negative).

        Raises:
            RuntimeError: fewer than 2 real or 2 generated images.
        """
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        # local counts; under DDP the synchronised counts are larger, and the metrics check those
        if (self.num_real < 2 or self.num_fake < 2) and not distributed:
            raise RuntimeError(f"FID/KID need at least 2 real and 2 generated images, got {self.num_real} "
                                   f"real and {self.num_fake} generated")
        fid = self.fid.compute()
        kid_mean, kid_std = self.kid.compute()
        return {"fid": float(fid), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}

    def real_state(self) -> dict[str, torch.Tensor]:
        """The real images' statistics as plain tensors on CPU (what :meth:`load_real_state` takes back):
        FID's ``real_sum`` (float64 ``(F,)``), ``real_cov_sum`` (float64, torchmetrics' layout) and
        ``num_real`` (int64 scalar), KID's ``real_features`` (float32 ``(N, F)``: the feature nets compute
        in float32, so this loses nothing). This process's states (under DDP: read them inside
        ``sync_context``)."""
        features = dim_zero_cat(self.kid.real_features) if len(self.kid.real_features) else \
            torch.zeros(0, self.num_features)
        return {"real_sum": self.fid.real_features_sum.detach().cpu().clone(),
                "real_cov_sum": self.fid.real_features_cov_sum.detach().cpu().clone(),
                "num_real": self.fid.real_features_num_samples.detach().cpu().clone(),
                "real_features": features.detach().cpu().float().clone()}

    def load_real_state(self, state: dict[str, torch.Tensor] | None) -> None:
        """Replace the real statistics by ``state`` (from :meth:`real_state`, of all real images), or with
        ``None`` by empty ones: under DDP the states are summed / concatenated over the processes before
        ``compute``, so one process (rank 0) loads the statistics and the others load ``None``.

        Raises:
            ValueError: the state's feature dimension is not this metric's.
        """
        device = self.fid.real_features_sum.device
        if state is None:
            state = {"real_sum": torch.zeros_like(self.fid.real_features_sum),
                     "real_cov_sum": torch.zeros_like(self.fid.real_features_cov_sum),
                     "num_real": torch.zeros_like(self.fid.real_features_num_samples),
                     "real_features": torch.zeros(0, self.num_features)}
        if state["real_sum"].shape != self.fid.real_features_sum.shape:
            raise ValueError(f"real statistics of {tuple(state['real_sum'].shape)} features, this metric has "
                             f"{self.num_features}")
        self.fid.real_features_sum = state["real_sum"].to(device, torch.float64)
        self.fid.real_features_cov_sum = state["real_cov_sum"].to(device, torch.float64)
        self.fid.real_features_num_samples = state["num_real"].to(device, torch.long)
        self.kid.real_features = [state["real_features"].to(device, torch.float64)]

    def reset(self, real: bool = False) -> None:
        """Forget the generated images; with ``real=True`` forget the real ones too."""
        if real:
            self.fid.reset_real_features = self.kid.reset_real_features = True
        try:
            self.fid.reset()
            self.kid.reset()
        finally:
            self.fid.reset_real_features = self.kid.reset_real_features = False
