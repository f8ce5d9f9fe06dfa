"""Fully connected GAN networks of the original GAN paper.

Goodfellow et al. 2014, "Generative Adversarial Nets", Sec. 5 (Experiments), with the exact MNIST
architecture of the authors' pylearn2 config (github.com/goodfeli/adversarial, ``mnist.yaml``): a
generator of two 1200-unit ReLU layers and a sigmoid output, and a discriminator of two maxout layers
(240 units x 5 pieces) with dropout (input include-probability 0.8, hidden 0.5) and a single output unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_modules.networks.conditioning import (
    append_cond_vector,
    as_int,
    as_int_tuple,
    check_cond,
    check_images,
    check_latent,
)
from lightning_modules.networks.normalization import spectral_norm_


def _uniform_init_(module: nn.Module, init_range: float) -> None:
    """pylearn2's ``irange`` init: weights ~ U(-init_range, init_range), biases 0 (GAN config, Sec. 5)."""
    init_range = float(init_range)
    if not init_range > 0.0:
        raise ValueError(f"{type(module).__name__}: init_range must be > 0, got {init_range}")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -init_range, init_range)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _check_probability(p: float, name: str, owner: str) -> float:
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {p}")
    return p


class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013, "Maxout Networks", Sec. 2, Eq. 1).

    ``h_j(x) = max_{k < pieces} (x W + b)_{j * pieces + k}``: one affine map to
    ``out_features * pieces`` values, then the maximum over each unit's ``pieces`` consecutive values.

    Args:
        in_features: input width ``D``.
        out_features: number of maxout units ``U``.
        pieces: affine pieces per unit ``k`` (>= 1; ``pieces=1`` is a plain linear layer).

    Shapes:
        ``(B, D) -> (B, U)``; real-valued (unbounded).

    Attributes:
        linear: the ``nn.Linear(D, U * pieces)``; rows ``j*pieces .. j*pieces + pieces - 1`` belong to unit ``j``.

    Raises:
        ValueError: non-positive sizes at construction.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_features = as_int(in_features, "in_features", owner)
        self.out_features = as_int(out_features, "out_features", owner)
        self.pieces = as_int(pieces, "pieces", owner)
        self.linear = nn.Linear(self.in_features, self.out_features * self.pieces)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, D) -> (B, U)``: maximum over the pieces of each unit."""
        y = self.linear(x)
        return y.view(*y.shape[:-1], self.out_features, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"


class MLPGenerator(nn.Module):
    """Fully connected generator of the original GAN (Goodfellow et al. 2014, Sec. 5; pylearn2 mnist.yaml).

    ``z (+ cond) -> [Linear -> ReLU] x len(hidden_dims) -> Linear -> sigmoid -> reshape``. The paper's
    sigmoid output models pixels in [0, 1]: with ``unit_output=True`` the network returns the sigmoid ``s``
    in [0, 1] as the paper (the module maps it to genforge's [-1, 1] at its boundary), otherwise ``2*s - 1``
    in [-1, 1] (identical to ``tanh(a / 2)`` of the pre-activation ``a``). Weights are initialised
    ``U(-init_range, init_range)`` with zero biases as in the config (``irange: .05``); the config's output
    bias from the training pixels' marginals is :meth:`init_output_bias_from_marginals`, which the module
    calls with the training set. The noise distribution is the module's choice, not the network's.

    Args:
        latent_dim: width ``L`` of ``z``.
        channels: image channels ``C`` (1 or 3).
        image_size: square image side ``S``.
        hidden_dims: widths of the ReLU hidden layers (paper: 1200, 1200).
        num_classes: conditioning width ``K`` (0 = unconditional); ``cond`` is appended to ``z``
            (Mirza & Osindero 2014, Sec. 3.2).
        init_range: half-width of the uniform weight init.
        unit_output: return pixels in [0, 1] (the sigmoid) instead of [-1, 1].

    Shapes:
        ``forward(z: (B, L), cond: (B, K) | None) -> (B, C, S, S)`` with values in [-1, 1] ([0, 1] with
        ``unit_output``).

    Raises:
        ValueError: invalid constructor arguments; ``z`` not ``(B, L)``; ``cond`` given when ``K == 0``,
            missing when ``K > 0``, or not ``(B, K)``.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 1,
        image_size: int = 28,
        hidden_dims: Sequence[int] = (1200, 1200),
        num_classes: int = 0,
        init_range: float = 0.05,
        unit_output: bool = False,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.unit_output = bool(unit_output)
        self.latent_dim = as_int(latent_dim, "latent_dim", owner)
        self.channels = as_int(channels, "channels", owner)
        self.image_size = as_int(image_size, "data.image_size", owner)
        self.hidden_dims = as_int_tuple(hidden_dims, "hidden_dims", owner)
        self.num_classes = as_int(num_classes, "num_classes", owner, minimum=0)

        layers: list[nn.Module] = []
        width = self.latent_dim + self.num_classes
        for hidden in self.hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, self.channels * self.image_size * self.image_size))
        self.net = nn.Sequential(*layers)
        _uniform_init_(self, init_range)

    @torch.no_grad()
    def init_output_bias_from_marginals(self, marginals: Tensor) -> None:
        """Set the output layer's bias so that ``sigmoid(bias)`` equals each pixel's marginal mean: pylearn2's
        ``init_sigmoid_bias_from_marginals`` (goodfeli/adversarial ``mnist.yaml``), ``logit(clip(p, 1e-7,
        1 - 1e-7))``.

        Args:
            marginals: the training pixels' means in [0, 1], ``(C, S, S)`` or ``(C * S * S,)``.

        Raises:
            ValueError: if the shape does not match the output or a value lies outside [0, 1].
        """
        out = self.net[-1]
        p = torch.as_tensor(marginals, dtype=out.bias.dtype).flatten()
        if p.numel() != out.bias.numel():
            raise ValueError(f"{type(self).__name__}: pixel marginals of {p.numel()} values for an output of "
                             f"{out.bias.numel()} pixels ({self.channels} x {self.image_size} x {self.image_size})")
        if p.min() < 0 or p.max() > 1:
            raise ValueError(f"{type(self).__name__}: pixel marginals must lie in [0, 1], got "
                             f"[{float(p.min()):.3g}, {float(p.max()):.3g}]")
        out.bias.copy_(torch.logit(p.clamp(1e-7, 1 - 1e-7)).to(out.bias.device))

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Generate images: ``(B, L)`` (+ ``(B, K)``) -> ``(B, C, S, S)`` in [-1, 1] ([0, 1] with
        ``unit_output``)."""
        owner = type(self).__name__
        check_latent(z, self.latent_dim, owner)
        cond = check_cond(cond, self.num_classes, z.shape[0], owner)
        s = torch.sigmoid(self.net(append_cond_vector(z, cond)))
        s = s if self.unit_output else 2.0 * s - 1.0
        return s.view(z.shape[0], self.channels, self.image_size, self.image_size)


class MaxoutDiscriminator(nn.Module):
    """Maxout discriminator of the original GAN (Goodfellow et al. 2014, Sec. 5; pylearn2 mnist.yaml).

    ``x -> flatten -> Dropout(input_dropout) (+ cond) -> [Maxout -> Dropout(dropout)] x len(hidden_dims)
    -> Linear -> (B,)``. The paper's sigmoid output unit is left to the objective: the network returns the
    logit. Dropout follows the config (input include-probability 0.8 -> ``input_dropout=0.2``, hidden 0.5);
    input dropout applies to the pixels only, never to ``cond``. Weights ``U(-init_range, init_range)``,
    zero biases (config ``irange: .005``).

    Args:
        channels: image channels ``C``.
        image_size: square image side ``S``.
        hidden_dims: maxout units per hidden layer (paper: 240, 240).
        pieces: affine pieces per maxout unit (paper: 5).
        dropout: drop probability after each maxout layer, in [0, 1).
        input_dropout: drop probability of the input pixels, in [0, 1).
        num_classes: conditioning width ``K`` (0 = unconditional); ``cond`` is appended to the flattened
            image (Mirza & Osindero 2014, Sec. 3.2).
        init_range: half-width of the uniform weight init.
        spectral_norm: spectral normalization of every linear map, the maxout layers' and the output's
            (Miyato et al. 2018, :func:`~lightning_modules.networks.normalization.spectral_norm_`; applied
            after the init; ``model.discriminator.spectral_norm``).

    Shapes:
        ``forward(x: (B, C, S, S), cond: (B, K) | None) -> (B,)`` raw scores (logits, unbounded); ``x`` in
        [0, 1] as the paper (the module's ``unit_pixels``) or [-1, 1].

    Raises:
        ValueError: invalid constructor arguments; ``x`` not ``(B, C, S, S)``; ``cond`` given when
            ``K == 0``, missing when ``K > 0``, or not ``(B, K)``.
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 28,
        hidden_dims: Sequence[int] = (240, 240),
        pieces: int = 5,
        dropout: float = 0.5,
        input_dropout: float = 0.2,
        num_classes: int = 0,
        init_range: float = 0.005,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.channels = as_int(channels, "channels", owner)
        self.image_size = as_int(image_size, "data.image_size", owner)
        self.hidden_dims = as_int_tuple(hidden_dims, "hidden_dims", owner)
        self.pieces = as_int(pieces, "pieces", owner)
        self.num_classes = as_int(num_classes, "num_classes", owner, minimum=0)
        dropout = _check_probability(dropout, "dropout", owner)
        input_dropout = _check_probability(input_dropout, "input_dropout", owner)

        self.input_dropout = nn.Dropout(input_dropout)
        layers: list[nn.Module] = []
        width = self.channels * self.image_size * self.image_size + self.num_classes
        for hidden in self.hidden_dims:
            layers += [Maxout(width, hidden, self.pieces), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        _uniform_init_(self, init_range)
        self.spectral_norm = bool(spectral_norm)
        if self.spectral_norm:
            spectral_norm_(self)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Score images: ``(B, C, S, S)`` (+ ``(B, K)``) -> ``(B,)`` logits."""
        owner = type(self).__name__
        check_images(x, self.channels, self.image_size, owner)
        cond = check_cond(cond, self.num_classes, x.shape[0], owner)
        h = append_cond_vector(self.input_dropout(x.flatten(1)), cond)
        return self.net(h).squeeze(1)
