"""DCGAN generator and discriminator, and the up/down-sampling stacks they share with other networks.

Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks", Sec. 3 (architecture guidelines): strided convolutions instead of pooling,
fractionally strided (transposed) convolutions in the generator, BatchNorm in both networks except the
generator output and the discriminator input layer, ReLU in the generator with a tanh output, LeakyReLU
(slope 0.2) in the discriminator, no fully connected hidden layers. Sec. 4 (training details): weights
from N(0, 0.02). Fig. 1 shows the 64x64 generator: project z to 4x4x1024, then four stride-2 transposed
convolutions; the widely used reference implementation (and this one) use 512-256-128-64 hidden widths.

Geometry: every resampling layer is a 4x4 convolution with stride 2 and padding 1, which exactly halves
(conv) or doubles (transposed conv) an even resolution. An image of side ``S = base * 2**n`` (``base`` in
3..7, ``n >= 1``) goes through ``n`` such layers between ``S`` and ``base``; see :func:`dcgan_geometry`.
Hidden widths are ``base_width`` next to the image, doubling per layer towards the ``base x base`` end
(:func:`dcgan_widths`).

The builders :func:`project_block`, :func:`upsampling_stack`, :func:`downsampling_stack` are reused by
``autoencoder.AutoEncoderDiscriminator`` (EBGAN) so that all DCGAN-style networks share one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

from torch import Tensor, nn

from lightning_modules.networks.conditioning import (
    append_cond_maps,
    append_cond_vector,
    as_int,
    check_cond,
    check_images,
    check_latent,
)
from lightning_modules.networks.normalization import (
    normalization_layer,
    resolve_normalization,
    spectral_norm_,
)

MIN_BASE = 3
MAX_BASE = 7
KERNEL, STRIDE, PADDING = 4, 2, 1
LEAKY_SLOPE = 0.2


def dcgan_geometry(image_size: int, owner: str = "DCGAN") -> tuple[int, int]:
    """Return ``(base, num_scales)`` with ``image_size == base * 2**num_scales``.

    ``base`` is found by halving while the size is even and above 4: 28 -> (7, 2), 32 -> (4, 3),
    64 -> (4, 4), 8 -> (4, 1), 128 -> (4, 5), 12 -> (3, 2).

    Raises:
        ValueError: (naming ``data.image_size``) when ``base`` is outside 3..7 or no stride-2 layer fits
            (e.g. 27, 4, 9, 36 -> base 9).
    """
    image_size = as_int(image_size, "data.image_size", owner)
    base, num_scales = image_size, 0
    while base % 2 == 0 and base > 4:
        base //= 2
        num_scales += 1
    if not (MIN_BASE <= base <= MAX_BASE) or num_scales < 1:
        raise ValueError(
            f"{owner}: data.image_size={image_size} is not supported: DCGAN-style networks resample with "
            f"stride-2 4x4 convolutions, so image_size must be base * 2**n with base in "
            f"{MIN_BASE}..{MAX_BASE} and n >= 1 (e.g. 8, 16, 28, 32, 64, 128); got base={base}, n={num_scales}"
        )
    return base, num_scales


def dcgan_widths(base_width: int, num_scales: int) -> tuple[int, ...]:
    """Hidden widths from the ``base x base`` end to the image end: ``(base_width * 2**(n-1), ..., base_width)``.

    ``dcgan_widths(64, 4) == (512, 256, 128, 64)`` (the 64x64 DCGAN); ``dcgan_widths(64, 2) == (128, 64)``.
    """
    return tuple(base_width * 2**i for i in reversed(range(num_scales)))


def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN weight init (Radford et al. 2016, Sec. 4), in place on every submodule; returns ``module``.

    Conv/transposed-conv/linear weights ~ N(0, 0.02), their biases 0; BatchNorm weights ~ N(1, 0.02),
    biases 0.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def project_block(in_features: int, out_channels: int, base: int) -> nn.Sequential:
    """Project a vector to a ``base x base`` map: ``(B, F) -> (B, out_channels, base, base)``.

    A ``base x base`` transposed convolution of the ``(B, F, 1, 1)`` view (equivalent to a linear layer
    reshaped, Radford et al. 2016, Fig. 1 "project and reshape"), then BatchNorm and ReLU.
    """
    return nn.Sequential(
        nn.Unflatten(1, (in_features, 1, 1)),
        nn.ConvTranspose2d(in_features, out_channels, kernel_size=base, stride=1, padding=0, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def extra_layers(width: int, count: int, activation: Callable[[], nn.Module],
                 normalization: str = "batch") -> list[nn.Module]:
    """``count`` resolution-keeping layers ``(B, width, s, s) -> (B, width, s, s)``: 3x3 stride-1
    convolutions, each with a ``normalization`` (``"batch"``, ``"layer"`` or ``"none"``,
    :func:`~lightning_modules.networks.normalization.normalization_layer`) and an ``activation()``; the
    ``n_extra_layers`` of the WGAN reference code (martinarjovsky/WassersteinGAN ``models/dcgan.py``).
    Convolutions followed by batch norm have no bias."""
    layers: list[nn.Module] = []
    for _ in range(count):
        norm = normalization_layer(normalization, width)
        layers.append(nn.Conv2d(width, width, 3, 1, 1, bias=normalization != "batch"))
        layers += [norm] if norm is not None else []
        layers.append(activation())
    return layers


def upsampling_stack(widths: Sequence[int], out_channels: int, n_extra_layers: int = 0) -> nn.Sequential:
    """Stride-2 transposed-conv stack: ``(B, widths[0], b, b) -> (B, out_channels, b * 2**n, b * 2**n)``.

    ``n = len(widths)`` layers: ``widths[i] -> widths[i+1]`` with BatchNorm + ReLU, then
    ``n_extra_layers`` 3x3 layers at ``widths[-1]`` (:func:`extra_layers`, the WGAN reference code's
    option), then ``widths[-1] -> out_channels`` with tanh (no BatchNorm on the output, Radford et al.
    2016, Sec. 3). Output values in [-1, 1].
    """
    layers: list[nn.Module] = []
    for w_in, w_out in pairwise(widths):
        layers += [
            nn.ConvTranspose2d(w_in, w_out, KERNEL, STRIDE, PADDING, bias=False),
            nn.BatchNorm2d(w_out),
            nn.ReLU(),
        ]
    layers += extra_layers(widths[-1], n_extra_layers, nn.ReLU)
    layers += [nn.ConvTranspose2d(widths[-1], out_channels, KERNEL, STRIDE, PADDING), nn.Tanh()]
    return nn.Sequential(*layers)


def downsampling_stack(in_channels: int, widths: Sequence[int], normalization: str = "batch",
                       n_extra_layers: int = 0) -> nn.Sequential:
    """Stride-2 conv stack: ``(B, in_channels, S, S) -> (B, widths[-1], S / 2**n, S / 2**n)``.

    ``n = len(widths)`` layers ``-> widths[i]``, each conv + LeakyReLU(0.2); a ``normalization`` on every
    layer but the first: ``"batch"`` (Radford et al. 2016, Sec. 3), ``"layer"`` or ``"none"`` (a critic for
    the WGAN gradient penalty, Gulrajani et al. 2017, Sec. 4;
    :func:`~lightning_modules.networks.normalization.normalization_layer`). Convs followed by batch norm
    have no bias. ``n_extra_layers`` 3x3 layers at ``widths[0]`` follow the first (:func:`extra_layers`,
    with the same normalization, as the WGAN reference code's critic).
    """
    layers: list[nn.Module] = []
    w_in = in_channels
    for i, w_out in enumerate(widths):
        norm = normalization_layer(normalization, w_out) if i > 0 else None
        batch_norm = isinstance(norm, nn.BatchNorm2d)
        layers.append(nn.Conv2d(w_in, w_out, KERNEL, STRIDE, PADDING, bias=not batch_norm))
        layers += [norm] if norm is not None else []
        layers.append(nn.LeakyReLU(LEAKY_SLOPE))
        if i == 0:
            layers += extra_layers(w_out, n_extra_layers, lambda: nn.LeakyReLU(LEAKY_SLOPE), normalization)
        w_in = w_out
    return nn.Sequential(*layers)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016, Sec. 3 and Fig. 1).

    ``z (+ cond) -> project to (widths[0], base, base) -> n stride-2 transposed convs -> tanh``, with
    ``(base, n) = dcgan_geometry(image_size)`` and ``widths = dcgan_widths(base_width, n)``:
    28x28 -> 7x7x128, 14x14x64, 28x28xC; 64x64 -> 4x4x512, 8x8x256, 16x16x128, 32x32x64, 64x64xC.
    BatchNorm + ReLU on every layer but the tanh output; DCGAN init (:func:`dcgan_init_`).

    Args:
        latent_dim: width ``L`` of ``z``.
        channels: image channels ``C`` (1 or 3).
        image_size: square image side ``S`` (8, 16, 28, 32, 64, 128, ...; see :func:`dcgan_geometry`).
        base_width: width of the last hidden layer (next to the image); doubles towards ``z``.
        num_classes: conditioning width ``K`` (0 = unconditional); ``cond`` is appended to ``z``.
        n_extra_layers: 3x3 layers before the output layer, at its input's resolution (the WGAN reference
            code's ``n_extra_layers``; 0 is the paper's network).

    Shapes:
        ``forward(z: (B, L), cond: (B, K) | None) -> (B, C, S, S)`` with values in [-1, 1].

    Attributes:
        project: :func:`project_block`; ``upsample``: :func:`upsampling_stack`.

    Raises:
        ValueError: unsupported ``data.image_size`` or invalid arguments at construction; ``z`` not
            ``(B, L)``; ``cond`` given when ``K == 0``, missing when ``K > 0``, or not ``(B, K)``.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 1,
        image_size: int = 28,
        base_width: int = 64,
        num_classes: int = 0,
        n_extra_layers: int = 0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.n_extra_layers = as_int(n_extra_layers, "n_extra_layers", owner, minimum=0)
        self.latent_dim = as_int(latent_dim, "latent_dim", owner)
        self.channels = as_int(channels, "channels", owner)
        self.image_size = as_int(image_size, "data.image_size", owner)
        self.base_width = as_int(base_width, "base_width", owner)
        self.num_classes = as_int(num_classes, "num_classes", owner, minimum=0)
        self.base, self.num_scales = dcgan_geometry(self.image_size, owner)
        self.widths = dcgan_widths(self.base_width, self.num_scales)

        self.project = project_block(self.latent_dim + self.num_classes, self.widths[0], self.base)
        self.upsample = upsampling_stack(self.widths, self.channels, self.n_extra_layers)
        dcgan_init_(self)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Generate images: ``(B, L)`` (+ ``(B, K)``) -> ``(B, C, S, S)`` in [-1, 1]."""
        owner = type(self).__name__
        check_latent(z, self.latent_dim, owner)
        cond = check_cond(cond, self.num_classes, z.shape[0], owner)
        return self.upsample(self.project(append_cond_vector(z, cond)))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator / critic (Radford et al. 2016, Sec. 3), the mirror of :class:`DCGANGenerator`.

    ``x (+ cond maps) -> n stride-2 convs (widths base_width, 2*base_width, ...) -> base x base conv -> (B,)``.
    LeakyReLU(0.2) everywhere, BatchNorm on all but the first layer (``normalization="batch"``, the paper);
    layer norm (``"layer"``) or none (``"none"``) for the WGAN-GP critic of Gulrajani et al. 2017, Sec. 4,
    where batch-coupled normalisation is avoided. The final ``base x base`` convolution (a linear layer over
    the last feature map) outputs raw scores: no sigmoid, the objective applies it. A conditional
    discriminator receives ``cond`` as ``K`` constant input channels. DCGAN init (:func:`dcgan_init_`), then
    with ``spectral_norm=True`` spectral normalization of every convolution, the head's included (Miyato et
    al. 2018, :func:`~lightning_modules.networks.normalization.spectral_norm_`).

    Args:
        channels: image channels ``C``.
        image_size: square image side ``S`` (see :func:`dcgan_geometry`).
        base_width: width of the first conv layer; doubles per layer.
        num_classes: conditioning width ``K`` (0 = unconditional).
        batch_norm: the older flag for ``normalization`` (``True``: ``"batch"``, ``False``: ``"none"``), kept
            for run configs and checkpoints that set it; ``None``: ``normalization`` decides.
        n_extra_layers: 3x3 layers after the first, at its resolution (the WGAN reference code's
            ``n_extra_layers``; 0 is the paper's network).
        normalization: the hidden layers' normalization, ``"batch"`` (the paper), ``"layer"`` or ``"none"``
            (``model.discriminator.normalization``); ``None``: from ``batch_norm``, else ``"batch"``.
        spectral_norm: spectral normalization of every convolution (``model.discriminator.spectral_norm``).

    Shapes:
        ``forward(x: (B, C, S, S) in [-1, 1], cond: (B, K) | None) -> (B,)`` logits / critic values.

    Attributes:
        downsample: :func:`downsampling_stack`; ``head``: the final ``base x base`` conv to one channel.

    Raises:
        ValueError: unsupported ``data.image_size`` or invalid arguments at construction (an unknown
            ``normalization``, or one that ``batch_norm`` contradicts); ``x`` not ``(B, C, S, S)``; ``cond``
            given when ``K == 0``, missing when ``K > 0``, or not ``(B, K)``.
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 28,
        base_width: int = 64,
        num_classes: int = 0,
        batch_norm: bool | None = None,
        n_extra_layers: int = 0,
        normalization: str | None = None,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.n_extra_layers = as_int(n_extra_layers, "n_extra_layers", owner, minimum=0)
        self.channels = as_int(channels, "channels", owner)
        self.image_size = as_int(image_size, "data.image_size", owner)
        self.base_width = as_int(base_width, "base_width", owner)
        self.num_classes = as_int(num_classes, "num_classes", owner, minimum=0)
        self.normalization = resolve_normalization(batch_norm, normalization, owner)
        self.batch_norm = self.normalization == "batch"
        self.spectral_norm = bool(spectral_norm)
        self.base, self.num_scales = dcgan_geometry(self.image_size, owner)
        self.widths = tuple(reversed(dcgan_widths(self.base_width, self.num_scales)))

        self.downsample = downsampling_stack(self.channels + self.num_classes, self.widths,
                                             self.normalization, self.n_extra_layers)
        self.head = nn.Conv2d(self.widths[-1], 1, kernel_size=self.base, stride=1, padding=0)
        dcgan_init_(self)
        if self.spectral_norm:
            spectral_norm_(self)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Score images: ``(B, C, S, S)`` (+ ``(B, K)``) -> ``(B,)`` raw scores."""
        owner = type(self).__name__
        check_images(x, self.channels, self.image_size, owner)
        cond = check_cond(cond, self.num_classes, x.shape[0], owner)
        return self.head(self.downsample(append_cond_maps(x, cond))).flatten()
