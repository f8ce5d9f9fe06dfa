"""What constrains a discriminator: its hidden layers' normalization and spectral normalization.

- :func:`normalization_layer`: batch norm (Ioffe & Szegedy 2015; DCGAN's discriminator, Radford et al.
  2016), layer norm (Ba et al. 2016; the WGAN-GP critic's drop-in replacement for batch norm, Gulrajani et
  al. 2017, Sec. 4, as their code's ``tflib/ops/layernorm.py``: statistics over ``(C, H, W)`` per sample,
  a scale and offset per channel) or none.
- :func:`spectral_norm_`: spectral normalization (Miyato et al. 2018, "Spectral Normalization for
  Generative Adversarial Networks", Sec. 2.1 and Algorithm 1) of every convolution and linear layer of a
  network, the one helper every discriminator uses (DCGAN, maxout MLP, PatchGAN).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrizations, parametrize

#: ``normalization`` values of a discriminator's hidden layers
NORMALIZATIONS = ("batch", "layer", "none")
#: the layers whose weight :func:`spectral_norm_` normalizes
SPECTRAL_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                   nn.ConvTranspose3d, nn.Linear)


def resolve_normalization(batch_norm: bool | None, normalization: str | None, owner: str) -> str:
    """The hidden layers' normalization, one of :data:`NORMALIZATIONS`, from a network's two arguments:
    ``normalization`` (``model.discriminator.normalization``) and the older ``batch_norm`` flag (``True``:
    ``"batch"``, ``False``: ``"none"``), which run configs and checkpoints from before ``normalization``
    still carry. Neither given: ``"batch"``.

    Raises:
        ValueError: an unknown ``normalization``, or a ``batch_norm`` that contradicts it (``batch_norm=True``
            with ``"layer"`` or ``"none"``; ``batch_norm=False`` with ``"batch"``).
    """
    if normalization is None:
        return "none" if batch_norm is False else "batch"
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"{owner}: model.discriminator.normalization must be one of {NORMALIZATIONS}, "
                         f"got {normalization!r}")
    if batch_norm is not None and bool(batch_norm) != (normalization == "batch"):
        raise ValueError(f"{owner}: model.discriminator.batch_norm={batch_norm} contradicts "
                         f"model.discriminator.normalization={normalization!r}; give normalization only")
    return normalization


def normalization_layer(kind: str, width: int) -> nn.Module | None:
    """The normalization of a ``(B, width, H, W)`` activation: ``nn.BatchNorm2d(width)`` for ``"batch"``,
    ``nn.GroupNorm(1, width)`` for ``"layer"`` (mean and variance over ``(C, H, W)`` of each sample, eps
    1e-5, a scale and offset per channel starting at 1 and 0: Gulrajani et al.'s ``Layernorm(name,
    [1, 2, 3], inputs)``), ``None`` for ``"none"``.

    Raises:
        ValueError: ``kind`` is not one of :data:`NORMALIZATIONS`.
    """
    if kind == "batch":
        return nn.BatchNorm2d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width)
    if kind == "none":
        return None
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}")


def spectral_norm_(network: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectral normalization of every convolution and linear layer of ``network``, in place; returns it.

    Each layer's weight ``W`` (reshaped to ``(out, -1)``) is used as ``W / sigma(W)``, ``sigma`` its largest
    singular value estimated by power iteration with a persistent vector ``u`` (Miyato et al. 2018,
    Sec. 2.1, eq. 8 and Algorithm 1: one iteration per forward pass in training mode; fifteen at
    registration), so each layer is 1-Lipschitz and the network's Lipschitz constant is bounded by its
    activations' (1 for LeakyReLU and ReLU). It is :func:`torch.nn.utils.parametrizations.spectral_norm`:
    the state dict holds tensors only (``parametrizations.weight.original`` and the power iteration's
    ``_u``, ``_v``), so checkpoints load with ``weights_only=True``, and ``copy.deepcopy`` works. Call it
    after the network's weight init: the init acts on the unnormalized weight. Layers already parametrized
    are left as they are.

    Args:
        network: any module; its :data:`SPECTRAL_LAYERS` are normalized.
        n_power_iterations: power iterations per forward pass in training mode (1 in the paper).

    Raises:
        ValueError: if ``network`` has no convolution or linear layer, or ``n_power_iterations < 1``.
    """
    if n_power_iterations < 1:
        raise ValueError(f"spectral normalization needs n_power_iterations >= 1, got {n_power_iterations}")
    layers = [m for m in network.modules() if isinstance(m, SPECTRAL_LAYERS)]
    if not layers:
        raise ValueError(f"{type(network).__name__}: spectral normalization found no convolution or linear "
                         "layer")
    for layer in layers:
        if not parametrize.is_parametrized(layer, "weight"):
            parametrizations.spectral_norm(layer, n_power_iterations=n_power_iterations)
    return network
