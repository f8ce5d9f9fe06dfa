"""The photographs bundled with scikit-image and scikit-learn, as loaders (embedded: no files, no network).

Shared by the colorization photos (:mod:`datamodules.images.photos`, whose docstring lists them with sizes
and sources) and the Deep GMM's patches (:mod:`datamodules.patches.photo_patches`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


def skimage_photo(name: str, index: int | None = None) -> Callable[[], np.ndarray]:
    """A loader of ``skimage.data.<name>()`` (item ``index`` of it when given, e.g. a stereo pair's view)."""
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[index] if index is not None else image

    return load


def sklearn_photo(filename: str) -> Callable[[], np.ndarray]:
    """A loader of ``sklearn.datasets.load_sample_image(filename)``."""
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


#: name -> loader returning uint8 ``(H, W, 3)``, in the fixed order the split permutes.
PHOTO_SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage_photo("astronaut"),
    "coffee": skimage_photo("coffee"),
    "chelsea": skimage_photo("chelsea"),
    "rocket": skimage_photo("rocket"),
    "hubble_deep_field": skimage_photo("hubble_deep_field"),
    "immunohistochemistry": skimage_photo("immunohistochemistry"),
    "retina": skimage_photo("retina"),
    "motorcycle": skimage_photo("stereo_motorcycle", 0),
    "china": sklearn_photo("china.jpg"),
    "flower": sklearn_photo("flower.jpg"),
}
#: The embedded photographs' names, in split order.
PHOTO_NAMES: tuple[str, ...] = tuple(PHOTO_SOURCES)


def load_photo(name: str) -> torch.Tensor:
    """One embedded photograph as uint8 ``(3, H, W)``.

    Raises:
        KeyError: if ``name`` is not one of :data:`PHOTO_NAMES`.
        ValueError: if the installed library gives something other than an ``(H, W, 3)`` uint8 photo.
    """
    if name not in PHOTO_SOURCES:
        raise KeyError(f"unknown photo {name!r}; the embedded photos are {list(PHOTO_NAMES)}")
    array = np.asarray(PHOTO_SOURCES[name]())
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"photo {name!r} loaded as {array.dtype} {array.shape}, expected uint8 (H, W, 3)")
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).contiguous()


def load_photos(names: Sequence[str] = PHOTO_NAMES) -> dict[str, torch.Tensor]:
    """The photographs ``names`` (default all) as ``{name: uint8 (3, H, W)}``."""
    return {name: load_photo(name) for name in names}
