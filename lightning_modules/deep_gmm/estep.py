"""The Deep GMM's E-step: which path explains each point (van den Oord & Schrauwen 2014, Sec. 3.1).

Hard EM assigns every point the path of highest ``log pi_p + log N(x | beta_p, Omega_p Omega_p^T)``.
Searching all ``prod_j N_j`` paths (:func:`full_search`) is exponential in depth, so the paper's heuristic
(:func:`heuristic_search`) does coordinate ascent over the layers: with the other layers' nodes fixed, the
best node of one layer is found by trying its ``N_j`` nodes; a pass visits every layer once
(``sum_j N_j`` path evaluations). Each E-step warm-starts from the previous E-step's path (one pass) and
also runs two passes from a random path, keeping the better: ``3 sum_j N_j`` evaluations per point. The
share of points whose random start won is the switch rate (Fig. 2c). Soft EM (:func:`responsibilities`)
weighs every path by its posterior probability.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_modules.deep_gmm.networks import DeepGMM
from utils.hashing import hashed_integers


def hashed_paths(model: DeepGMM, index: Tensor, seed: int) -> Tensor:
    """A uniformly random path per point, a function of the point's dataset index and ``seed`` only (not of
    the batch or the process that holds it), so that one process and ``N`` DDP processes draw the same.

    Args:
        index: int64 ``(B,)`` the points' positions in their dataset.
        seed: e.g. ``run_seed * 1_000_003 + epoch``.

    Returns:
        int64 ``(B, k)`` node choices.
    """
    return torch.stack([hashed_integers(index, seed * 7919 + j, n) for j, n in enumerate(model.components)],
                       dim=1)


def projection_paths(model: DeepGMM, x: Tensor, seed: int) -> Tensor:
    """Initial paths from the data: in layer ``j`` each point takes the node whose seeded random
    direction ``u_{j,i}`` has the largest ``u_{j,i}^T x`` (a partition of the patch space into cones).
    A function of ``x`` and ``seed`` only, so every process agrees.

    Args:
        x: float ``(B, D)``.

    Returns:
        int64 ``(B, k)``.
    """
    generator = torch.Generator().manual_seed(seed)
    out = []
    for n in model.components:
        directions = torch.randn(n, model.dim, generator=generator, dtype=torch.float64).to(x.device)
        out.append((x.to(torch.float64) @ directions.T).argmax(1))
    return torch.stack(out, dim=1)


def coordinate_pass(model: DeepGMM, x: Tensor, paths: Tensor, passes: int = 1) -> tuple[Tensor, Tensor]:
    """``passes`` passes of coordinate ascent over the layers, bottom to top, from ``paths``.

    In layer ``j`` each of its ``N_j`` nodes is tried with the point's other nodes fixed, and the best is
    kept (ties keep the current node); the path's log-joint never decreases.

    Args:
        x: float64 ``(B, D)``.
        paths: int64 ``(B, k)`` starting paths (not modified).

    Returns:
        ``(paths, log_joint)``: int64 ``(B, k)`` and float64 ``(B,)`` nats.
    """
    paths = paths.clone()
    log_dets = [model.log_dets(j) for j in range(model.depth)]
    for _ in range(passes):
        below = x
        for j in range(model.depth):
            above = range(j + 1, model.depth)
            fixed_dets = sum((log_dets[l][paths[:, l]] for l in range(model.depth) if l != j),
                             torch.zeros_like(x[:, 0]))
            scores = []
            for i in range(model.components[j]):
                trial = paths.clone()
                trial[:, j] = i
                z = model.apply_layers((below - model.b(j)[i]) @ model.q(j)[i].T, trial, above)
                scores.append(model.log_path_prior(trial) + fixed_dets + log_dets[j][i] - 0.5 * (z * z).sum(1))
            scores = torch.stack(scores, dim=1)
            current = scores.gather(1, paths[:, j:j + 1]).squeeze(1)
            best, choice = scores.max(1)
            paths[:, j] = torch.where(best > current, choice, paths[:, j])
            below = model.apply_layers(below, paths, [j])
    return paths, model.log_joint(x, paths)


def heuristic_search(model: DeepGMM, x: Tensor, previous: Tensor | None, random_start: Tensor,
                     warm_passes: int = 1, random_passes: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """The paper's E-step heuristic (Sec. 3.1): ``warm_passes`` passes from the previous path, ``random_passes``
    from a random one, keep the better per point.

    Args:
        x: float64 ``(B, D)``.
        previous: int64 ``(B, k)`` the previous E-step's paths, or ``None``; points without one (``None``,
            or a row holding ``-1``) compare two random starts instead, the second the reversed random
            path ``N_j - 1 - i_j``.
        random_start: int64 ``(B, k)``, e.g. from :func:`hashed_paths`.

    Returns:
        ``(paths, log_joint, switched)``: int64 ``(B, k)``, float64 ``(B,)`` nats, bool ``(B,)`` (the random
        start found a strictly better path).
    """
    reversed_start = torch.tensor(model.components, device=x.device) - 1 - random_start
    if previous is None:
        previous = reversed_start
    previous = torch.where((previous < 0).any(1, keepdim=True), reversed_start, previous)
    warm, warm_score = coordinate_pass(model, x, previous, warm_passes)
    rand, rand_score = coordinate_pass(model, x, random_start, random_passes)
    switched = rand_score > warm_score
    paths = torch.where(switched[:, None], rand, warm)
    return paths, torch.where(switched, rand_score, warm_score), switched


def full_search(model: DeepGMM, x: Tensor) -> tuple[Tensor, Tensor]:
    """The exact hard E-step: the best of all ``prod_j N_j`` paths per point.

    Args:
        x: float64 ``(B, D)``.

    Returns:
        ``(paths, log_joint)``: int64 ``(B, k)``, float64 ``(B,)`` nats.
    """
    best, flat = model.all_path_log_joint(x).max(1)
    return model.path_of(flat), best


def responsibilities(model: DeepGMM, x: Tensor) -> tuple[Tensor, Tensor]:
    """Soft EM's E-step: the posterior of every path, ``gamma_{n,p} = p(p | x_n)``.

    Args:
        x: float64 ``(B, D)``.

    Returns:
        ``(gamma, log_prob)``: float64 ``(B, P)`` (rows sum to 1, paths in flat order) and ``(B,)`` nats.
    """
    joint = model.all_path_log_joint(x)
    log_prob = torch.logsumexp(joint, dim=1)
    return (joint - log_prob[:, None]).exp(), log_prob
