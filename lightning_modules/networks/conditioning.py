"""Input checks and class/attribute conditioning shared by every network in ``networks/``.

All GAN-family networks take ``num_classes: int = 0``. With ``num_classes > 0`` their ``forward`` takes a
conditioning tensor ``cond`` of shape ``(B, num_classes)`` (a one-hot class or a multi-hot attribute
vector, float); with ``num_classes == 0`` ``cond`` must be ``None``. The conditional GAN feeds ``y`` to
both networks (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets", Sec. 3.2): fully
connected networks append it to their input vector (:func:`append_cond_vector`), convolutional ones
broadcast it to constant ``(B, K, H, W)`` maps and append them as extra channels
(:func:`append_cond_maps`).

The checks raise ``ValueError`` with a message that names the network, the expected shape and what was
given, so a mis-wired config fails at the first batch with a readable error.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def as_int(value: object, name: str, owner: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int >= minimum`` (accepts Hydra/YAML ints).

    Raises:
        ValueError: if ``value`` is not an integer (bools rejected) or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_integer = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: {name} must be an integer, got {value!r}") from None
        if as_integer != value:
            raise ValueError(f"{owner}: {name} must be an integer, got {value!r}")
        value = as_integer
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value}")
    return int(value)


def as_int_tuple(values: Iterable[object], name: str, owner: str) -> tuple[int, ...]:
    """Return a non-empty tuple of positive ints from a list/tuple (or Hydra ``ListConfig``).

    Raises:
        TypeError: if ``values`` is not a list/tuple-like iterable.
        ValueError: if ``values`` is empty or holds a non-positive/non-integer entry.
    """
    if isinstance(values, (int, str)) or not isinstance(values, Iterable):
        raise TypeError(f"{owner}: {name} must be a list of positive integers, got {values!r}")
    result = tuple(as_int(v, f"{name}[{i}]", owner) for i, v in enumerate(values))
    if not result:
        raise ValueError(f"{owner}: {name} must not be empty")
    return result


def check_cond(
    cond: Tensor | None,
    num_classes: int,
    batch_size: int,
    owner: str,
    name: str = "cond",
    key: str = "num_classes",
    meaning: str = "one-hot class or multi-hot attributes",
) -> Tensor | None:
    """Validate a conditioning vector against the network's conditioning width.

    Shared by the GAN-family networks (``cond``, width ``num_classes``) and the PixelCNNs (``h``, width
    ``cond_dim``: :func:`lightning_modules.pixelcnn.conditioning.check_h`).

    Args:
        cond: ``(B, num_classes)`` float (one-hot or multi-hot) when ``num_classes > 0``; ``None`` otherwise.
        num_classes: the network's conditioning width ``K`` (0 = unconditional).
        batch_size: ``B`` of the main input; ``cond`` must match it.
        owner: the network's class name, used in error messages.
        name: the argument's name in error messages (``cond``, the PixelCNNs' ``h``).
        key: the width's config name in error messages (``num_classes``, the PixelCNNs' ``cond_dim``).
        meaning: what the vector holds, for the error messages.

    Returns:
        ``None`` for an unconditional network, else ``cond`` as a floating tensor (integer one-hot
        tensors are converted to ``float32``).

    Raises:
        TypeError: ``cond`` is neither ``None`` nor a tensor (conditional network).
        ValueError: ``cond`` given to an unconditional network, missing for a conditional one, or not
            of shape ``(batch_size, num_classes)``; the message names ``name`` and ``key``.
    """
    if num_classes == 0:
        if cond is not None:
            shape = tuple(cond.shape) if isinstance(cond, Tensor) else type(cond)
            raise ValueError(
                f"{owner} has {key}=0 (unconditional) but got {name} of shape {shape}; "
                f"pass {name}=None or build the network with {key} > 0"
            )
        return None
    if cond is None:
        raise ValueError(
            f"{owner} is conditional ({key}={num_classes}) and needs {name} of shape "
            f"(B, {num_classes}) ({meaning}), got None"
        )
    if not isinstance(cond, Tensor):
        raise TypeError(
            f"{owner}: {name} must be a torch.Tensor of shape (B, {num_classes}), got {type(cond)}"
        )
    if cond.dim() != 2 or cond.shape[0] != batch_size or cond.shape[1] != num_classes:
        raise ValueError(
            f"{owner}: expected {name} of shape ({batch_size}, {num_classes}) "
            f"(batch size, {key}; {meaning}, float), got {tuple(cond.shape)}"
            + (
                f"; class indices must be one-hot encoded first, e.g. F.one_hot(y, {key}).float()"
                if cond.dim() == 1
                else ""
            )
        )
    if not torch.is_floating_point(cond):
        cond = cond.float()
    return cond


def check_latent(z: Tensor, latent_dim: int, owner: str) -> None:
    """Check that ``z`` is a ``(B, latent_dim)`` tensor.

    Raises:
        ValueError: if ``z`` has another shape.
    """
    if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != latent_dim:
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z)
        raise ValueError(
            f"{owner}: expected z of shape (B, {latent_dim}) (latent_dim={latent_dim}), got {shape}"
        )


def check_images(x: Tensor, channels: int, image_size: int, owner: str) -> None:
    """Check that ``x`` is a ``(B, channels, image_size, image_size)`` tensor.

    Raises:
        ValueError: if ``x`` has another shape.
    """
    expected = (channels, image_size, image_size)
    if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
        raise ValueError(
            f"{owner}: expected images of shape (B, {channels}, {image_size}, {image_size}) "
            f"(data.channels={channels}, data.image_size={image_size}), got {shape}"
        )


def append_cond_vector(x: Tensor, cond: Tensor | None) -> Tensor:
    """Concatenate ``cond`` to a batch of vectors.

    Args:
        x: ``(B, D)``.
        cond: ``(B, K)`` or ``None``.

    Returns:
        ``(B, D + K)`` (``x`` itself when ``cond`` is ``None``).
    """
    if cond is None:
        return x
    return torch.cat([x, cond.to(dtype=x.dtype)], dim=1)


def cond_maps(cond: Tensor, height: int, width: int) -> Tensor:
    """Broadcast ``cond`` ``(B, K)`` to constant feature maps ``(B, K, height, width)``."""
    return cond[:, :, None, None].expand(-1, -1, height, width)


def append_cond_maps(x: Tensor, cond: Tensor | None) -> Tensor:
    """Append ``cond`` as constant channels to a batch of feature maps.

    Args:
        x: ``(B, C, H, W)``.
        cond: ``(B, K)`` or ``None``.

    Returns:
        ``(B, C + K, H, W)`` where channel ``C + k`` is ``cond[:, k]`` everywhere (``x`` itself when
        ``cond`` is ``None``).
    """
    if cond is None:
        return x
    return torch.cat([x, cond_maps(cond.to(dtype=x.dtype), x.shape[2], x.shape[3])], dim=1)
