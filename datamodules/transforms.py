"""Image transforms shared by every DataModule: uint8 <-> [-1, 1], channel conversion, crop and resize.

All functions are pure torch (no torchvision). Images are ``(N, C, H, W)`` or ``(C, H, W)`` tensors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from utils.errors import InputError

# ITU-R BT.601 luma weights, the ones Pillow's ``convert("L")`` uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels ``[0, 255]`` (any shape) to a new float32 tensor in ``[-1, 1]`` (``x / 127.5 - 1``).

    On the CPU this runs in NumPy on one thread: a DataLoader's main process calls it for every batch,
    and torch's intra-op threads would wait on cores the loader's workers occupy. The result is the same
    bit for bit as torch's ``x.float() / 127.5 - 1`` (float32 division is correctly rounded in both).

    Raises:
        TypeError: if ``images`` is not a uint8 tensor.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"to_signed expects uint8 pixels in [0, 255], got dtype {images.dtype}")
    if images.device.type != "cpu":
        return images.float().div_(127.5).sub_(1.0)
    out = np.empty(tuple(images.shape), dtype=np.float32)
    np.divide(images.numpy(), np.float32(127.5), out=out, dtype=np.float32)
    np.subtract(out, np.float32(1.0), out=out)
    return torch.from_numpy(out)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Map float images in ``[-1, 1]`` to ``[0, 1]`` (values outside are clamped)."""
    return images.add(1.0).div(2.0).clamp(0.0, 1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Map float images in ``[-1, 1]`` to uint8 ``[0, 255]`` (rounded, clamped)."""
    return to_unit(images).mul(255.0).round().to(torch.uint8)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert ``(N, C, H, W)`` images to ``channels`` channels (1 or 3).

    Gray to RGB repeats the channel; RGB to gray takes the BT.601 luma. Works on uint8 or float.

    Raises:
        utils.errors.InputError: if ``channels`` (``data.channels``) is not 1 or 3.
        ValueError: if the input has neither 1 nor 3 channels.
    """
    if channels not in (1, 3):
        raise InputError(f"data.channels must be 1 or 3, got {channels}")
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        luma = (images.float() * _LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
        return luma.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else luma
    raise ValueError(f"cannot convert images with {have} channels to {channels}; expected 1 or 3 channels")


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """Crop the central ``size x size`` square of ``(N, C, H, W)`` or ``(C, H, W)`` images.

    Raises:
        ValueError: if the image is smaller than ``size`` on either side.
    """
    h, w = images.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"cannot centre-crop {size}x{size} from an image of {h}x{w}")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` images to ``size x size`` (bilinear with antialiasing); keeps the dtype.

    A no-op when the images already have that size.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if images.dtype == torch.uint8:
        return out.round().clamp(0, 255).to(torch.uint8)
    return out


def prepare_uint8(images: torch.Tensor, image_size: int, channels: int) -> torch.Tensor:
    """Square, resize and convert uint8 ``(N, C, H, W)`` images: centre crop to the short side,
    resize to ``image_size``, convert to ``channels``. Returns uint8 ``(N, channels, image_size, image_size)``.
    """
    short = min(images.shape[-2:])
    images = center_crop(images, short)
    return convert_channels(resize(images, image_size), channels)
