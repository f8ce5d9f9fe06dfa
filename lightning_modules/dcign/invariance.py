"""DC-IGN's clamping and invariance targeting (Kulkarni et al. 2015, Sec. 3.1, Fig. 3), as an autograd
Function: the forward pass clamps the inactive latents, the backward pass replaces their gradient.

In a mini-batch where only one factor varies, the graphics code's *active* group (the latents meant to
encode that factor) passes through unchanged and every other (*inactive*) latent is clamped, so that the
decoder must explain the batch's variation with the active group alone. Three rules (``model.clamp``,
:data:`CLAMP_RULES`):

- ``mean`` (the paper, Sec. 3.1 and Fig. 3): the sampled code's inactive latents ``z_i`` are replaced by
  their batch mean ``mean_i``; in the backward pass each gets, instead of the reconstruction's gradient,
  ``lambda * (z_i - mean_i)`` (``lambda = 1/100``): gradient descent moves every sample's inactive latents
  *towards* their common value, i.e. invariance to the varied factor.
- ``reference`` (Whitney's ``dc-ign`` Torch code, ``config.lua``'s ``init_network2_150_mv``, whose mean and
  log-variance heads each end in ``nn.SelectiveGradientFilter`` then ``nn.SelectiveOutputClamp``, from
  ``modules/SelectiveGradientFilter.lua`` and ``modules/SelectiveOutputClamp.lua``): the encoder's *mean
  and log-variance* are clamped, each to the batch's *first image* (``self.output[i]:copy(input[1])``),
  before the reparameterization draws fresh noise per image (``modules/Reparametrize.lua``), so the decoded
  codes still differ across the batch. Each clamped entry ``x_i`` (of ``mu`` or ``logvar``) gets, with
  ``--force_invariance``, ``invariance_strength * (x_i - mean(x))`` (``self.gradInput[{{i}}] = input[i] -
  target``, ``target = torch.mean(input, 1)``, the batch mean of the unclamped output; without the flag,
  its default, 0). That is a gradient of the *lower bound*, which ``monovariant_main.lua`` maximises
  (``learning_rate`` -0.0005 in ``rmsprop.lua``'s ``x:add(-lr, ...)``; its criterion gradients are
  negated, ``criterion:backward(f, target):mul(-1)``). For our minimised loss it is therefore
  ``-lambda * (x_i - mean_i)``: gradient descent moves each image's clamped mean and log-variance *away*
  from their batch mean (it widens their spread within the batch; their batch mean gets no gradient), the
  opposite of the paper's stated intent and of its source comment "grad should increase (actual -
  correct)". ``monovariant_main.lua`` runs two backward passes per batch, ``model:backward(batch,
  df_dw)`` (reconstruction) and ``encoder:backward(batch, dKLD_dw)`` (KL, computed on the clamped
  outputs), and the filter adds its term in each;
  :meth:`lightning_modules.dcign.module.DCIGNModule.elbo_terms` applies this clamp once for the sample and
  once for the KL term, so the term enters our single backward pass twice too.
- ``first`` (genforge's): the *sampled code* ``z`` is clamped to the batch's first image's sample (the
  same noise for the whole batch), and the clamped latents get zero gradient. It is not the reference's
  rule; it resembles an early revision of the reference (``monovariant_main.lua`` at fbf5532, whose
  commented-out block put the filter and the clamp "after the Reparametrize", with a filter that zeroed
  the clamped gradients except the first image's own, ``self.gradInput[1] = gradOutput[1]``, which
  ``first`` zeroes too).

``lambda`` is relative to the objective summed over the batch, as in the reference code (its criteria
have ``sizeAverage = false``); DC-IGN's module, whose loss is the batch mean, passes ``lambda / B``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ClampRule:
    """One ``model.clamp`` value (Kulkarni et al. 2015, Sec. 3.1; the reference code's clamp and filter).

    Attributes:
        target: what an inactive latent is clamped to: ``"mean"`` (its batch mean) or ``"first"`` (the
            batch's first image's value).
        gradient: ``c`` in the replaced gradient ``c * lambda * (x_i - mean_i)`` of a minimised loss:
            ``+1`` pulls towards the batch mean, ``0`` passes nothing, ``-1`` pushes away from it.
        site: where the clamp sits: ``"sample"`` (on the sampled code ``z``) or ``"posterior"`` (on the
            encoder's mean and log-variance, each clamped on its own, before sampling).
    """

    target: str
    gradient: float
    site: str


#: ``model.clamp`` -> its rule: the paper's, the reference code's, and genforge's first-sample variant.
CLAMP_RULES = {
    "mean": ClampRule(target="mean", gradient=1.0, site="sample"),
    "reference": ClampRule(target="first", gradient=-1.0, site="posterior"),
    "first": ClampRule(target="first", gradient=0.0, site="sample"),
}
#: the valid ``model.clamp`` values
CLAMP_MODES = tuple(CLAMP_RULES)


class ClampInactive(torch.autograd.Function):
    """``forward(x, active, lam, mode)``: see :func:`clamp_inactive`."""

    @staticmethod
    def forward(ctx, x: Tensor, active: Tensor, lam: float, mode: str) -> Tensor:  # type: ignore[override]
        rule = CLAMP_RULES[mode]
        value = x.mean(0, keepdim=True) if rule.target == "mean" else x[:1]
        ctx.save_for_backward(x, active)
        ctx.scale = rule.gradient * lam
        return torch.where(active, x, value.expand_as(x))

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, active = ctx.saved_tensors
        replaced = ctx.scale * (x - x.mean(0, keepdim=True))
        return torch.where(active, grad, replaced), None, None, None


def clamp_inactive(x: Tensor, active: Tensor, lam: float = 0.01, mode: str = "mean") -> Tensor:
    """Clamp the latents outside the active group; replace their gradient (Kulkarni et al. 2015, Sec. 3.1;
    reference code: ``modules/SelectiveOutputClamp.lua``, ``modules/SelectiveGradientFilter.lua``).

    Args:
        x: ``(B, D)`` values of one mini-batch in which one factor varies: the sampled graphics code ``z``
            (``mean``, ``first``) or the encoder's mean or log-variance (``reference``; nats for the
            log-variance).
        active: bool ``(D,)``, True for the latents of the group that encodes the varied factor.
        lam: ``lambda`` of the replaced gradient, >= 0, relative to the objective being differentiated.
            The paper's 1/100 is relative to an objective summed over the batch (the reference code); for
            a per-image mean objective pass ``lambda / B``.
        mode: a key of :data:`CLAMP_RULES`. ``"mean"``: value the batch mean, gradient
            ``+lam * (x_i - mean_i)`` (towards the mean); ``"reference"``: value the first image's,
            gradient ``-lam * (x_i - mean_i)`` (away from the mean: the reference's term for a maximised
            bound, translated to a minimised loss); ``"first"``: value the first image's, gradient 0.

    Returns:
        ``(B, D)``: ``x`` in the active columns, the clamped value in the others. Its backward pass gives
        ``x`` the upstream gradient in the active columns and the replaced one (whatever the upstream
        gradient) in the others.

    Raises:
        ValueError: on an ``x`` that is not ``(B, D)``, an ``active`` mask of another length or dtype, a
            negative ``lam`` (names ``model.invariance_lambda``) or an unknown ``mode`` (names
            ``model.clamp`` and lists the valid values).
    """
    if x.dim() != 2:
        raise ValueError(f"clamp_inactive expects a graphics code (B, D), got {tuple(x.shape)}")
    if active.dtype != torch.bool or active.shape != (x.shape[1],):
        raise ValueError(f"active must be a bool mask of shape ({x.shape[1]},), got {active.dtype} "
                         f"{tuple(active.shape)}")
    check_clamp_mode(mode)
    if lam < 0:
        raise ValueError(f"model.invariance_lambda must be >= 0, got {lam}")
    return ClampInactive.apply(x, active.to(x.device), float(lam), mode)


def check_clamp_mode(mode: str) -> ClampRule:
    """The rule of ``model.clamp`` value ``mode``.

    Raises:
        ValueError: on an unknown ``mode``, naming ``model.clamp`` and the valid values.
    """
    if mode not in CLAMP_RULES:
        raise ValueError(f"model.clamp must be one of {', '.join(CLAMP_MODES)}, got {mode!r}")
    return CLAMP_RULES[mode]
