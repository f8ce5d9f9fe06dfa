"""PatchGAN discriminator of pix2pix: a fully convolutional classifier of N x N image patches.

Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
Sec. 3.2.2 ("Markovian discriminator (PatchGAN)") and Appendix 6.1.2 (the 70x70 discriminator
``C64-C128-C256-C512`` followed by a 1-channel convolution); used as the colorization discriminator by
Fabbri 2017, "A Comparative Study of Generative Adversarial Networks Towards Automatic Image
Colorization" (Sec. 4), where it judges ``(L, ab)`` pairs, i.e. it is conditioned on the lightness ``L``.

Layer specs (all 4x4 kernels, padding 1): ``n_layers`` stride-2 convolutions of widths
``min(base_width * 2**i, 8 * base_width)``, one stride-1 convolution of width
``min(base_width * 2**n_layers, 8 * base_width)``, and a stride-1 convolution to one channel. Every
output value scores one input patch of side :meth:`PatchGANDiscriminator.receptive_field` (70 for
``n_layers=3``), neighbouring outputs are ``2**n_layers`` pixels apart.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int
from lightning_modules.networks.dcgan import KERNEL, LEAKY_SLOPE, PADDING, dcgan_init_, downsampling_stack
from lightning_modules.networks.normalization import spectral_norm_

MAX_WIDTH_FACTOR = 8  # widths stop doubling at 8 * base_width (512 for base_width 64)


def patchgan_layer_specs(n_layers: int) -> tuple[tuple[int, int, int], ...]:
    """``(kernel, stride, padding)`` of every convolution of a PatchGAN with ``n_layers`` stride-2 layers.

    ``n_layers`` times ``(4, 2, 1)``, then ``(4, 1, 1)`` twice (the last hidden layer and the 1-channel
    output layer). Isola et al. 2017, Appendix 6.1.2.
    """
    n_layers = as_int(n_layers, "n_layers", "PatchGANDiscriminator")
    return ((KERNEL, 2, PADDING),) * n_layers + ((KERNEL, 1, PADDING),) * 2


class PatchGANDiscriminator(nn.Module):
    """Markovian (PatchGAN) discriminator / critic of pix2pix (Isola et al. 2017, Sec. 3.2.2, App. 6.1.2).

    ``x (+ cond) -> C64 (no BatchNorm) -> C128 -> C256 (stride 2) -> C512 (stride 1) -> 1-channel conv``
    for ``n_layers=3``, all 4x4 convs with LeakyReLU(0.2); BatchNorm on every hidden layer but the first
    (none with ``batch_norm=False``, for a WGAN critic). The output is a map of raw scores (no sigmoid, the
    objective applies it), one per overlapping ``receptive_field(n_layers)``-sided patch (70x70 for
    ``n_layers=3``): 256x256 -> 30x30, 70x70 -> 6x6, 64x64 -> 6x6. DCGAN init
    (:func:`~lightning_modules.networks.dcgan.dcgan_init_`), then with ``spectral_norm=True`` spectral
    normalization of every convolution (Miyato et al. 2018,
    :func:`~lightning_modules.networks.normalization.spectral_norm_`).

    Conditioning (colorization): the discriminator judges an image together with its condition, so
    ``forward(ab, cond=L)`` concatenates ``L`` ``(B, C_c, H, W)`` on channels (condition last) before the
    first layer; ``in_channels`` is the total, ``C + C_c`` (3 for ab + L). ``forward(x)`` with
    ``cond=None`` takes an already concatenated ``(B, in_channels, H, W)`` tensor.

    Args:
        in_channels: channels of the (concatenated) input (3 = L + ab in colorization).
        base_width: width of the first layer; doubles per layer up to ``8 * base_width``.
        n_layers: number of stride-2 layers (3: 70x70 patches, 1: 16x16 "PixelGAN"-like, 5: 286x286).
        batch_norm: BatchNorm in the hidden layers (default True, as in the paper).
        spectral_norm: spectral normalization of every convolution (``model.discriminator.spectral_norm``).

    Shapes:
        ``forward(x: (B, C, H, W), cond: (B, C_c, H, W) | None) -> (B, 1, H', W')`` with ``C + C_c ==
        in_channels`` and ``H' = output_size(H)``, ``W' = output_size(W)``; inputs in [-1, 1].

    Attributes:
        features: the hidden layers (conv, [BatchNorm], LeakyReLU); ``head``: the 1-channel conv.

    Raises:
        ValueError: invalid arguments at construction; in ``forward``, ``x``/``cond`` not 4-D, mismatched
            batch or spatial sizes, channels not adding up to ``in_channels``, or an image too small for
            one output score.
    """

    def __init__(
        self, in_channels: int = 3, base_width: int = 64, n_layers: int = 3, batch_norm: bool = True,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_channels = as_int(in_channels, "in_channels", owner)
        self.base_width = as_int(base_width, "base_width", owner)
        self.n_layers = as_int(n_layers, "n_layers", owner)
        self.batch_norm = bool(batch_norm)
        self.spectral_norm = bool(spectral_norm)
        self.specs = patchgan_layer_specs(self.n_layers)
        widths = [
            min(self.base_width * 2**i, MAX_WIDTH_FACTOR * self.base_width) for i in range(self.n_layers + 1)
        ]
        self.widths = tuple(widths)

        normalization = "batch" if self.batch_norm else "none"
        strided = downsampling_stack(self.in_channels, self.widths[:-1], normalization)
        kernel, stride, padding = self.specs[-2]
        last_hidden: list[nn.Module] = [
            nn.Conv2d(self.widths[-2], self.widths[-1], kernel, stride, padding, bias=not self.batch_norm)
        ]
        if self.batch_norm:
            last_hidden.append(nn.BatchNorm2d(self.widths[-1]))
        last_hidden.append(nn.LeakyReLU(LEAKY_SLOPE))
        self.features = nn.Sequential(*strided, *last_hidden)
        kernel, stride, padding = self.specs[-1]
        self.head = nn.Conv2d(self.widths[-1], 1, kernel, stride, padding)
        dcgan_init_(self)
        if self.spectral_norm:
            spectral_norm_(self)

    @staticmethod
    def receptive_field(n_layers: int = 3) -> int:
        """Side of the input patch one output score sees, from :func:`patchgan_layer_specs`.

        Walks the layers from the output back: ``r <- r * stride + (kernel - stride)``, starting at
        ``r = 1``; 70 for ``n_layers=3`` (Isola et al. 2017, Sec. 3.2.2), 16 for 1, 34 for 2, 286 for 5.
        """
        field = 1
        for kernel, stride, _ in reversed(patchgan_layer_specs(n_layers)):
            field = field * stride + (kernel - stride)
        return field

    def output_size(self, size: int) -> int:
        """Side of the score map for an input side ``size`` (256 -> 30, 70 -> 6); <= 0 means too small."""
        for kernel, stride, padding in self.specs:
            size = (size + 2 * padding - kernel) // stride + 1
            if size <= 0:
                return 0
        return size

    def patch_window(self, index: int) -> tuple[int, int]:
        """Input rows (or columns) ``[start, stop)`` seen by output row (or column) ``index``.

        ``start = index * 2**n_layers - offset``, ``stop = start + receptive_field``; the window may reach
        into the zero padding (``start < 0`` or ``stop > H``).
        """
        start, jump = 0, 1
        for _, stride, padding in self.specs:
            start -= padding * jump
            jump *= stride
        return index * jump + start, index * jump + start + self.receptive_field(self.n_layers)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Score patches: ``(B, C, H, W)`` (+ ``cond`` ``(B, C_c, H, W)``) -> ``(B, 1, H', W')`` raw scores.

        Raises:
            ValueError: see the class docstring.
        """
        owner = type(self).__name__
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
            raise ValueError(f"{owner}: expected images of shape (B, C, H, W), got {shape}")
        if cond is not None:
            if (
                not isinstance(cond, Tensor)
                or cond.dim() != 4
                or cond.shape[0] != x.shape[0]
                or (cond.shape[2:] != x.shape[2:])
            ):
                shape = tuple(cond.shape) if isinstance(cond, Tensor) else type(cond)
                raise ValueError(
                    f"{owner}: expected cond of shape ({x.shape[0]}, C_c, {x.shape[2]}, {x.shape[3]}) "
                    f"(same batch and spatial size as x), got {shape}"
                )
            x = torch.cat([x, cond.to(dtype=x.dtype)], dim=1)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{owner}: input channels (x + cond) = {x.shape[1]} but the discriminator was built with "
                f"in_channels={self.in_channels} (colorization: 2 ab + 1 L = 3)"
            )
        height, width = x.shape[2], x.shape[3]
        if self.output_size(height) < 1 or self.output_size(width) < 1:
            raise ValueError(
                f"{owner}: image of size {height}x{width} is too small for a PatchGAN with "
                f"n_layers={self.n_layers}: each side must give at least one score "
                f"(receptive field {self.receptive_field(self.n_layers)}x"
                f"{self.receptive_field(self.n_layers)})"
            )
        return self.head(self.features(x))
