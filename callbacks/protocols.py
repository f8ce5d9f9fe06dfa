"""Which callbacks apply to which LightningModule: the protocols, in one place.

Every callback of ``conf/callbacks/default.yaml`` is configured for every run; each acts only on a module
that has what it needs, and skips any other (a colorizer gets no FID, a GAN no L|colour grid). What a
callback needs is one of the protocols below (``typing.Protocol`` classes, for readers and type checkers),
and a callback asks :func:`applies` whether a module has every member of one; a new method gets a callback
by offering the protocol's members, nothing else to register. A callback reads nothing else off the module
(no ``hparams`` keys): only the members of the protocol it checked, and what every ``LightningModule`` has.
A skip is said once, at INFO on the ``genforge`` logger (rank 0 only), naming the callback, the module's
class and the members it lacks, e.g. ``SampleGrid skips MyVAE: it has no fixed_z, generate
(callbacks.protocols.FixedNoise)``. (:func:`offers` uses ``hasattr``, not ``isinstance`` of a
runtime-checkable protocol: from Python 3.12 that looks attributes up statically and would miss an
``nn.Module``'s registered buffers such as ``fixed_z``.)

=========================  ==============================================================  =================================================  ==============================
protocol                   members                                                         callbacks                                          modules
=========================  ==============================================================  =================================================  ==============================
:class:`FixedNoise`        ``fixed_z``, ``fixed_labels``, ``generate``, ``label_classes``  ``samples`` (SampleGrid)                           GAN family, PixelCNN
:class:`LatentPrior`       FixedNoise + ``noise``, ``random_labels``                       ``interpolation``                                  GAN family
:class:`Embeddings`        ``embedding_pairs``, ``generate_from_embeddings``, ``fixed_z``  ``embedding_interpolation``                        PixelCNN
:class:`Samples`           ``sample``, ``sample_metrics``, ``has_ema``                     ``evaluation`` (FID/KID), ``parzen``               GAN family (PixelCNN opts out)
:class:`GeneratorSteps`    ``generator_steps``, ``max_generator_steps``                    sample grids' captions, ``progress_bar``           GAN family, colorizers
:class:`Colorizer`         ``colorize_rgb``                                                ``colorization``                                   colorizers
:class:`Traversable`       ``traverse``, ``factor_latent``                                 ``traversal``                                      DC-IGN
:class:`ScatteredFactors`  ``scatter``, ``factor_latent``                                  ``factor_scatter``                                 DC-IGN
:class:`ParameterCount`    ``num_parameters``                                              ``gmm_baseline``                                   Deep GMM
:class:`SplitDatasets`     ``dataset(split)`` (of the datamodule)                          ``colorization``, ``traversal``, ``gmm_baseline``  every datamodule
=========================  ==============================================================  =================================================  ==============================

Checkpointing, the progress bar, the model summary, the divergence guard and the training monitor apply to
every module.
``tests/callbacks/test_protocols.py`` checks this table against the presets in ``conf/model/``.
"""

from __future__ import annotations

import logging
import weakref
from functools import cache
from typing import Generic, Protocol

import torch
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

log = logging.getLogger("genforge")


class FixedNoise(Protocol):
    """Images ``generate(z, labels)`` ``(B, C, H, W)`` in ``[-1, 1]`` from the fixed noise ``fixed_z``
    ``(N, ...)`` and labels ``fixed_labels`` ``(N,)`` the sample grids show every epoch; ``label_classes``:
    the classes ``generate`` is conditioned on (``fixed_labels`` cycles through them; the grid gets one
    column each), 0 for an unconditional model (its labels are ignored)."""

    fixed_z: Tensor
    fixed_labels: Tensor
    label_classes: int

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor: ...


class LatentPrior(FixedNoise, Protocol):
    """A latent prior to interpolate in: ``noise(n, generator)`` ``(n, ...)`` like ``fixed_z``, and
    ``random_labels(n, generator)`` ``(n,)`` (``None`` when unconditional)."""

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...

    def random_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None: ...


class Embeddings(Protocol):
    """Conditioning embeddings ``h`` to interpolate between: ``embedding_pairs(rows, generator)`` gives
    ``(start, end)`` ``(rows, m)`` or ``None`` (none yet), ``generate_from_embeddings(z, h)`` the images
    ``(B, C, H, W)`` in ``[-1, 1]`` for noise like ``fixed_z``."""

    fixed_z: Tensor

    def embedding_pairs(self, rows: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor] | None: ...

    def generate_from_embeddings(self, z: Tensor, h: Tensor | None) -> Tensor: ...


class Samples(Protocol):
    """Fresh samples ``sample(num_samples, labels, generator=...)`` ``(N, C, H, W)`` in ``[-1, 1]`` for the
    sample-based metrics (FID/KID, Parzen); ``sample_metrics = False`` opts out (an autoregressive model,
    whose sampling is sequential and whose measure is the likelihood); ``has_ema``: the samples come from
    a moving average of the generator (the trained one is then measured too)."""

    sample_metrics: bool
    has_ema: bool

    def sample(self, num_samples: int, labels: Tensor | None = None, **kwargs) -> Tensor: ...


