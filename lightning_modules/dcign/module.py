"""DC-IGN: a convolutional VAE whose graphics code is disentangled by its training procedure
(Kulkarni, Whitney, Kohli, Tenenbaum 2015, "Deep Convolutional Inverse Graphics Network")."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.factors.batches import INTRINSIC
from datamodules.transforms import to_unit
from lightning_modules.dcign.disentanglement import (
    correlation_scores,
    largest_variance_latent,
    swap_latents,
    within_batch_variance,
)
from lightning_modules.dcign.invariance import check_clamp_mode, clamp_inactive
from lightning_modules.loading import LoadsFromCheckpoint
from lightning_modules.optimization import ConfiguredModule

#: constructor arguments kept out of the checkpoint's hyper-parameters (rebuilt from the run's config)
LIKELIHOODS = ("bernoulli", "gaussian")


def default_latent_groups(batch_types: Sequence[str], latent_dim: int) -> dict[str, list[int]]:
    """The paper's graphics code layout (Kulkarni et al. 2015, Sec. 3.2): latent ``k`` for the ``k``-th
    extrinsic batch type, the remaining latents for the intrinsic one.

    E.g. ``(azimuth, elevation, light, intrinsic)`` with 200 latents -> azimuth ``[0, 1]``, elevation
    ``[1, 2]``, light ``[2, 3]``, intrinsic ``[3, 200]`` (z_1..z_3 and z_4..z_200 in the paper's 1-based
    numbering).

    Raises:
        ValueError: if there are not more latents than extrinsic batch types.
    """
    extrinsic = [t for t in batch_types if t != INTRINSIC]
    if latent_dim <= len(extrinsic):
        raise ValueError(f"the graphics code needs more than {len(extrinsic)} latents, got {latent_dim}")
    groups = {t: [k, k + 1] for k, t in enumerate(extrinsic)}
    if INTRINSIC in batch_types:
        groups[INTRINSIC] = [len(extrinsic), latent_dim]
    return groups


class DCIGNModule(LoadsFromCheckpoint, ConfiguredModule):
    """DC-IGN trained by SGVB on one-factor batches, with clamping and invariance targeting.

    Training (Sec. 3.1-3.2): each batch ``(images, factors, batch_type)`` (see
    :mod:`datamodules.factors.batches`) varies one factor. The encoder gives ``Q(z|x) = N(mu, exp(logvar))``;
    a sample ``z`` is drawn; with ``invariance=True`` every latent outside the varied factor's group is
    clamped and its whole gradient replaced (:func:`lightning_modules.dcign.invariance.clamp_inactive`, the
    rule ``clamp``: the paper's clamps the sample, the reference code's the mean and log-variance before
    sampling, see :meth:`elbo_terms`); the decoder reconstructs the batch. The loss is the negative ELBO
    per image, in nats: ``-log P(x|z) + kl_weight * KL(Q(z|x) || N(0, I))`` (Kingma & Welling 2014,
    eq. 10), with a Bernoulli or a Gaussian (``gaussian_sigma``, pixels in ``[0, 1]``) likelihood.
    ``invariance=False`` is the paper's entangled baseline: plain SGVB on the same batches.

    Evaluation (Sec. 4), on validation and test, from the encoder means:

    - ``recon_mse``: reconstruction MSE, pixels in ``[0, 1]`` (the paper: 2.7722e-4 on chairs);
    - ``loss``: the negative ELBO (nats per image);
    - ``pearson/<f>``, ``spearman/<f>``, ``r2/<f>``: each extrinsic factor's latent (the first of its group;
      for the baseline, the latent of largest variance over ``f``-varied batches) against the true value;
    - ``invariance/<t>``: mean within-batch variance of the latents outside group ``t`` on ``t``-varied
      batches, and ``invariance_ratio/<t>`` the same divided by those latents' variance over the split
      (0: invariant, 1: as variable as across the whole split);
    - ``novel_view_mse``: in each azimuth-varied batch, the first image's code with its azimuth latent set
      to each other view's, decoded and compared with that view (pixels in ``[0, 1]``, Sec. 4.1.1), and
      ``novel_view_unswapped_mse`` the first image's own reconstruction compared with the same views: what
      the swap must beat (equal when the azimuth latent does not turn the face).

    Args:
        encoder: ``x (B, C, H, W) in [0, 1] -> (mu, logvar)``, each ``(B, D)``.
        decoder: ``decoder(z, logits=True) -> (B, C, H, W)`` pre-sigmoid.
        optimizer: partial optimizer (paper: RMSprop, learning rate 5e-4).
        batch_types: the data's batch types (``data.batch_types``), in the order of ``batch_type`` indices.
        factor_names: the data's factor columns (``data.factor_names``).
        latent_groups: batch type -> ``[start, stop)`` latent indices, or ``None`` for the paper's layout
            (:func:`default_latent_groups`: one latent per extrinsic batch type in order, the rest
            intrinsic; faces: azimuth ``[0, 1]``, elevation ``[1, 2]``, light ``[2, 3]``, intrinsic ``[3, 200]``).
        invariance: clamp + replace gradients (DC-IGN); False: plain SGVB (the baseline).
        clamp: ``"mean"`` (paper: the sample clamped to the batch mean, pulled towards it),
            ``"reference"`` (the reference code: mean and log-variance clamped to the first image's, fresh
            noise, pushed away from the batch mean) or ``"first"`` (the sample clamped to the first image's,
            gradient 0; not the reference's rule), see
            :data:`lightning_modules.dcign.invariance.CLAMP_RULES`.
        invariance_lambda: the replaced gradient's ``lambda`` (paper: 1/100; the reference code's
            ``--invariance_strength``, default 0), relative to the objective summed over the batch as in the
            reference code: with our per-image mean loss a clamped latent receives
            ``lambda / B * (z_i - mean_i)``, the reference code's ratio to each image's own gradient.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        gaussian_sigma: the Gaussian likelihood's standard deviation (pixels in ``[0, 1]``).
        kl_weight: weight of the KL term (1: SGVB).
        clamped_kl: False (the paper; the reference code): a clamped latent's KL term passes no gradient,
            its whole gradient is the replaced one; True: the KL of the unclamped mean and log-variance
            passes its whole gradient, so the prior pulls every latent in every batch (how the two compare
            at genforge's budgets: docs/dcign.md).
        kl_warmup_steps: raise the KL weight linearly from 0 to ``kl_weight`` over this many training
            steps (0: off, the paper). A standard remedy for posterior collapse (Bowman et al. 2016,
            Sec. 3.1; Sønderby et al. 2016): without it a latent whose factor changes few pixels (the
            faces' azimuth) can stay at the prior.
        monitor: the metric checkpoints rank by (``optimized_metric``).
        scheduler: optional partial scheduler (:class:`lightning_modules.optimization.ConfiguredModule`:
            stepped once per epoch, or after every step when its class says ``interval = "step"``).

    Raises:
        ValueError: on an unknown likelihood or clamp mode (names ``model.clamp`` and its valid values), a
            non-positive sigma, a batch type without a latent group, or a group outside the code (names
            the config key).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, optimizer: Callable,
                 batch_types: Sequence[str], factor_names: Sequence[str],
                 latent_groups: Mapping[str, Sequence[int]] | None = None,
                 invariance: bool = True, clamp: str = "mean", invariance_lambda: float = 0.01,
                 likelihood: str = "bernoulli", gaussian_sigma: float = 0.1, kl_weight: float = 1.0,
                 kl_warmup_steps: int = 0, monitor: str = "val/loss", scheduler: Callable | None = None,
                 clamped_kl: bool = False) -> None:
        super().__init__()
        # plain lists (not Hydra's ListConfig) so the checkpoint's hyper-parameters load with weights_only
        batch_types, factor_names = [str(t) for t in batch_types], [str(f) for f in factor_names]
        if latent_groups is not None:
            latent_groups = {str(k): [int(v) for v in g] for k, g in latent_groups.items()}
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"model.likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        check_clamp_mode(clamp)
        if not isinstance(clamped_kl, bool):
            raise TypeError(f"model.clamped_kl must be true or false, got {clamped_kl!r}")
        if gaussian_sigma <= 0 or kl_weight < 0 or invariance_lambda < 0 or kl_warmup_steps < 0:
            raise ValueError("model.gaussian_sigma must be > 0, model.kl_weight, model.kl_warmup_steps and "
                             "model.invariance_lambda >= 0")
        self.encoder, self.decoder = encoder, decoder
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.batch_types, self.factor_names = tuple(batch_types), tuple(factor_names)
        latent_dim = decoder.latent_dim
        if latent_groups is None:
            latent_groups = default_latent_groups(self.batch_types, latent_dim)
        masks = []
        for kind in self.batch_types:
            group = latent_groups.get(kind)
            if group is None or len(group) != 2 or not 0 <= group[0] < group[1] <= latent_dim:
                raise ValueError(f"model.latent_groups.{kind} must be [start, stop) within the {latent_dim} "
                                 f"latents, got {None if group is None else list(group)}")
            mask = torch.zeros(latent_dim, dtype=torch.bool)
            mask[group[0]:group[1]] = True
            masks.append(mask)
        self.register_buffer("group_masks", torch.stack(masks), persistent=False)
        #: extrinsic factor -> the latent that encodes it (group start; the baseline's is set by validation)
        self.factor_latent = {f: int(latent_groups[f][0]) for f in self.batch_types if f in self.factor_names}
        self.latent_range = torch.tensor([-3.0, 3.0]).repeat(latent_dim, 1)
        self.scatter: dict[str, tuple[Tensor, Tensor]] = {}
        self._eval: dict[str, list] = {}
        self.save_plain_hyperparameters()

    # ------------------------------------------------------------------ the model
    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)``, each ``(B, D)``, of images ``(B, C, H, W)`` in ``[-1, 1]``."""
        return self.encoder(to_unit(images))

    def decode(self, z: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in ``[-1, 1]`` decoded from codes ``(B, D)`` (the sigmoid's mean)."""
        return self.decoder(z).mul(2.0).sub(1.0)

    def active_mask(self, batch_type: Tensor | int) -> Tensor:
        """bool ``(D,)``: the latent group of batch type index ``batch_type``."""
        return self.group_masks[int(batch_type)]

    def negative_log_likelihood(self, logits: Tensor, target: Tensor) -> Tensor:
        """``-log P(x | z)`` summed over pixels, averaged over the batch, in nats; ``target`` in ``[0, 1]``."""
        if self.hparams.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(target)
        sigma = self.hparams.gaussian_sigma
        squared = (logits.sigmoid() - target).pow(2).sum() / len(target)
        return 0.5 * squared / sigma**2 + target[0].numel() * math.log(sigma * math.sqrt(2 * math.pi))

    @staticmethod
    def kl_divergence(mu: Tensor, logvar: Tensor, active: Tensor | None = None) -> Tensor:
        """``KL(N(mu, exp(logvar)) || N(0, I))`` of ``mu``, ``logvar`` ``(B, D)``, summed over latents and
        averaged over the batch: a scalar in nats >= 0 (Kingma & Welling 2014, Appendix B).

        With ``active`` (bool ``(D,)``), the latents outside it count in the value but pass no gradient:
        a clamped latent's whole gradient is the replaced one, ``lambda / B * (z_i - mean_i)`` (Kulkarni et
        al. 2015, Sec. 3.1; the reference code computes the KL on the clamped encoder outputs, and its
        gradient filter replaces their gradient, see ``model.clamp=reference``). Otherwise the prior would
        pull e.g. the azimuth latent
        towards ``N(0, 1)`` in every batch while the reconstruction rewards it only in azimuth batches (1 in
        13): its posterior standard deviation stayed at 0.8-0.9 and the traversals barely turned the face.
        """
        per_latent = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        if active is not None:
            per_latent = torch.where(active, per_latent, per_latent.detach())
        return per_latent.sum() / len(mu)

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
        """``z = mu + eps * exp(logvar / 2)``, ``(B, D)``, with fresh noise ``eps ~ N(0, I)`` per image and
        latent (Kingma & Welling 2014, Sec. 2.4; the reference code's ``modules/Reparametrize.lua``)."""
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def elbo_terms(self, images: Tensor, batch_type: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(nll, kl, mu, logvar)`` of one batch of images ``(B, C, H, W)`` in ``[-1, 1]``: ``nll`` and
        ``kl`` scalars in nats per image, ``mu`` and ``logvar`` ``(B, D)`` the encoder's unclamped outputs.

        With ``batch_type`` and ``invariance`` (training only) the inactive latents are clamped
        (:func:`lightning_modules.dcign.invariance.clamp_inactive`, with ``lambda / B``: the reference code's
        lambda is relative to an objective summed over the batch, its criteria have ``sizeAverage=false``;
        ours is the batch mean, so each image's own gradient is 1/B of the summed one):

        - ``clamp=mean`` or ``first``: the sample ``z`` is clamped; the KL is that of the unclamped outputs,
          its clamped latents passing no gradient (:meth:`kl_divergence`) unless ``clamped_kl``.
        - ``clamp=reference`` (``monovariant_main.lua``): ``mu`` and ``logvar`` are clamped, then ``z`` is
          sampled with fresh noise per image; the KL is that of the clamped ``mu`` and ``logvar`` through a
          second application of the clamp, whose replaced gradient stands for the one the reference's
          filter adds in its second backward pass (``encoder:backward(batch, dKLD_dw)``); so a clamped
          entry ``x_i`` gets ``-2 * lambda / B * (x_i - mean_i)`` in all, whatever ``kl_weight`` (the
          reference has none). With ``clamped_kl`` the KL is that of the unclamped outputs, passing its
          whole gradient, and the replaced term enters once.
        """
        target = to_unit(images)
        mu, logvar = self.encoder(target)
        if batch_type is None or not self.hparams.invariance:
            z, kl = self.reparameterize(mu, logvar), self.kl_divergence(mu, logvar)
        else:
            active, mode = self.active_mask(batch_type), self.hparams.clamp
            lam = self.hparams.invariance_lambda / len(mu)

            def clamp(x: Tensor) -> Tensor:
                return clamp_inactive(x, active, lam, mode)

            if check_clamp_mode(mode).site == "posterior":
                z = self.reparameterize(clamp(mu), clamp(logvar))
                kl = self.kl_divergence(mu, logvar) if self.hparams.clamped_kl else \
                    self.kl_divergence(clamp(mu), clamp(logvar))
            else:
                z = clamp(self.reparameterize(mu, logvar))
                kl = self.kl_divergence(mu, logvar, None if self.hparams.clamped_kl else active)
        nll = self.negative_log_likelihood(self.decoder(z, logits=True), target)
        return nll, kl, mu, logvar

    # ------------------------------------------------------------------ training
    def current_kl_weight(self) -> float:
        """The KL weight of this training step: ``kl_weight``, ramped up over ``kl_warmup_steps``."""
        warmup = self.hparams.kl_warmup_steps
        ramp = 1.0 if not warmup else min(1.0, self.global_step / warmup)
        return self.hparams.kl_weight * ramp

    def training_step(self, batch, batch_idx: int) -> Tensor:
        images, _, batch_type = batch
        nll, kl, _, _ = self.elbo_terms(images, batch_type)
        beta = self.current_kl_weight()
        loss = nll + beta * kl
        self.log("train/loss", loss, prog_bar=True, batch_size=len(images))
        self.log_dict({"train/nll": nll, "train/kl": kl, "train/kl_weight": beta}, batch_size=len(images))
        return loss

    # ------------------------------------------------------------------ evaluation
    def on_validation_epoch_start(self) -> None:
        self._eval = {"codes": [], "factors": [], "types": [], "loss": [], "mse": [], "sizes": [], "views": []}

    on_test_epoch_start = on_validation_epoch_start

    def _evaluation_step(self, batch) -> None:
        images, factors, batch_type = batch
        nll, kl, mu, _ = self.elbo_terms(images, None)
        mu = mu.float()  # bf16/fp16 under mixed precision; the statistics (quantile, novel views) want float32
        recon = self.decode(mu)
        e = self._eval
        e["codes"].append(mu.detach().cpu())
        e["factors"].append(factors.detach().cpu())
        e["types"].append(int(batch_type))
        e["loss"].append(float(nll + self.hparams.kl_weight * kl))
        e["mse"].append(float(F.mse_loss(to_unit(recon), to_unit(images))))
        e["sizes"].append(len(images))
        if self.batch_types[int(batch_type)] == "azimuth" and len(images) >= 2:
            e["views"].append((images.detach(), mu.detach()))

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test")

    def batches_of(self, kind: str) -> list[Tensor]:
        """The evaluated codes ``(B, D)`` of every batch of type ``kind`` (of at least two images)."""
        index = self.batch_types.index(kind)
        return [c for c, t in zip(self._eval["codes"], self._eval["types"]) if t == index and len(c) >= 2]

    def _log_evaluation(self, split: str) -> None:
        e = self._eval
        if not e.get("codes"):
            return
        sizes = torch.tensor(e["sizes"], dtype=torch.float64)
        metrics = {"loss": float((torch.tensor(e["loss"], dtype=torch.float64) * sizes).sum() / sizes.sum()),
                   "recon_mse": float((torch.tensor(e["mse"], dtype=torch.float64) * sizes).sum() / sizes.sum())}
        codes, factors = torch.cat(e["codes"]), torch.cat(e["factors"])
        self.latent_range = torch.stack([codes.quantile(0.02, 0), codes.quantile(0.98, 0)], 1)
        for kind in self.batch_types:
            batches = self.batches_of(kind)
            if not batches:
                continue
            outside = ~self.active_mask(self.batch_types.index(kind)).cpu()
            variance = within_batch_variance(batches, outside)
            total = float(codes[:, outside].double().var(0, unbiased=False).mean())
            metrics[f"invariance/{kind}"] = variance
            metrics[f"invariance_ratio/{kind}"] = variance / total if total > 0 else 0.0
            if kind != INTRINSIC and kind in self.factor_names:
                if not self.hparams.invariance:
                    self.factor_latent[kind] = largest_variance_latent(batches)
                scores = correlation_scores(codes[:, self.factor_latent[kind]],
                                            factors[:, self.factor_names.index(kind)])
                metrics.update({f"{name}/{kind}": value for name, value in scores.items()})
                self.scatter[kind] = (codes[:, self.factor_latent[kind]], factors[:, self.factor_names.index(kind)])
        if e["views"] and "azimuth" in self.factor_latent:
            metrics["novel_view_mse"], metrics["novel_view_unswapped_mse"] = self._novel_view_mse(e["views"])
        self.log_dict({f"{split}/{k}": v for k, v in metrics.items()}, sync_dist=True)

    @torch.no_grad()
    def _novel_view_mse(self, views: list[tuple[Tensor, Tensor]]) -> tuple[float, float]:
        """``(novel_view_mse, novel_view_unswapped_mse)`` over the azimuth batches ``(images, codes)``."""
        mask = torch.zeros(self.group_masks.shape[1], dtype=torch.bool, device=self.device)
        mask[self.factor_latent["azimuth"]] = True
        swapped, unswapped = [], []
        for images, codes in views:
            targets = to_unit(images[1:])
            novel = self.decode(swap_latents(codes, mask))
            swapped.append(F.mse_loss(to_unit(novel), targets, reduction="none").mean((1, 2, 3)))
            own = to_unit(self.decode(codes[:1])).expand_as(targets)
            unswapped.append(F.mse_loss(own, targets, reduction="none").mean((1, 2, 3)))
        return float(torch.cat(swapped).mean()), float(torch.cat(unswapped).mean())

    # ------------------------------------------------------------------ traversals (callbacks)
    @torch.no_grad()
    def traverse(self, images: Tensor, factor: str, steps: int = 8) -> Tensor:
        """Latent traversal (Kulkarni et al. 2015, Figs. 4, 5, 8): encode each image, sweep the latent of
        ``factor`` over its validation range (2nd to 98th percentile), decode.

        Args:
            images: ``(R, C, H, W)`` in ``[-1, 1]``.
            factor: an extrinsic batch type (``azimuth``, ``elevation``, ``light``).
            steps: values per row.

        Returns:
            ``(R * steps, C, H, W)`` in ``[-1, 1]``, row-major (one row per image).
        """
        mu, _ = self.encode(images.to(self.device))
        index = self.factor_latent[factor]
        lo, hi = (float(v) for v in self.latent_range[index])
        codes = mu.repeat_interleave(steps, 0)
        codes[:, index] = torch.linspace(lo, hi, steps, device=self.device).repeat(len(mu))
        return self.decode(codes)

    # ------------------------------------------------------------------ optimization
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["dcign"] = {"factor_latent": dict(self.factor_latent), "latent_range": self.latent_range.clone()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("dcign")
        if state:
            self.factor_latent.update({k: int(v) for k, v in state["factor_latent"].items()})
            self.latent_range = state["latent_range"]

    def optimizer_plan(self):
        """One optimizer over the encoder and decoder, with the optional scheduler (stepped once per epoch)."""
        return [("model", self.parameters(), self.optimizer_factory, self.scheduler_factory)]
