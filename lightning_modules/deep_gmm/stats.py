"""The sufficient statistics of the Deep GMM's M-step (van den Oord & Schrauwen 2014, Sec. 3.2).

For node ``i`` of layer ``j`` and every path suffix ``s`` above it (the nodes of layers ``j+1..k-1``), the
M-step needs the points that pass through ``(j, i, s)``, seen at the node's input ``v = h_{j-1}`` (the
data pushed through the layers below along the point's own path; ``v = x`` for layer 0): their weight
``N`` (count, or summed responsibility for soft EM), their sum ``S = sum v`` and their second moment
``M = sum v v^T``. The paper's ``Gamma_p`` is ``M`` centred on the bias. These are sums over points, so
each process accumulates its own and the totals are summed across processes before the M-step (the
paper notes in Sec. 3 that both EM steps distribute over machines).

Layout for layer ``j`` with ``N_j`` nodes and ``U_j = prod_{l>j} N_l`` suffixes (flattened like paths,
layer ``j+1`` most significant): ``count[j]`` ``(N_j, U_j)``, ``sum[j]`` ``(N_j, U_j, D)``, ``moment[j]``
``(N_j, U_j, D, D)``, all float64. Layer 0's keys are whole paths, so ``count[0].reshape(-1)`` is the
number of points per path.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from lightning_modules.deep_gmm.networks import DeepGMM


class EMStatistics:
    """Per-layer count, sum and second moment of the points through every (node, suffix) pair.

    Args:
        model: the Deep GMM whose structure (and device) the statistics follow.
    """

    def __init__(self, model: DeepGMM) -> None:
        self.components, self.dim = model.components, model.dim
        kw = {"dtype": torch.float64, "device": model.q(0).device}
        self.count, self.sum, self.moment = [], [], []
        for j, n in enumerate(self.components):
            suffixes = self.suffixes(j)
            self.count.append(torch.zeros(n, suffixes, **kw))
            self.sum.append(torch.zeros(n, suffixes, self.dim, **kw))
            self.moment.append(torch.zeros(n, suffixes, self.dim, self.dim, **kw))

    def suffixes(self, j: int) -> int:
        """``U_j = prod_{l>j} N_l``, the number of path suffixes above layer ``j``."""
        return math.prod(self.components[j + 1:])

    def tensors(self) -> list[Tensor]:
        """Every statistic, for reducing across processes in place."""
        return [*self.count, *self.sum, *self.moment]

    def reduce(self, reduce_sum: Callable[[Tensor], Tensor]) -> EMStatistics:
        """Replace every statistic by ``reduce_sum(statistic)`` (e.g. the Lightning strategy's all-reduce)."""
        k = len(self.components)
        out = [reduce_sum(t) for t in self.tensors()]
        self.count, self.sum, self.moment = out[:k], out[k:2 * k], out[2 * k:]
        return self

    @property
    def total(self) -> float:
        """The number (or summed weight) of points accumulated."""
        return float(self.count[0].sum())

    def path_counts(self) -> Tensor:
        """Points per path, ``(P,)`` in flat path order."""
        return self.count[0].reshape(-1)

    def node_counts(self, j: int) -> Tensor:
        """Points per node of layer ``j``, ``(N_j,)``."""
        return self.count[j].sum(1)

    def add_hard(self, model: DeepGMM, x: Tensor, paths: Tensor) -> None:
        """Accumulate points ``x`` ``(B, D)`` float64 on their paths ``(B, k)`` (hard EM)."""
        v = x
        for j in range(len(self.components)):
            suffix = torch.zeros_like(paths[:, 0])
            for l in range(j + 1, len(self.components)):
                suffix = suffix * self.components[l] + paths[:, l]
            key = paths[:, j] * self.suffixes(j) + suffix
            count = self.count[j].view(-1)
            count += torch.bincount(key, minlength=count.numel()).to(count.dtype)
            self.sum[j].view(-1, self.dim).index_add_(0, key, v)
            moment = self.moment[j].view(-1, self.dim, self.dim)
            order = torch.argsort(key)
            keys, sizes = torch.unique_consecutive(key[order], return_counts=True)
            for k, rows in zip(keys.tolist(), torch.split(order, sizes.tolist())):
                moment[k] += v[rows].T @ v[rows]
            v = model.apply_layers(v, paths, [j])

    def add_soft(self, model: DeepGMM, x: Tensor, gamma: Tensor) -> None:
        """Accumulate points ``x`` ``(B, D)`` weighted by their responsibilities ``gamma`` ``(B, P)`` over
        every path (soft EM); ``v`` is computed for every prefix of layers below."""
        v = x[:, None, :]  # (B, prefixes, D)
        for j, n in enumerate(self.components):
            g = gamma.reshape(x.shape[0], v.shape[1], n, self.suffixes(j))
            self.count[j] += g.sum((0, 1))
            self.sum[j] += torch.einsum("bqis,bqd->isd", g, v)
            weighted = torch.einsum("bqis,bqd->bqisd", g, v)
            self.moment[j] += torch.einsum("bqisd,bqe->isde", weighted, v)
            v = torch.einsum("bqie,ide->bqid", v[:, :, None, :] - model.b(j), model.q(j))
            v = v.reshape(x.shape[0], -1, self.dim)
