"""The real images' FID/KID statistics of a dataset split, computed once and cached across runs.

FID compares a Gaussian fitted to generated features with one fitted to the real images' features (Heusel
et al. 2017, Eq. 6); KID compares the features themselves (Binkowski et al. 2018). The real side depends
only on the dataset split and the feature network, so it is computed once and saved (atomically, with
:func:`utils.io.atomic_torch_save`) as ``<cache_dir>/real_stats-<DataModule>-<split>-<N>-<key>.pt``, where
``key`` hashes the dataset's identity (:func:`metrics.feature_net.data_identity`: class, size, channels,
classes, root, split settings), the split, the number ``N`` of real images and the feature network's
fingerprint (:func:`module_fingerprint`: a hash of its weights, so a retrained network never reuses
statistics of another).

A file name can outlive its data (images replaced under the same ``root``), so the file also holds a
fingerprint of the images themselves (:class:`ImageFingerprint`, SHA-256 of the split's images and labels
in order): a later run reads the split once without the feature network, compares, and recomputes the
statistics when the data changed. Reading images costs far less than extracting their features
(Inception-v3 on 50,000 images is minutes on a GPU).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from utils.io import atomic_torch_save

#: bumped when the file's layout or what the statistics mean changes (invalidates every file)
REAL_STATS_VERSION = 1


class ImageFingerprint:
    """SHA-256 over a sequence of ``(images, labels)`` batches, in order: the same images and labels in the
    same order give the same hex digest whatever the batch sizes. Images are hashed as float32 (the
    DataModule's ``[-1, 1]`` output, itself a function of the decoded uint8 pixels)."""

    def __init__(self) -> None:
        self._images, self._labels = hashlib.sha256(), hashlib.sha256()
        self._label_dtype = ""
        self.count = 0

    def update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch: images float ``(B, C, H, W)``, labels ``(B,)`` or ``(B, K)``."""
        # two streams: a batch's bytes are its items' bytes one after the other, whatever the batch size
        self._images.update(images.detach().cpu().float().contiguous().numpy().tobytes())
        labels = labels.detach().cpu().contiguous()
        self._labels.update(labels.numpy().tobytes())
        self._label_dtype = str(labels.dtype)
        self.count += len(images)

    def hexdigest(self) -> str:
        """The digest so far (hex) of the images, the labels and their count."""
        parts = (self._images.hexdigest(), self._labels.hexdigest(), self._label_dtype, str(self.count))
        return hashlib.sha256(":".join(parts).encode()).hexdigest()


def module_fingerprint(module: nn.Module) -> str:
    """A 16-hex-digit SHA-256 of a feature module's class, ``num_features`` and weights (every state-dict
    tensor's name, dtype, shape and bytes): equal for the same network, different once it is retrained."""
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}:"
                       f"{getattr(module, 'num_features', None)}".encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def real_stats_path(cache_dir: str | os.PathLike, data: dict, split: str, count: int,
                    feature_key: str) -> Path:
    """``<cache_dir>/real_stats-<DataModule>-<split>-<count>-<key>.pt`` for the dataset identity ``data``
    (:func:`metrics.feature_net.data_identity`), the split, the number of real images and the feature
    network's ``feature_key`` (:func:`module_fingerprint`)."""
    text = json.dumps({"data": data, "split": split, "count": int(count), "feature": feature_key,
                       "version": REAL_STATS_VERSION}, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = str(data.get("class", "data")).rsplit(".", 1)[-1]
    return Path(cache_dir).expanduser() / f"real_stats-{name}-{split}-{int(count)}-{digest}.pt"


@dataclass
class RealStatistics:
    """A split's real side: ``fingerprint`` (:class:`ImageFingerprint` hex digest), ``labels`` (the split's
    labels in order, int64 ``(N,)`` or float ``(N, K)``; conditional generators draw theirs from them) and
    ``state`` (:meth:`metrics.fid.FeatureDistances.real_state`)."""

    fingerprint: str
    labels: torch.Tensor
    state: dict[str, torch.Tensor]


def save_real_statistics(stats: RealStatistics, path: str | os.PathLike) -> None:
    """Write ``stats`` to ``path`` atomically (plain tensors and strings: loadable with ``weights_only``).
    A folder that cannot be written is reported with a ``UserWarning`` (the run goes on uncached)."""
    blob = {"version": REAL_STATS_VERSION, "fingerprint": stats.fingerprint, "labels": stats.labels,
            "state": stats.state}
    try:
        atomic_torch_save(blob, path)
    except OSError as err:
        warnings.warn(f"cannot cache the real FID/KID statistics at {path}: {err}", UserWarning, stacklevel=2)


def load_real_statistics(path: str | os.PathLike) -> RealStatistics | None:
    """The statistics cached at ``path``; ``None`` when there is no file, and ``None`` with a
    ``UserWarning`` when the file cannot be read or is of another version (it is then recomputed)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("version") != REAL_STATS_VERSION:
            raise ValueError(f"version {blob.get('version')}, expected {REAL_STATS_VERSION}")
        return RealStatistics(str(blob["fingerprint"]), blob["labels"], dict(blob["state"]))
    except Exception as err:  # noqa: BLE001 - an unreadable cache is recomputed, by design
        warnings.warn(f"real FID/KID statistics {path} cannot be used ({type(err).__name__}: {err}); "
                      "recomputing them", UserWarning, stacklevel=2)
        return None


def scan_split(batches: Iterable, count: int, metric=None) -> tuple[str, torch.Tensor]:
    """Read the first ``count`` images of ``batches`` (``(images, labels)`` pairs, in the split's order):
    fingerprint them, collect their labels and -- given a :class:`metrics.fid.FeatureDistances` ``metric``
    -- add them to its real statistics.

    Returns:
        ``(fingerprint hex digest, labels of the count images)``; fewer when the split has fewer.
    """
    fingerprint, labels, seen = ImageFingerprint(), [], 0
    for images, batch_labels in batches:
        if seen >= count:
            break
        images, batch_labels = images[:count - seen], batch_labels[:count - seen]
        fingerprint.update(images, batch_labels)
        labels.append(batch_labels.detach().cpu())
        if metric is not None:
            metric.update(images, real=True)
        seen += len(images)
    return fingerprint.hexdigest(), (torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long))
