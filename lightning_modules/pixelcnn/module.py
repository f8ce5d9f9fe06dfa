"""PixelCNN and Gated PixelCNN as a LightningModule: maximum likelihood of the quantized image, one softmax
per sub-pixel (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Sec. 2.2, 3.5; van den Oord et
al. 2016, "Conditional Image Generation with PixelCNN Decoders", Sec. 2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_modules.labels import LabelClasses
from lightning_modules.loading import LoadsFromCheckpoint
from lightning_modules.optimization import ConfiguredModule
from lightning_modules.pixelcnn.conditioning import ConditionMap
from lightning_modules.pixelcnn.likelihood import nats_to_bits_per_dim, nll_nats
from lightning_modules.pixelcnn.networks import from_levels
from lightning_modules.pixelcnn.sampling import sample as sample_levels
from utils.hashing import hashed_uniform, mix64

#: the values of ``model.binarize``
BINARIZE = ("none", "dynamic", "fixed")
#: the likelihood metrics' names after ``split/`` (with the auto-encoder's :data:`RECONSTRUCTION` prefix)
LIKELIHOODS = ("nll", "bits_per_dim")
#: prefix of the auto-encoder's metrics: ``-log p(x | h = f(x))`` is a reconstruction likelihood
RECONSTRUCTION = "reconstruction_"


class PixelCNNModule(LabelClasses, LoadsFromCheckpoint, ConfiguredModule):
    """Trains a PixelCNN (``model=pixelcnn``) or a Gated PixelCNN (``model=gated_pixelcnn``) by maximum
    likelihood: the loss is the negative log-likelihood of the quantized image, in nats per image, the sum
    over its ``D = C H W`` sub-pixels of ``-log p(x_d | x_<d [, h])``.

    Images arrive as the framework's ``(B, C, H, W)`` in ``[-1, 1]`` and are quantized to ``levels``
    intensity levels (256 for 8-bit data, 17 for scikit-learn's digits): level ``round((x + 1) / 2 (L - 1))``.
    With ``levels=2`` and ``binarize`` (binarized MNIST, Salakhutdinov & Murray 2008), a pixel of intensity
    ``p`` in ``[0, 1]`` is 1 with probability ``p``: ``"dynamic"`` draws afresh at every training step and
    once (seeded by the image's content) for validation and test; ``"fixed"`` draws once per image,
    seeded by its content and ``binarize_seed``, everywhere.

    Conditioning (Sec. 2.3): with ``conditional=True`` the network gets ``h``, the one-hot class
    ``(B, num_classes)``, in every layer (eq. 4). With an ``encoder`` it is the PixelCNN auto-encoder
    (Sec. 2.4): ``h = encoder(x)``, an ``m``-dimensional code of the image itself, trained end to end with
    the decoder's likelihood; its sample grid samples from the codes of the first validation images.
    Location-dependent conditioning (eq. 5): when the network has ``cond_map_channels = K' > 0``
    (``model.network.cond_map_channels``), the module builds ``m`` (:attr:`cond_map`, a
    :class:`~lightning_modules.pixelcnn.conditioning.ConditionMap` of width ``cond_map_hidden``), a
    deconvolutional network from ``h`` (class or code) to a map ``s = m(h)`` ``(B, K', H, W)`` that every
    layer adds through 1 x 1 convolutions; ``m`` trains with the model and sampling passes ``s`` too. The
    network keeps eq. 4's ``V^T h`` unless ``vector_conditioning=False`` (eq. 5 alone, as the paper writes it).

    Logged on train/val/test: ``nll`` (nats per image) and ``bits_per_dim`` (``nll / (D ln 2)``). The
    auto-encoder logs ``reconstruction_nll`` and ``reconstruction_bits_per_dim`` instead: its
    ``-log p(x | h = f(x))`` is a reconstruction likelihood given a code computed from ``x`` itself (the code's
    own cost is not counted), so it is not comparable with the other models' bits/dim. For the sample grids
    of :mod:`callbacks.samples`, ``fixed_z`` holds uniform noise and :meth:`generate` draws each sub-pixel by
    inverse CDF from it, so the grid of every epoch uses the same noise.

    Args:
        network: partial network ``network(channels=, levels=, cond_dim=, image_size=)`` (``GatedPixelCNN``
            or ``PixelCNN`` of :mod:`lightning_modules.pixelcnn.networks`).
        optimizer: partial optimizer (the papers: RMSprop / Adam).
        levels: ``L`` intensity levels per sub-pixel.
        channels, image_size: the data's (``data.channels``, ``data.image_size``).
        conditional: condition on the class (needs ``num_classes > 0``; the presets set it when the dataset
            has labels), see :meth:`condition`.
        num_classes: ``data.num_classes``.
        binarize: ``"none"``, ``"dynamic"`` or ``"fixed"`` (``levels=2`` only).
        binarize_seed: seed of the fixed binarization.
        num_fixed: images in the per-epoch sample grid (sequential sampling: keep it small on a CPU).
        cached_sampling: use the cached sampler (:mod:`lightning_modules.pixelcnn.sampling`) where the
            network supports it.
        encoder: ``x (B, C, H, W) in [0, 1] -> code (B, m)`` with attribute ``latent_dim`` (e.g.
            ``DCIGNEncoder(variational=False)``), for the auto-encoder; ``None`` otherwise.
        monitor: the metric checkpoints rank by; ``None``: ``val/bits_per_dim`` (the auto-encoder:
            ``val/reconstruction_bits_per_dim``).
        scheduler: optional partial LR scheduler, stepped once per epoch.
        cond_map_hidden: width of ``m``'s hidden maps (used when ``model.network.cond_map_channels > 0``).
        vector_conditioning: give the network ``h`` itself (eq. 4's ``V^T h``); ``False`` with a
            ``cond_map_channels > 0`` network conditions through ``s = m(h)`` alone (eq. 5).

    Raises:
        ValueError: on an unknown ``binarize``, ``binarize`` with ``levels != 2``, ``conditional`` without
            classes, both ``conditional`` and an ``encoder``, ``model.network.cond_map_channels > 0`` without
            a condition (no class, no encoder), ``vector_conditioning=False`` that leaves a condition unused,
            or a ``monitor`` naming a likelihood this model does not log (e.g. ``val/bits_per_dim`` for the
            auto-encoder); the message names the config key.
    """

    #: sequential sampling is too slow for sample-based metrics (FID/KID, Parzen): likelihood is the metric
    sample_metrics = False
    #: no moving average of the network (see :class:`callbacks.protocols.Samples`)
    has_ema = False

    def __init__(self, network: Callable, optimizer: Callable, levels: int = 256, channels: int = 1,
                 image_size: int = 28, conditional: bool = False, num_classes: int = 0, binarize: str = "none",
                 binarize_seed: int = 0, num_fixed: int = 20, cached_sampling: bool = True,
                 monitor: str | None = None, scheduler: Callable | None = None,
                 encoder: torch.nn.Module | None = None, cond_map_hidden: int = 32,
                 vector_conditioning: bool = True) -> None:
        super().__init__()
        if binarize not in BINARIZE:
            raise ValueError(f"model.binarize must be one of {BINARIZE}, got {binarize!r}")
        if binarize != "none" and levels != 2:
            raise ValueError(f"model.binarize={binarize} needs model.levels=2, got {levels}")
        if conditional and num_classes < 1:
            raise ValueError("model.conditional=true needs a labelled dataset, but data.num_classes is 0")
        if conditional and encoder is not None:
            raise ValueError("model.conditional=true and a model.encoder: condition on the class or on a code")
        #: ``""``, or the auto-encoder's :data:`RECONSTRUCTION`: the logged likelihoods' prefix
        self.metric_prefix = RECONSTRUCTION if encoder is not None else ""
        monitor = check_monitor(monitor or f"val/{self.metric_prefix}bits_per_dim", self.metric_prefix)
        self.save_plain_hyperparameters()
        self.encoder = encoder
        cond_dim = num_classes if conditional else (encoder.latent_dim if encoder is not None else 0)
        self.network = network(channels=channels, levels=levels, image_size=image_size,
                               cond_dim=cond_dim if vector_conditioning else 0)
        map_channels = getattr(self.network, "cond_map_channels", 0)
        if map_channels and not cond_dim:
            raise ValueError(
                f"model.network.cond_map_channels={map_channels} maps the condition h to a spatial map s = m(h) "
                "(eq. 5), but this model has none: set model.conditional=true on a labelled dataset, or use "
                "model=pixelcnn_autoencoder (h = the image's code)")
        if cond_dim and not vector_conditioning and not map_channels:
            raise ValueError("model.vector_conditioning=false leaves the condition h unused: set "
                             "model.network.cond_map_channels > 0 to condition through s = m(h) (eq. 5)")
        #: ``m`` of eq. 5, ``h (B, cond_dim) -> s (B, K', H, W)``; ``None`` without map conditioning
        self.cond_map = (ConditionMap(cond_dim, map_channels, image_size, hidden=cond_map_hidden)
                         if map_channels else None)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        generator = torch.Generator().manual_seed(1234)
        self.register_buffer("fixed_z", torch.rand(num_fixed, channels, image_size, image_size, generator=generator))
        self.register_buffer("fixed_labels", torch.arange(num_fixed) % max(num_classes, 1))
        #: auto-encoder: the first validation images (levels), whose codes the sample grid decodes
        self.register_buffer("fixed_images", torch.zeros(0, channels, image_size, image_size, dtype=torch.long),
                             persistent=False)

    # ------------------------------------------------------------------------------------------- data
    @property
    def dims(self) -> int:
        """``D = C H W`` sub-pixels per image."""
        return self.hparams.channels * self.hparams.image_size**2

    def quantize(self, images: Tensor, stochastic: bool) -> Tensor:
        """Level indices int64 ``(B, C, H, W)`` in ``[0, L)`` of images ``(B, C, H, W)`` in ``[-1, 1]``
        (binarized as the class describes; ``stochastic``: a fresh draw for dynamic binarization)."""
        hp = self.hparams
        intensity = ((images.float() + 1) / 2).clamp(0, 1)
        if hp.binarize == "none":
            return torch.round(intensity * (hp.levels - 1)).long()
        if hp.binarize == "dynamic" and stochastic:
            return (torch.rand_like(intensity) < intensity).long()
        flat = torch.round(intensity * 255).long().flatten(1)
        content = (flat * mix64(torch.arange(flat.shape[1], device=flat.device), 17)).sum(1)
        keys = content[:, None] * flat.shape[1] + torch.arange(flat.shape[1], device=flat.device)
        noise = hashed_uniform(keys, hp.binarize_seed).reshape(intensity.shape).to(intensity.dtype)
        return (noise < intensity).long()

    def condition(self, labels: Tensor | None, levels: Tensor | None = None) -> Tensor | None:
        """The network's ``h`` (Sec. 2.3-2.4): the code ``(B, m)`` of the quantized images ``levels``
        (auto-encoder); with ``conditional``, the one-hot class ``(B, num_classes)`` of int ``labels`` ``(B,)``
        (a negative label, an unlabelled image as in ``data=tfd``, gets ``h = 0``) or, for labels that are
        already vectors ``(B, num_classes)`` (e.g. CelebA's multi-hot attributes), those labels as floats;
        ``None`` for an unconditional model.

        Raises:
            ValueError: vector labels whose width is not ``num_classes`` (names ``data.num_classes``).
        """
        if self.encoder is not None:
            return self.encoder((from_levels(levels, self.hparams.levels) + 1) / 2)
        if not self.hparams.conditional:
            return None
        classes = self.hparams.num_classes
        if labels.dim() == 2:
            if labels.shape[1] != classes:
                raise ValueError(f"labels of width {labels.shape[1]} but data.num_classes={classes}")
            return labels.float()
        labels = labels.long()
        return F.one_hot(labels.clamp(min=0), classes).float() * (labels >= 0).unsqueeze(1)

    def network_conditions(self, h: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """What the network is conditioned on, given the condition ``h`` ``(B, m)`` (:meth:`condition`):
        ``(h, s)`` with ``h`` itself for eq. 4's ``V^T h`` (``None`` with ``vector_conditioning=False``) and
        ``s = m(h)`` ``(B, K', H, W)`` for eq. 5 (``None`` without ``model.network.cond_map_channels``)."""
        s = None if self.cond_map is None or h is None else self.cond_map(h)
        return (h if self.hparams.vector_conditioning else None), s

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """Logits ``(B, L, C, H, W)`` (a softmax over the ``L`` levels per sub-pixel, Sec. 2.2 of the PixelRNN
        paper) of the quantized images ``x`` ``(B, C, H, W)`` in ``[-1, 1]`` (:func:`from_levels`), given the
        condition ``h`` ``(B, m)`` (``None`` for an unconditional model), mapped to the network's inputs by
        :meth:`network_conditions`. Raises ValueError (from the network) on misshapen inputs."""
        return self.network(x, *self.network_conditions(h))

    # ------------------------------------------------------------------------------------- likelihood
    def nll(self, images: Tensor, labels: Tensor | None, stochastic: bool = False) -> Tensor:
        """Negative log-likelihood, nats per image ``(B,)``, of images ``(B, C, H, W)`` in ``[-1, 1]``
        (for the auto-encoder ``-log p(x | h = f(x))``, a reconstruction likelihood)."""
        levels = self.quantize(images, stochastic)
        return nll_nats(self(from_levels(levels, self.hparams.levels), self.condition(labels, levels)), levels)

    def _log(self, split: str, nll: Tensor) -> None:
        prefix = f"{split}/{self.metric_prefix}"
        self.log(f"{prefix}nll", nll.mean(), on_step=split == "train", on_epoch=True, sync_dist=split != "train",
                 batch_size=nll.shape[0])
        self.log(f"{prefix}bits_per_dim", nats_to_bits_per_dim(nll.mean(), self.dims), on_step=False,
                 on_epoch=True, prog_bar=split != "train", sync_dist=split != "train", batch_size=nll.shape[0])

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Mean NLL (nats per image) of the batch, dynamically binarized when asked."""
        nll = self.nll(batch[0], batch[1], stochastic=True)
        self._log("train", nll)
        return nll.mean()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``val/nll`` (nats per image), ``val/bits_per_dim`` (the auto-encoder: ``val/reconstruction_nll``,
        ``val/reconstruction_bits_per_dim``); the auto-encoder keeps the first images."""
        if self.encoder is not None and batch_idx == 0 and not self.fixed_images.numel():
            self.fixed_images = self.quantize(batch[0][: self.hparams.num_fixed], stochastic=False)
        self._log("val", self.nll(batch[0], batch[1]))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``test/nll`` (nats per image), ``test/bits_per_dim`` (the auto-encoder: ``test/reconstruction_*``)."""
        self._log("test", self.nll(batch[0], batch[1]))

    def optimizer_plan(self):
        """One optimizer over all parameters (the auto-encoder's encoder and ``m`` included), with the optional
        scheduler."""
        return [("model", self.parameters(), self.optimizer_factory, self.scheduler_factory)]

    # ---------------------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images ``(B, C, H, W)`` in ``[-1, 1]`` sampled sub-pixel by sub-pixel (raster order, R -> G -> B),
        each level drawn by inverse CDF from the uniform noise ``z`` ``(B, C, H, W)``; class-conditional on
        ``labels`` (``conditional``), or, for the auto-encoder, on the codes of :attr:`fixed_images`
        (cycled to ``B``; none before the first validation: zeros)."""
        h = None
        if self.encoder is not None:
            if self.fixed_images.numel():
                h = self.condition(None, self.fixed_images[torch.arange(z.shape[0]) % len(self.fixed_images)])
            else:
                h = torch.zeros(z.shape[0], self.encoder.latent_dim, device=self.device)
        elif self.hparams.conditional:
            h = self.condition(labels)
        return self.generate_from_embeddings(z, h)

    def embedding_pairs(self, rows: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor] | None:
        """Start and end embeddings ``h`` ``(rows, m)`` to interpolate between (Sec. 2.3-2.4): the one-hot
        vectors of two different random classes (``conditional``), the codes of two different validation
        images (auto-encoder, after the first validation), else ``None``."""
        hp = self.hparams
        if hp.conditional and hp.num_classes > 1:
            first = torch.randint(hp.num_classes, (rows,), generator=generator)
            second = (first + torch.randint(1, hp.num_classes, (rows,), generator=generator)) % hp.num_classes
            return self.condition(first.to(self.device)), self.condition(second.to(self.device))
        if self.encoder is not None and len(self.fixed_images) > 1:
            first = torch.randint(len(self.fixed_images), (rows,), generator=generator)
            second = (first + torch.randint(1, len(self.fixed_images), (rows,), generator=generator)) \
                % len(self.fixed_images)
            with torch.no_grad():
                return (self.condition(None, self.fixed_images[first.to(self.device)]),
                        self.condition(None, self.fixed_images[second.to(self.device)]))
        return None

    @torch.no_grad()
    def generate_from_embeddings(self, z: Tensor, h: Tensor | None) -> Tensor:
        """Images ``(B, C, H, W)`` in ``[-1, 1]`` sampled from the uniform noise ``z`` ``(B, C, H, W)`` given
        any embeddings ``h`` ``(B, m)`` (e.g. interpolated one-hot classes or auto-encoder codes; ``None``
        for an unconditional model), passed to the sampler as :meth:`network_conditions` (``h`` and
        ``s = m(h)``, eqs. 4-5)."""
        h, s = self.network_conditions(None if h is None else h.to(self.device))
        levels = sample_levels(self.network, z.to(self.device), h=h, s=s, cached=self.hparams.cached_sampling)
        return from_levels(levels, self.hparams.levels)

    def sample(self, num_samples: int, labels: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``num_samples`` images ``(N, C, H, W)`` in ``[-1, 1]``; random classes when conditional and
        ``labels`` is ``None``."""
        hp = self.hparams
        z = torch.rand(num_samples, hp.channels, hp.image_size, hp.image_size, generator=generator)
        if hp.conditional and labels is None:
            labels = torch.randint(hp.num_classes, (num_samples,), generator=generator)
        return self.generate(z, None if labels is None else labels.to(self.device))


def check_monitor(monitor: str, prefix: str) -> str:
    """The ``model.monitor`` this model can rank by: the auto-encoder (``prefix`` :data:`RECONSTRUCTION`) logs
    ``val/reconstruction_bits_per_dim`` where the other models log ``val/bits_per_dim``. Checkpoints and sweeps
    rank by the monitor (``optimized_metric``), so a wrong name would rank by nothing.

    An auto-encoder given the plain name (``val/bits_per_dim``, the name it logged before it was labelled a
    reconstruction likelihood, still in older checkpoints' hyper-parameters) gets the reconstruction name,
    with a warning, so those checkpoints load.

    Returns:
        ``monitor``, or its reconstruction name for the auto-encoder.

    Raises:
        ValueError: a model without an encoder given a ``reconstruction_`` likelihood, naming ``model.monitor``
            and the metric to use instead.
    """
    split, _, name = str(monitor).rpartition("/")
    if not name.endswith(LIKELIHOODS) or name in {prefix + likelihood for likelihood in LIKELIHOODS}:
        return monitor
    stem = next(likelihood for likelihood in LIKELIHOODS if name.endswith(likelihood))
    if prefix and name == stem:
        from pytorch_lightning.utilities import rank_zero_warn

        rank_zero_warn(f"model.monitor={monitor}: the auto-encoder's likelihood is a reconstruction likelihood, "
                       f"logged as {split}/{prefix}{stem}; ranking by that")
        return f"{split}/{prefix}{stem}"
    raise ValueError(f"model.monitor={monitor} is not logged: this model's likelihood is {split}/{prefix}{stem}")
