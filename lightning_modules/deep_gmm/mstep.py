"""The Deep GMM's M-step (van den Oord & Schrauwen 2014, Sec. 3.2): layer by layer from the top, each
node's inverse transform ``Q = A^{-1}`` by L-BFGS-B, its bias in closed form, the path probabilities from
the assignments.

With the other layers fixed, a node ``(j, i)`` enters the log-likelihood of the points through it only.
For a point on suffix ``s`` (the nodes above it), the layers above map the node's output ``h = Q(v - b)``
to ``z = T_s h - t_s`` (:func:`upper_maps`), so with ``w = Q b``, ``P_s = T_s^T T_s`` and
``e_s = T_s^T t_s`` the node's objective (eq. 11) is

    F(Q, w) = N log|det Q| - 1/2 sum_s [ tr(P_s Q M_s Q^T) - 2 (P_s w + e_s)^T Q S_s
                                        + N_s (w^T P_s w + 2 w^T e_s + |t_s|^2) ]

with ``N_s, S_s, M_s`` the points' count, sum and second moment at the node's input
(:mod:`lightning_modules.deep_gmm.stats`) and ``N = sum_s N_s``; ``F`` is exactly
``sum_n (log|det Q| - |z_n|^2 / 2)`` over those points. The bias is maximised in closed form for each ``Q``:
``(sum_s N_s P_s) w = sum_s (P_s Q S_s - N_s e_s)``, ``b = Q^{-1} w``; at that ``w`` the gradient in ``Q``
is

    dF/dQ = N Q^{-T} - sum_s P_s Q M_s + sum_s (P_s w + e_s) S_s^T,

entry ``[a, b]`` the derivative by ``Q[a, b]``. This is the **transpose of the paper's printed eq. 12**
(which lays the derivative out by ``Q^T``); read as the gradient of ``Q`` the printed form is wrong
whenever ``Q`` is not symmetric. Central finite differences of eq. 11 agree with the form above and not
with its transpose (``test_eq12_gradient_matches_finite_differences_of_eq11``).

The costly term ``sum_s P_s Q M_s`` costs ``2 U D^3`` per evaluation summed over the ``U`` suffixes
(the path-sum form); in the Kronecker form (eqs. 13-14) ``K = sum_s P_s (x) M_s`` (``D^2 x D^2``, built
once) gives it as ``K vec(Q)`` in ``D^4``, cheaper when ``U > D / 2`` and ``D`` is small enough to hold
``K``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from lightning_modules.deep_gmm.networks import DeepGMM
from lightning_modules.deep_gmm.stats import EMStatistics

FORMS = ("auto", "kronecker", "path_sum")
EMPTY_POLICIES = ("reinit", "prune")


def upper_maps(model: DeepGMM, j: int) -> tuple[Tensor, Tensor]:
    """The affine maps ``z = T_s h_j - t_s`` from layer ``j``'s output to ``z`` along every suffix ``s``.

    Returns:
        ``(T, t)``: float64 ``(U_j, D, D)`` and ``(U_j, D)``, suffixes flattened with layer ``j + 1`` most
        significant (``U_j = 1`` and ``T = I``, ``t = 0`` for the top layer).
    """
    eye = torch.eye(model.dim, dtype=torch.float64, device=model.q(0).device)
    big_t, small_t = eye[None], torch.zeros(1, model.dim, dtype=torch.float64, device=eye.device)
    for l in range(j + 1, model.depth):
        q, b = model.q(l), model.b(l)
        # h_l = Q (h_{l-1} - b) with h_{l-1} = T h_j - t  ->  T' = Q T, t' = Q (t + b)
        big_t = torch.einsum("ide,sef->sidf", q, big_t).reshape(-1, model.dim, model.dim)
        small_t = torch.einsum("ide,sie->sid", q, small_t[:, None, :] + b).reshape(-1, model.dim)
    return big_t, small_t


@dataclass
class NodeObjective:
    """Eq. 11 for one node and its gradient eq. 12, over the suffixes that reached it (float64 numpy).

    Attributes:
        count: ``N_s`` ``(U,)``; sums: ``S_s`` ``(U, D)``; moments: ``M_s`` ``(U, D, D)`` (regularised);
        precision: ``P_s = T_s^T T_s`` ``(U, D, D)``; shift: ``e_s = T_s^T t_s`` ``(U, D)``;
        shift_norm: ``|t_s|^2`` ``(U,)``; kronecker: ``K = sum_s P_s (x) M_s`` or ``None`` (path-sum form).
    """

    count: np.ndarray
    sums: np.ndarray
    moments: np.ndarray
    precision: np.ndarray
    shift: np.ndarray
    shift_norm: np.ndarray
    kronecker: np.ndarray | None = None

    @classmethod
    def build(cls, count: Tensor, sums: Tensor, moments: Tensor, big_t: Tensor, small_t: Tensor,
              reg_covar: float = 0.0, form: str = "auto", kronecker_max_dim: int = 64) -> NodeObjective:
        """From one node's statistics (``(U,)``, ``(U, D)``, ``(U, D, D)``) and the maps above it.

        ``reg_covar`` is added to the variance of every input direction (``M_s + reg N_s I``), as
        scikit-learn's ``reg_covar``; it keeps ``Q`` bounded when a node's points span fewer than ``D``
        directions.

        Raises:
            ValueError: on an unknown ``form``.
        """
        if form not in FORMS:
            raise ValueError(f"model.mstep_form must be one of {FORMS}, got {form!r}")
        keep = count > 0
        count, sums, moments = count[keep], sums[keep], moments[keep]
        big_t, small_t = big_t[keep], small_t[keep]
        dim = sums.shape[1]
        eye = torch.eye(dim, dtype=torch.float64, device=sums.device)
        moments = moments + reg_covar * count[:, None, None] * eye
        precision = big_t.transpose(1, 2) @ big_t
        objective = cls(count.cpu().numpy(), sums.cpu().numpy(), moments.cpu().numpy(),
                        precision.cpu().numpy(), torch.einsum("sed,se->sd", big_t, small_t).cpu().numpy(),
                        (small_t * small_t).sum(1).cpu().numpy())
        use_kron = form == "kronecker" or (form == "auto" and dim <= kronecker_max_dim
                                           and 2 * len(count) > dim)
        if use_kron:
            objective.kronecker = sum(np.kron(p, m) for p, m in zip(objective.precision, objective.moments))
        return objective

    @property
    def total(self) -> float:
        """``N``, the points through the node."""
        return float(self.count.sum())

    @functools.cached_property
    def gram(self) -> np.ndarray:
        """``sum_s N_s P_s`` ``(D, D)``, the matrix of the closed-form bias (independent of ``Q``)."""
        return np.einsum("s,sde->de", self.count, self.precision)

    def bias_term(self, q: np.ndarray) -> np.ndarray:
        """The closed-form ``w = Q b`` for this ``Q`` ``(D, D)``; ``(D,)``."""
        rhs = np.einsum("sde,se->d", self.precision, self.sums @ q.T) - self.count @ self.shift
        return np.linalg.solve(self.gram, rhs)

    def quadratic(self, q: np.ndarray) -> np.ndarray:
        """``sum_s P_s Q M_s`` ``(D, D)``, in the Kronecker form when ``K`` is built (eqs. 13-14)."""
        if self.kronecker is not None:
            return (self.kronecker @ q.reshape(-1)).reshape(q.shape)
        return np.matmul(self.precision @ q, self.moments).sum(0)

    def value_and_gradient(self, q: np.ndarray, w: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """``F(Q, w)`` (nats, eq. 11) and ``dF/dQ`` (the transpose of the paper's printed eq. 12, see the
        module docstring: entry ``[a, b]`` is the derivative by ``Q[a, b]``), by default at the closed-form
        ``w(Q)`` (where the gradient is also the total derivative of ``Q -> F(Q, w(Q))``).

        Args:
            q: ``(D, D)``.
            w: ``Q b`` ``(D,)``; ``None``: :meth:`bias_term`.

        Returns ``(-inf, 0)`` for a singular ``Q``.
        """
        sign, log_det = np.linalg.slogdet(q)
        if sign == 0 or not np.isfinite(log_det):
            return -math.inf, np.zeros_like(q)
        w = self.bias_term(q) if w is None else w
        quad = self.quadratic(q)
        pw_e = np.einsum("sde,e->sd", self.precision, w) + self.shift          # (U, D) P_s w + e_s
        q_s = self.sums @ q.T                                                   # (U, D) Q S_s
        value = (self.total * log_det - 0.5 * np.sum(q * quad) + np.sum(pw_e * q_s)
                 - 0.5 * np.sum(self.count * (np.einsum("sd,d->s", pw_e + self.shift, w) + self.shift_norm)))
        grad = self.total * np.linalg.inv(q).T - quad + pw_e.T @ self.sums
        return float(value), grad


@dataclass
class NodeResult:
    """One node's M-step: its objective before/after (nats), L-BFGS-B iterations, whether ``Q`` moved."""

    before: float
    after: float
    iterations: int
    accepted: bool