class GeneratorSteps(Protocol):
    """``generator_steps``: generator iterations so far (the WGAN paper's unit, Arjovsky et al. 2017,
    Fig. 3), shown in the sample grids' captions; ``max_generator_steps``: the budget in them (``None``:
    the trainer's epochs or steps), counted against by the progress bar."""

    generator_steps: int
    max_generator_steps: int | None


class Colorizer(Protocol):
    """``colorize_rgb(images)``: RGB ``(B, 3, H, W)`` in ``[-1, 1]`` -> colourised from their L channel,
    the same shape and range."""

    def colorize_rgb(self, images: Tensor) -> Tensor: ...


class Traversable(Protocol):
    """``traverse(images, factor, steps)``: decodings ``(B, steps, C, H, W)`` of each image with the latent
    of ``factor`` (``factor_latent[factor]``) swept over its range (Kulkarni et al. 2015, Figs. 4, 5, 8)."""

    factor_latent: dict[str, int]

    def traverse(self, images: Tensor, factor: str, steps: int = 8) -> Tensor: ...


class ScatteredFactors(Protocol):
    """``scatter[factor] = (latent (N,), truth (N,))`` filled by testing, plotted as Kulkarni et al. 2015's
    Fig. 6 (``factor_latent[factor]`` names the latent)."""

    scatter: dict[str, tuple[Tensor, Tensor]]
    factor_latent: dict[str, int]


class ParameterCount(Protocol):
    """``num_parameters()``: the model's free parameters, to size a shallow baseline of the same count
    (van den Oord & Schrauwen 2014, Sec. 4)."""

    def num_parameters(self) -> int: ...


class SplitDatasets(Protocol):
    """A datamodule whose splits' datasets callbacks read: ``dataset(split)`` for ``"train"``, ``"val"``,
    ``"test"`` (:class:`datamodules.base.ImageDataModule`, the factor and patch datamodules)."""

    def dataset(self, split: str): ...


@cache
def members(protocol: type) -> tuple[str, ...]:
    """The member names a protocol class declares (annotations and public methods, its base protocols'
    included), in order."""
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol, Generic) or not getattr(klass, "_is_protocol", False):
            continue
        names += list(vars(klass).get("__annotations__", {}))
        names += [name for name, value in vars(klass).items() if callable(value) and not name.startswith("_")]
    return tuple(dict.fromkeys(names))


def missing(obj, protocol: type) -> tuple[str, ...]:
    """The members of ``protocol`` (:func:`members`, in order) that ``obj`` lacks: all of them for ``None``."""
    return tuple(name for name in members(protocol) if obj is None or not hasattr(obj, name))


def offers(obj, protocol: type) -> bool:
    """Whether ``obj`` (a LightningModule or datamodule, or ``None``) has every member of ``protocol``; says
    nothing (for optional extras, such as a caption's generator iteration; a skip goes through
    :func:`applies`)."""
    return not missing(obj, protocol)


#: callback -> the skips it has said, ``(module class, reason)``; weak, so a finished run's callbacks go
_SAID: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def skip(callback, pl_module, reason: str) -> None:
    """Say that ``callback`` skips ``pl_module``, once per callback, module class and ``reason``: one INFO
    line ``<Callback> skips <Module>: <reason>`` on the ``genforge`` logger, on the process of global rank 0
    only (every rank remembers it said it, so none says it later)."""
    said = _SAID.setdefault(callback, set())
    key = (type(pl_module), reason)
    if key not in said:
        said.add(key)
        _info(f"{type(callback).__name__} skips {type(pl_module).__name__}: {reason}")


@rank_zero_only
def _info(message: str) -> None:
    log.info(message)


def _name(protocol: type) -> str:
    return f"{protocol.__module__}.{protocol.__qualname__}"


def applies(callback, pl_module, protocol: type) -> bool:
    """Whether ``callback`` applies to ``pl_module``: the module has every member of ``protocol``. When it
    lacks some, the callback skips it and says so once (:func:`skip`), naming them, e.g. ``SampleGrid skips
    MyVAE: it has no fixed_z, generate (callbacks.protocols.FixedNoise)``."""
    lacking = missing(pl_module, protocol)
    if lacking:
        skip(callback, pl_module, f"it has no {', '.join(lacking)} ({_name(protocol)})")
    return not lacking


def datamodule_applies(callback, trainer, pl_module, protocol: type) -> bool:
    """Whether ``trainer``'s datamodule (``None`` when it has none) has every member of ``protocol``; else
    ``callback`` skips ``pl_module`` and says so once (:func:`skip`), naming the datamodule's class and the
    members it lacks."""
    datamodule = getattr(trainer, "datamodule", None)
    lacking = missing(datamodule, protocol)
    if lacking:
        which = "the trainer has no datamodule" if datamodule is None else \
            f"its datamodule {type(datamodule).__name__} has no {', '.join(lacking)}"
        skip(callback, pl_module, f"{which} ({_name(protocol)})")
    return not lacking
