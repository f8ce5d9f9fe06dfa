"""Lightning checkpoints written atomically in the run folder itself."""

from __future__ import annotations

from typing import Any

from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO

from utils.io import atomic_torch_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with local saves through :func:`utils.io.atomic_torch_save`: a
    temporary file beside the checkpoint, ``fsync``, ``os.replace``. Lightning's own save stages the file
    through ``fsspec`` in ``$TMPDIR``; on another file system than the run folder the final step is a copy,
    and a kill during it left a 0-byte ``last.ckpt`` and an orphan in ``$TMPDIR``. With this plugin a kill
    at any moment leaves the previous checkpoint loadable. Remote paths (``s3://``, ...) keep Lightning's
    save. ``train.py`` adds it to every Trainer whose ``trainer.plugins`` hold no ``CheckpointIO``.

    Raises:
        TypeError: ``storage_options`` given (as Lightning's).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        text = str(path)
        if "://" in text and not text.startswith("file://"):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"storage_options is not supported by {type(self).__name__}, got {storage_options!r}")
        atomic_torch_save(checkpoint, text.removeprefix("file://"))
        return None