def optimize_node(objective: NodeObjective, q0: Tensor, iterations: int = 50) -> tuple[Tensor, Tensor, NodeResult]:
    """Maximise eq. 11 over ``Q`` with SciPy's L-BFGS-B from ``q0`` (bias in closed form at every step).

    The result is kept only if it raises the objective, so a node's update never lowers its eq. 11 (the
    regularised one when the moments hold ``reg_covar``, see :meth:`NodeObjective.build`).

    Args:
        objective: the node's :class:`NodeObjective`.
        q0: the current ``Q`` ``(D, D)``.
        iterations: L-BFGS-B's ``maxiter``.

    Returns:
        ``(Q, b, result)``: float64 ``(D, D)``, ``(D,)`` and the :class:`NodeResult`.
    """
    start = q0.detach().cpu().numpy().astype(np.float64)
    scale = max(objective.total, 1.0)

    def negative(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = objective.value_and_gradient(flat.reshape(start.shape))
        if not math.isfinite(value):
            return math.inf, np.zeros_like(flat)
        return -value / scale, -grad.reshape(-1) / scale

    before = -negative(start.reshape(-1))[0] * scale
    found = minimize(negative, start.reshape(-1), jac=True, method="L-BFGS-B",
                     options={"maxiter": iterations})
    after = -float(found.fun) * scale
    accepted = bool(math.isfinite(after) and after > before)
    q = found.x.reshape(start.shape) if accepted else start
    b = np.linalg.solve(q, objective.bias_term(q))
    to = {"dtype": torch.float64, "device": q0.device}
    return (torch.as_tensor(q, **to), torch.as_tensor(b, **to),
            NodeResult(before, after if accepted else before, int(found.nit), accepted))


def update_priors(model: DeepGMM, stats: EMStatistics, empty: str = "reinit") -> int:
    """``pi`` in closed form from the (summed) assignments: per path (joint) or per node (factorized).

    Paths (joint) or nodes (factorized) with no points get probability 0 under ``"prune"`` (then ``pi`` is
    the exact maximiser of the hard-EM objective at these assignments), or a pseudo-count of one point under
    ``"reinit"`` (they stay reachable, and each of the ``N`` points' ``log pi`` is ``log(1 + E / N)`` nats
    below the maximum for ``E`` empty paths, or summed over the layers' empty nodes).

    Returns:
        the number of paths (joint) or nodes (factorized) that had no points.
    """
    groups = ([stats.path_counts()] if model.path_prior == "joint"
              else [stats.node_counts(j) for j in range(model.depth)])
    empty_count = 0
    for j, counts in enumerate(groups):
        counts = counts.clone()
        missing = counts <= 0
        empty_count += int(missing.sum())
        if empty == "reinit":
            counts[missing] = 1.0
        log_pi = counts.log() - counts.sum().log()
        getattr(model, "log_pi" if model.path_prior == "joint" else f"log_pi_{j}").copy_(log_pi)
    return empty_count


@dataclass
class MStepReport:
    """What one :func:`m_step` did.

    Attributes:
        objective_gain: nats per point that the node updates added to the hard-EM objective (eq. 11 summed
            over the fitted nodes, with ``reg_covar``).
        lbfgs_iterations: L-BFGS-B iterations, mean over the fitted nodes.
        emptied: ``(layer, node)`` of every node no point reached: re-initialized (``empty="reinit"``) or
            left as it was (``"prune"``).
        starved: ``(layer, node, points)`` of every node reached by ``0 < points < min_points`` points: not
            fitted, its transform and bias kept.
        empty_paths: paths (joint prior) or nodes (factorized prior) with no point, see :func:`update_priors`.
        rejected_nodes: fitted nodes whose L-BFGS-B result did not raise their objective (kept as they were).
        factorized: the model's path prior is factorized (``empty_paths`` counts nodes).
        empty: the policy this M-step ran with (``model.empty``).
        min_points: the threshold this M-step ran with (``model.min_points``, resolved: ``D + 1`` for null).
    """

    objective_gain: float
    lbfgs_iterations: float
    emptied: list[tuple[int, int]]
    starved: list[tuple[int, int, int]]
    empty_paths: int
    rejected_nodes: int
    factorized: bool = False
    empty: str = "reinit"
    min_points: int = 0

    def metrics(self) -> dict[str, float]:
        """The numbers the module logs as ``em/<key>``: ``objective_gain``, ``lbfgs_iterations``,
        ``empty_nodes`` (``len(emptied)``), ``starved_nodes`` (``len(starved)``), ``empty_paths``,
        ``rejected_nodes``."""
        return {"objective_gain": self.objective_gain, "lbfgs_iterations": self.lbfgs_iterations,
                "empty_nodes": float(len(self.emptied)), "starved_nodes": float(len(self.starved)),
                "empty_paths": float(self.empty_paths), "rejected_nodes": float(self.rejected_nodes)}

    def describe(self) -> str | None:
        """One sentence on the emptied and the starved nodes and the empty paths, or ``None`` if there were
        none."""
        empty, min_points = self.empty, self.min_points
        parts = []
        if self.emptied:
            nodes = ", ".join(f"({j}, {i})" for j, i in self.emptied)
            fate = ("re-initialized as perturbed copies of their layer's busiest node" if empty == "reinit"
                    else "left as they were")
            parts.append(f"node(s) (layer, node) {nodes} held no patch and were {fate}")
        if self.starved:
            nodes = ", ".join(f"({j}, {i}) with {n}" for j, i, n in self.starved)
            parts.append(f"node(s) (layer, node) {nodes} patch(es), fewer than "
                         f"model.min_points={min_points}, were not fitted and keep their transforms")
        if self.empty_paths:
            fate = "keep a pseudo-count of one patch" if empty == "reinit" else "were pruned (pi = 0)"
            what = "node probabilities of the factorized prior" if self.factorized else "path(s)"
            parts.append(f"{self.empty_paths} {what} held no patch and {fate}")
        return "; ".join(parts) or None


@torch.no_grad()
def m_step(model: DeepGMM, stats: EMStatistics, *, iterations: int = 50, reg_covar: float = 1e-6,
           form: str = "auto", kronecker_max_dim: int = 64, min_points: int | None = None,
           empty: str = "reinit", generator: torch.Generator | None = None,
           optimize_q: bool = True) -> MStepReport:
    """One M-step (Sec. 3.2): for ``j = k-1 .. 0`` (top to bottom), every node of layer ``j`` by
    :func:`optimize_node` against the already updated layers above; then ``pi`` (:func:`update_priors`).

    A node reached by ``0 < n < min_points`` points (default ``min_points = D + 1``) is *starved*: it is not
    fitted and keeps its transform and bias, so the objective of its points does not change. A node reached
    by no point is *emptied*: under ``empty="reinit"`` it becomes a copy of its layer's most used node with
    ``Q`` perturbed by 1% noise, so it can take over part of that node's points at the next E-step (a
    split); under ``"prune"`` it is left as it is (its paths get ``pi = 0``). Neither changes the objective
    at the E-step's paths (no assigned path runs through an emptied node). So with ``reg_covar = 0`` and
    ``empty="prune"`` the M-step never lowers the hard-EM objective at the E-step's paths; under
    ``"reinit"`` it lowers it by at most what the empty paths' pseudo-counts take from the others' ``pi``,
    ``log(1 + E / N) <= E / N`` nats per point for ``E`` empty paths (factorized prior: empty nodes) and
    ``N`` points (:func:`update_priors`). With ``reg_covar > 0`` each node raises its own regularised
    eq. 11 (``M_s + reg N_s I``), not the plain objective.

    Args:
        model: the Deep GMM, updated in place.
        stats: the E-step's summed statistics (:class:`~lightning_modules.deep_gmm.stats.EMStatistics`).
        iterations: L-BFGS-B ``maxiter`` per node (``model.lbfgs_iterations``).
        reg_covar, form, kronecker_max_dim: see :meth:`NodeObjective.build`.
        min_points: the fewest points a node is fitted on (``model.min_points``; ``None``: ``D + 1``).
        empty: ``"reinit"`` or ``"prune"`` (``model.empty``).
        generator: the re-initialisation noise's random numbers.
        optimize_q: ``False`` keeps every ``Q`` (the SGD variant updates them per minibatch) and only
            updates biases and ``pi``.

    Returns:
        the :class:`MStepReport`.

    Raises:
        ValueError: on an unknown ``empty`` policy (``model.empty``) or ``form`` (``model.mstep_form``).
    """
    if empty not in EMPTY_POLICIES:
        raise ValueError(f"model.empty must be one of {EMPTY_POLICIES}, got {empty!r}")
    min_points = model.dim + 1 if min_points is None else min_points
    gain, fitted, iters, rejected = 0.0, 0, 0, 0
    emptied: list[tuple[int, int]] = []
    starved: list[tuple[int, int, int]] = []
    for j in reversed(range(model.depth)):
        big_t, small_t = upper_maps(model, j)
        counts = stats.node_counts(j)
        for i in range(model.components[j]):
            n = float(counts[i])
            if n <= 0:
                emptied.append((j, i))
                continue
            if n < min_points:
                starved.append((j, i, round(n)))
                continue
            objective = NodeObjective.build(stats.count[j][i], stats.sum[j][i], stats.moment[j][i], big_t,
                                            small_t, reg_covar, form, kronecker_max_dim)
            q = model.q(j)[i]
            if optimize_q:
                q, b, result = optimize_node(objective, q, iterations)
                gain += result.after - result.before
                iters += result.iterations
                rejected += not result.accepted
            else:
                b = torch.linalg.solve(q, torch.as_tensor(objective.bias_term(q.cpu().numpy()), dtype=q.dtype,
                                                          device=q.device))
            model.q(j)[i], model.b(j)[i] = q, b
            fitted += 1
        if empty == "reinit":
            donor = int(counts.argmax())
            for i in [i for layer, i in emptied if layer == j]:
                noise = torch.randn(model.dim, model.dim, generator=generator, dtype=torch.float64)
                model.q(j)[i] = model.q(j)[donor] * (1 + 0.01 * noise.to(model.q(j).device))
                model.b(j)[i] = model.b(j)[donor]
    empty_paths = update_priors(model, stats, empty)
    return MStepReport(gain / max(stats.total, 1.0), iters / max(fitted, 1), emptied, starved, empty_paths,
                       rejected, model.path_prior == "factorized", empty, min_points)
