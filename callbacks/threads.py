"""A cap on the threads a run computes with: PyTorch's intra-op pool and the BLAS/OpenMP pools of NumPy, SciPy
and scikit-learn (``threadpoolctl``), for the Trainer's stages (``debug=fdr`` sets it to one)."""

from __future__ import annotations

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from threadpoolctl import threadpool_limits


class ThreadLimit(Callback):
    """From each stage's ``setup`` (fit, validate, test) to its ``teardown``: ``torch.set_num_threads(threads)``
    and every BLAS/OpenMP pool limited to ``threads`` (``threadpoolctl.threadpool_limits``); the previous
    settings come back at ``teardown``. The DataModule's own ``setup`` runs before (Lightning calls it first).

    Why: small networks and sequential work (a PixelCNN's sub-pixel loop, a GMM fit) gain nothing from a
    second thread, and on a 2-core CPU shared with other processes two threads per pool thrash: measured
    there, one PixelCNN sample grid of 20 28x28 images took 11 s with one torch thread and 141 s with two, and
    a 2,000-patch GaussianMixture fit 0.2 s with one BLAS thread and 10.5 s with two.

    Args:
        threads: the cap (at least 1).

    Raises:
        ValueError: ``threads < 1`` (names ``callbacks.thread_limit.threads``).
    """

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        if threads < 1:
            raise ValueError(f"callbacks.thread_limit.threads must be at least 1, got {threads}")
        self.threads = int(threads)
        self._previous: int | None = None
        self._limits: threadpool_limits | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Apply the cap (remembering the settings it replaces)."""
        if self._previous is None:
            self._previous = torch.get_num_threads()
        if self._limits is None:  # first: it records the pools' settings, PyTorch's OpenMP pool among them
            self._limits = threadpool_limits(limits=self.threads)
        torch.set_num_threads(self.threads)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Put the previous settings back."""
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None
        if self._previous is not None:
            torch.set_num_threads(self._previous)
            self._previous = None
