"""genforge's own feature network for FID / KID, trained per dataset and cached.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", Sec. 4 / Eq. 6) and KID (Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 3) compare
generated and real images in the feature space of a classifier, classically Inception-v3's 2048-d pool3
layer (Szegedy et al. 2016). Inception weights cannot be downloaded everywhere genforge runs, so genforge
trains a small CNN per dataset instead and uses its penultimate (globally pooled) activations:

* labelled datasets (``num_classes > 0``): a classifier on the TRAIN split, cross-entropy for int class
  labels, BCE-with-logits for float multi-hot attributes (CelebA); held-out VAL accuracy is reported;
* unlabelled datasets (``num_classes == 0``): fallback, a convolutional auto-encoder whose bottleneck *is*
  the pooled feature vector (the decoder reconstructs the image from it alone, so the features must carry
  the image's content); VAL reconstruction MSE is reported instead of an accuracy.

Numbers computed with these features are comparable only between runs that use the same cached network
(same dataset, settings and seed), never with published Inception FIDs. For those, use
:func:`inception_feature` with the Inception weights (needs torch-fidelity).

CLI: ``python -m metrics.feature_net data=mnist5k [epochs=5 seed=0 num_features=128]`` trains (or loads)
the network into ``${paths.cache_dir}/features`` and prints its validation accuracy and cache path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from datamodules.transforms import convert_channels, to_uint8
from utils.io import atomic_torch_save

#: Bumped whenever the architecture or the training recipe changes, which invalidates every cache file.
FEATURE_NET_VERSION = 1

TASKS = ("classify", "multilabel", "autoencode")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Decoder(nn.Module):
    """Pooled features ``(B, F)`` -> images ``(B, C, S, S)`` in ``[-1, 1]`` (tanh)."""

    def __init__(self, num_features: int, out_channels: int, image_size: int, width: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.seed_size = max(1, math.ceil(image_size / 4))
        self.width = width
        self.fc = nn.Linear(num_features, 2 * width * self.seed_size**2)
        self.up1 = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.up2 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(width, out_channels, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(z)).view(-1, 2 * self.width, self.seed_size, self.seed_size)
        h = self.up1(F.interpolate(h, size=max(1, math.ceil(self.image_size / 2)), mode="nearest"))
        h = self.up2(F.interpolate(h, size=self.image_size, mode="nearest"))
        return torch.tanh(h)


class FeatureNet(nn.Module):
    """A small CNN whose globally pooled activations serve as FID/KID features.

    Trunk: three conv blocks (two 3x3 conv + BatchNorm + ReLU each; 2x2 max-pooling after the first two),
    widths ``width``, ``2 * width``, ``num_features``; then global average pooling (adaptive, so any
    input size works; tested 8 to 128 pixels) gives the ``(B, num_features)`` feature vector, like
    Inception's pool3 (Szegedy et al. 2016). On top: a linear head to ``num_classes`` logits
    (``task="classify"`` / ``"multilabel"``) or a decoder back to the image (``task="autoencode"``).

    Args:
        in_channels: image channels, 1 or 3.
        num_classes: classes / attributes of the head (ignored for ``"autoencode"``).
        num_features: feature dimension (the last trunk width), default 128.
        image_size: training image size (only the auto-encoder's decoder needs it).
        task: ``"classify"``, ``"multilabel"`` or ``"autoencode"``.
        width: width of the first block.

    Attributes:
        num_features (int): read by torchmetrics' FID to size its statistics.
        in_channels (int): :class:`metrics.fid.FeatureDistances` converts images to it.

    Raises:
        ValueError: on an unknown ``task``, ``in_channels`` not 1 or 3, or non-positive sizes.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        num_features: int = 128,
        image_size: int = 28,
        task: str = "classify",
        width: int = 32,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        if num_features < 1 or width < 1 or image_size < 1:
            raise ValueError(f"num_features, width and image_size must be positive, got "
                             f"{num_features}, {width}, {image_size}")
        if task != "autoencode" and num_classes < 1:
            raise ValueError(f"task={task!r} needs num_classes >= 1, got {num_classes}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes) if task != "autoencode" else 0
        self.num_features = int(num_features)
        self.image_size = int(image_size)
        self.task = task
        self.width = int(width)
        self.trunk = nn.Sequential(
            _block(in_channels, width),
            nn.MaxPool2d(2, ceil_mode=True),
            _block(width, 2 * width),
            nn.MaxPool2d(2, ceil_mode=True),
            _block(2 * width, num_features),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        if task == "autoencode":
            self.head = None
            self.decoder = _Decoder(num_features, in_channels, image_size, width)
        else:
            self.head = nn.Linear(num_features, num_classes)
            self.decoder = None
        self._frozen = False

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain types (saved beside the weights)."""
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "num_features": self.num_features, "image_size": self.image_size,
                "task": self.task, "width": self.width}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features: images float ``(B, in_channels, H, W)`` in ``[-1, 1]`` -> float ``(B, num_features)``."""
        return self.trunk(images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Head output ``(B, num_classes)`` (classification or attribute logits).

        Raises:
            RuntimeError: for an auto-encoder, which has no head.
        """
        if self.head is None:
            raise RuntimeError("this FeatureNet is an auto-encoder (unlabelled data); it has no logits")
        return self.head(self.trunk(images))

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Auto-encoder reconstruction ``(B, C, image_size, image_size)`` in ``[-1, 1]``.

        Raises:
            RuntimeError: for a classifier, which has no decoder.
        """
        if self.decoder is None:
            raise RuntimeError("this FeatureNet is a classifier; it has no decoder")
        return self.decoder(self.trunk(images))

    def freeze(self) -> FeatureNet:
        """Evaluation mode for good, ``requires_grad=False``: a later ``.train()`` (e.g. Lightning's, when
        the net sits inside a LightningModule) keeps BatchNorm in eval mode. Returns ``self``."""
        self._frozen = True
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> FeatureNet:
        """As :meth:`nn.Module.train`, but a frozen net always stays in eval mode."""
        return super().train(False if getattr(self, "_frozen", False) else mode)


# --------------------------------------------------------------------------------------------- training
def _infer_task(datamodule) -> str:
    if int(datamodule.num_classes) == 0:
        return "autoencode"
    _, label = datamodule.dataset("train")[0]
    label = torch.as_tensor(label)
    return "multilabel" if label.is_floating_point() and label.dim() == 1 else "classify"


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _loss_and_correct(net: FeatureNet, images: torch.Tensor, labels: torch.Tensor):
    """Returns (loss, number correct, number of scored predictions) for a batch."""
    if net.task == "classify":
        logits = net.logits(images)
        labels = labels.long()
        loss = F.cross_entropy(logits, labels, ignore_index=-1)
        valid = labels >= 0
        correct = (logits.argmax(1) == labels)[valid].sum().item()
        return loss, correct, int(valid.sum().item())
    if net.task == "multilabel":
        logits = net.logits(images)
        target = labels.float()
        loss = F.binary_cross_entropy_with_logits(logits, target)
        correct = ((logits > 0) == (target > 0.5)).sum().item()
        return loss, correct, target.numel()
    loss = F.mse_loss(net.reconstruct(images), images)
    return loss, 0, 0


@torch.no_grad()
def _evaluate(net: FeatureNet, loader: DataLoader, device: torch.device) -> dict[str, float | None]:
    """The net's VAL report: ``val_loss``; ``val_accuracy`` (fraction, ``None`` for the auto-encoder); the
    baselines :mod:`metrics.feature_quality` judges them by: ``val_chance_accuracy`` (``1 / num_classes``
    for a classifier; per attribute, the majority value's frequency on VAL, averaged, for multi-hot
    attributes) and ``val_variance`` (the images' per-pixel variance around VAL's mean image, averaged over
    pixels and channels: the MSE of reconstructing every image by the mean image)."""
    net.eval()
    total_loss, n, correct, scored = 0.0, 0, 0, 0
    pixel_sum = pixel_sq = positives = None
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        loss, c, s = _loss_and_correct(net, images, labels)
        total_loss += loss.item() * len(images)
        n += len(images)
        correct += c
        scored += s
        x = images.double()
        pixel_sum = x.sum(0) if pixel_sum is None else pixel_sum + x.sum(0)
        pixel_sq = (x * x).sum(0) if pixel_sq is None else pixel_sq + (x * x).sum(0)
        if net.task == "multilabel":
            p = (labels.float() > 0.5).double().sum(0)
            positives = p if positives is None else positives + p
    report: dict[str, float | None] = {"val_loss": total_loss / max(n, 1),
                                       "val_accuracy": (correct / scored) if scored else None,
                                       "val_chance_accuracy": None, "val_variance": None}
    if n:
        mean = pixel_sum / n
        report["val_variance"] = float((pixel_sq / n - mean * mean).clamp_min(0).mean())
    if net.task == "classify":
        report["val_chance_accuracy"] = 1.0 / net.num_classes
    elif net.task == "multilabel" and n:
        rate = positives / n
        report["val_chance_accuracy"] = float(torch.maximum(rate, 1 - rate).mean())
    return report


def evaluate_feature_net(net: FeatureNet, datamodule, device: str | torch.device | None = None) -> dict:
    """Evaluate ``net`` on ``datamodule``'s VAL split (the report of :func:`_evaluate`: ``val_loss``,
    ``val_accuracy``, ``val_chance_accuracy``, ``val_variance``; all ``None`` when VAL is empty). Used for
    cache files written before the baselines were recorded. The global RNG is not touched."""
    val_set = datamodule.dataset("val")
    if not len(val_set):
        return {"val_loss": None, "val_accuracy": None, "val_chance_accuracy": None, "val_variance": None}
    dev = _pick_device(device)
    report = _evaluate(net.to(dev), DataLoader(val_set, batch_size=256, shuffle=False), dev)
    net.cpu()
    return report


def train_feature_net(
    datamodule,
    epochs: int = 5,
    seed: int = 0,
    num_features: int = 128,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str | torch.device | None = None,
    verbose: bool = False,
) -> tuple[FeatureNet, dict[str, Any]]:
    """Train a :class:`FeatureNet` on ``datamodule``'s TRAIN split; evaluate on its VAL split.

    Plain torch loop: Adam (``lr``), ``epochs`` passes over shuffled mini-batches of ``batch_size``, a
    fixed ``seed`` for the initialization and the shuffling (the global RNG state is restored afterwards).
    Classifier for int labels (cross-entropy; ``-1`` labels ignored), multi-label for float ``(B, K)``
    attributes (BCE with logits), auto-encoder (MSE on ``[-1, 1]`` pixels) when ``num_classes == 0``.

    Args:
        datamodule: a genforge :class:`datamodules.base.ImageDataModule` (batch contract: images float
            ``(B, C, H, W)`` in ``[-1, 1]``, labels int ``(B,)`` or float ``(B, K)``).
        epochs: passes over the training split (>= 1).
        seed: RNG seed.
        num_features: feature dimension.
        batch_size: training batch size.
        lr: Adam learning rate.
        device: where to train; default CUDA when available, else CPU.
        verbose: print the loss per epoch.

    Returns:
        ``(net, metrics)``: the frozen net on CPU, and ``{"task", "val_accuracy" (fraction in [0, 1], or
        None for the auto-encoder), "val_loss", "val_chance_accuracy", "val_variance" (see
        :func:`_evaluate`), "train_seconds", "train_size", "epochs"}`` (VAL values ``None`` when VAL is
        empty).

    Raises:
        ValueError: ``epochs < 1`` or an empty training split.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    dev = _pick_device(device)
    task = _infer_task(datamodule)
    train_set, val_set = datamodule.dataset("train"), datamodule.dataset("val")
    if len(train_set) == 0:
        raise ValueError(f"{type(datamodule).__name__} has an empty train split")
    start = time.perf_counter()
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        net = FeatureNet(in_channels=int(datamodule.channels), num_classes=int(datamodule.num_classes),
                         num_features=num_features, image_size=int(datamodule.image_size), task=task).to(dev)
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=gen,
                            drop_last=len(train_set) > batch_size)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for epoch in range(epochs):
            net.train()
            running, count = 0.0, 0
            for images, labels in loader:
                images, labels = images.to(dev), labels.to(dev)
                loss, _, _ = _loss_and_correct(net, images, labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running += loss.item() * len(images)
                count += len(images)
            if verbose:
                print(f"feature net epoch {epoch + 1}/{epochs}: train loss {running / max(count, 1):.4f}")
        val_loader = DataLoader(val_set, batch_size=256, shuffle=False)
        metrics: dict[str, Any] = _evaluate(net, val_loader, dev) if len(val_set) else \
            {"val_loss": None, "val_accuracy": None, "val_chance_accuracy": None, "val_variance": None}
    metrics.update(task=task, train_seconds=time.perf_counter() - start, train_size=len(train_set),
                   epochs=epochs)
    net = net.cpu().freeze()
    net.metrics = metrics
    return net, metrics


# --------------------------------------------------------------------------------------------- caching
def data_identity(datamodule) -> dict[str, Any]:
    """What names a dataset in genforge's caches (plain JSON types): the DataModule's class, image size,
    channels, classes, and -- where it has them -- ``root``, ``split_seed``, ``val_size``, ``test_size``.
    It does not cover the files' contents: caches that must notice edited data also fingerprint the
    images (:mod:`metrics.real_stats`)."""
    cls = type(datamodule)
    data = {"class": f"{cls.__module__}.{cls.__qualname__}", "image_size": int(datamodule.image_size),
            "channels": int(datamodule.channels), "num_classes": int(datamodule.num_classes)}
    # what else decides which images the net is trained on, where the datamodule has it
    for attr in ("root", "split_seed", "val_size", "test_size"):
        value = getattr(datamodule, attr, None)
        if value is not None:
            data[attr] = str(value) if isinstance(value, Path) else value
    return data


def _settings(datamodule, epochs: int, seed: int, num_features: int, batch_size: int, lr: float) -> dict:
    return {"data": data_identity(datamodule), "epochs": int(epochs), "seed": int(seed),
            "num_features": int(num_features), "batch_size": int(batch_size), "lr": float(lr),
            "version": FEATURE_NET_VERSION}


def feature_net_key(
    datamodule, epochs: int = 5, seed: int = 0, num_features: int = 128, batch_size: int = 64,
    lr: float = 1e-3,
) -> str:
    """Cache key: ``<DataModuleClass>-<size>px-<C>ch-<K>cls-<hash>``, where the 12-hex-digit SHA-256 hash
    covers the datamodule's class, image size, channels, classes, root / split settings, and the training
    settings (epochs, seed, num_features, batch_size, lr, :data:`FEATURE_NET_VERSION`)."""
    settings = _settings(datamodule, epochs, seed, num_features, batch_size, lr)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    d = settings["data"]
    return f"{type(datamodule).__name__}-{d['image_size']}px-{d['channels']}ch-{d['num_classes']}cls-{digest}"


def feature_net_path(datamodule, cache_dir: str | os.PathLike, key: str | None = None, epochs: int = 5,
                     seed: int = 0, num_features: int = 128, batch_size: int = 64, lr: float = 1e-3) -> Path:
    """``<cache_dir>/feature_net-<key>.pt``: where :func:`load_or_train_feature_net` caches the net
    (``key`` defaults to :func:`feature_net_key`; characters other than letters, digits, ``.-_`` become
    ``_``)."""
    if key is None:
        key = feature_net_key(datamodule, epochs, seed, num_features, batch_size, lr)
    key = re.sub(r"[^A-Za-z0-9._-]", "_", str(key))
    return Path(cache_dir).expanduser() / f"feature_net-{key}.pt"


def cached_feature_net(path: str | os.PathLike, settings: dict | None = None) -> FeatureNet | None:
    """The net cached at ``path`` when it loads and (with ``settings``) was trained with those settings,
    else ``None`` (a ``UserWarning`` says why when the file exists but cannot be used)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        net = load_feature_net(path)
        if settings is not None and net.settings != settings:
            raise ValueError(f"it was trained with other settings: {net.settings} instead of {settings}")
    except Exception as err:  # noqa: BLE001 - any unreadable cache is rebuilt, by design
        warnings.warn(f"feature-net cache {path} cannot be used ({type(err).__name__}: {err}); rebuilding it",
                      UserWarning, stacklevel=3)
        return None
    net.cache_path = path
    return net


#: CPU seconds to train the net on one 28x28 image for one epoch (forward, backward, Adam step), measured
#: with one thread on the shared 2-core machine genforge is developed on (mnist5k: 4,000 images, 1 epoch,
#: 9.6 s); scaled by the pixel count
CPU_SECONDS_PER_IMAGE_EPOCH = 2.4e-3


def estimated_training_seconds(datamodule, epochs: int) -> float:
    """A rough CPU estimate of :func:`train_feature_net`'s time for ``datamodule`` (seconds):
    ``epochs * train images * (image_size / 28)^2 *`` :data:`CPU_SECONDS_PER_IMAGE_EPOCH`. A GPU is faster."""
    return (epochs * len(datamodule.dataset("train")) * (int(datamodule.image_size) / 28) ** 2
            * CPU_SECONDS_PER_IMAGE_EPOCH)


def build_command(data: str, overrides=(), epochs: int = 5, seed: int = 0, num_features: int = 128) -> str:
    """The CLI command that builds the same cached net ahead of a run: ``python -m metrics.feature_net
    data=<data> <overrides> epochs=<E> seed=<S> num_features=<F>`` (``overrides``: the run's ``data.*`` and
    ``paths.*`` overrides, which decide the dataset and the cache folder; see conf/features.yaml)."""
    return " ".join(["python -m metrics.feature_net", f"data={data}", *overrides, f"epochs={epochs}",
                     f"seed={seed}", f"num_features={num_features}"])


def load_feature_net(path: str | os.PathLike) -> FeatureNet:
    """Load a cached :class:`FeatureNet` (``torch.load(weights_only=True)``), frozen, on CPU.

    The file holds ``{"config": constructor kwargs, "state_dict": ..., "metrics": ..., "settings": ...,
    "version": int}``, written by :func:`load_or_train_feature_net`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a genforge feature-net cache of this version.
        Exception: whatever ``torch.load`` raises on a corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no feature-net cache file at {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or not {"config", "state_dict", "version"} <= set(blob):
        raise ValueError(f"{path} is not a genforge feature-net cache (expected keys config, state_dict, version)")
    if blob["version"] != FEATURE_NET_VERSION:
        raise ValueError(f"{path} has feature-net version {blob['version']}, expected {FEATURE_NET_VERSION}")
    net = FeatureNet(**blob["config"])
    net.load_state_dict(blob["state_dict"])
    net.metrics = dict(blob.get("metrics") or {})
    net.settings = blob.get("settings")
    return net.freeze()


def load_or_train_feature_net(
    datamodule,
    cache_dir: str | os.PathLike,
    key: str | None = None,
    epochs: int = 5,
    seed: int = 0,
    num_features: int = 128,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str | torch.device | None = None,
    verbose: bool = False,
) -> FeatureNet:
    """The feature network for ``datamodule``: loaded from ``cache_dir`` when cached, else trained
    (:func:`train_feature_net`) and saved atomically (``utils.io.atomic_torch_save``).

    The file is ``<cache_dir>/feature_net-<key>.pt``, ``key`` defaulting to :func:`feature_net_key`. A cache
    file that cannot be loaded (corrupt, truncated, another version) or that was made with other settings
    is rebuilt with a ``UserWarning``; it never raises for that.

    Args:
        datamodule: a genforge DataModule (see :func:`train_feature_net`).
        cache_dir: folder of the cache files (``${paths.cache_dir}/features`` in the configs).
        key: file-name key overriding the derived one (letters, digits, ``.-_``; others become ``_``).
        epochs, seed, num_features, batch_size, lr, device, verbose: see :func:`train_feature_net`.

    Returns:
        The frozen :class:`FeatureNet` on CPU (eval mode, ``requires_grad=False``), with ``.metrics`` (the
        training report incl. ``val_accuracy``) and ``.cache_path``.
    """
    settings = _settings(datamodule, epochs, seed, num_features, batch_size, lr)
    path = feature_net_path(datamodule, cache_dir, key, epochs, seed, num_features, batch_size, lr)
    net = cached_feature_net(path, settings)
    if net is not None:
        return net
    net, metrics = train_feature_net(datamodule, epochs=epochs, seed=seed, num_features=num_features,
                                     batch_size=batch_size, lr=lr, device=device, verbose=verbose)
    atomic_torch_save({"config": net.config, "state_dict": net.state_dict(), "metrics": metrics,
                       "settings": settings, "version": FEATURE_NET_VERSION}, path)
    net.settings = settings
    net.cache_path = path
    return net


# --------------------------------------------------------------------------------------------- Inception
class InceptionFeature(nn.Module):
    """Inception-v3 features (torch-fidelity's TF-ported network, as torchmetrics uses it) behind genforge's
    interface: images float ``(B, 1 or 3, H, W)`` in ``[-1, 1]`` -> float ``(B, num_features)``.

    Grayscale images are repeated to 3 channels, mapped to uint8 ``[0, 255]`` (what torchmetrics'
    ``NoTrainInceptionV3`` expects) and resized by it to 299x299. Source: Heusel et al. 2017 (FID),
    Szegedy et al. 2016 (Inception-v3).
    """

    def __init__(self, inception: nn.Module, num_features: int) -> None:
        super().__init__()
        self.inception = inception
        self.num_features = int(num_features)
        self.in_channels = 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images float ``(B, 1 or 3, H, W)`` in ``[-1, 1]`` -> features float ``(B, num_features)``."""
        return self.inception(to_uint8(convert_channels(images, 3)))


def inception_feature(weights_path: str | os.PathLike | None = None, feature: int = 2048) -> InceptionFeature:
    """Inception-v3 feature extractor for :class:`metrics.fid.FeatureDistances`, from ``weights_path``
    (torch-fidelity's ``pt_inception-2015-12-05`` file; ``None`` lets torch-fidelity download it).

    Args:
        weights_path: path to the Inception weights file, or ``None``.
        feature: which layer: 64, 192, 768 or 2048 (pool3, the FID standard).

    Returns:
        An :class:`InceptionFeature` (``num_features == feature``).

    Raises:
        ImportError: torch-fidelity is not installed (it says how to install it).
        FileNotFoundError: ``weights_path`` does not exist.
        ValueError: an unsupported ``feature``.
    """
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if not _TORCH_FIDELITY_AVAILABLE:
        raise ImportError(
            "Inception features need the torch-fidelity package, which is not installed. Install genforge's "
            "`inception` extra, `pip install -e \".[inception]\"`, or `pip install torch-fidelity` "
            "(docs/fid.md; it pulls in torchvision: install the torchvision build that matches "
            "your torch version, or torchmetrics will fail to import). Without it, use genforge's own feature "
            "network (metrics.feature_net.load_or_train_feature_net, or `python -m metrics.feature_net`)."
        )
    if feature not in (64, 192, 768, 2048):
        raise ValueError(f"feature must be one of 64, 192, 768, 2048, got {feature}")
    if weights_path is not None and not Path(weights_path).is_file():
        raise FileNotFoundError(f"Inception weights file {weights_path} does not exist")
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(feature)],
                             feature_extractor_weights_path=None if weights_path is None else str(weights_path))
    return InceptionFeature(net, feature)


# --------------------------------------------------------------------------------------------- CLI
try:  # the CLI needs Hydra; the library functions above do not
    import hydra
    from omegaconf import DictConfig
except ImportError:  # pragma: no cover
    hydra = None


if hydra is not None:

    @hydra.main(config_path="../conf", config_name="features", version_base="1.3")
    def main(cfg: DictConfig) -> float | None:
        """``python -m metrics.feature_net data=<dataset>``: train or load the feature net, print its
        validation accuracy and cache path; returns the accuracy (None for an auto-encoder)."""
        datamodule = hydra.utils.instantiate(cfg.data)
        net = load_or_train_feature_net(
            datamodule, cfg.cache_dir, key=cfg.get("key"), epochs=cfg.epochs, seed=cfg.seed,
            num_features=cfg.num_features, batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.get("device"),
            verbose=True,
        )
        from metrics.feature_quality import feature_quality

        m = dict(net.metrics)
        if "val_variance" not in m:  # a cache file written before the baselines were recorded
            m.update(evaluate_feature_net(net, datamodule))
        acc = m.get("val_accuracy")
        print(f"feature net ({m.get('task')}, {net.num_features} features, "
              f"trained in {m.get('train_seconds', float('nan')):.1f} s)")
        print(f"val accuracy: {acc:.4f}" if acc is not None else f"val reconstruction MSE: {m.get('val_loss')}")
        quality = feature_quality({**m, "task": net.task})
        print(f"quality: {quality.describe()}" + (" -- POOR: FID/KID in its space say little" if quality.poor
                                                   else ""))
        print(f"cache: {net.cache_path}")
        return acc


if __name__ == "__main__":
    # paths.* interpolate GENFORGE_ROOT, and Hydra resolves hydra.run.dir before main() runs
    from utils.bootstrap import bootstrap

    bootstrap()
    main()
