"""Deep GMM trained by EM as a LightningModule (van den Oord & Schrauwen 2014, "Factoring Variations in
Natural Images with Deep Gaussian Mixture Models", Sec. 3)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from pytorch_lightning import LightningModule
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from lightning_modules.deep_gmm.estep import (
    full_search,
    hashed_paths,
    heuristic_search,
    projection_paths,
    responsibilities,
)
from lightning_modules.deep_gmm.mstep import EMPTY_POLICIES, FORMS, NodeObjective, m_step, upper_maps
from lightning_modules.deep_gmm.networks import DeepGMM
from lightning_modules.deep_gmm.stats import EMStatistics
from lightning_modules.loading import LoadsFromCheckpoint

EM_KINDS = ("hard", "soft")
SEARCHES = ("heuristic", "full")
MSTEPS = ("lbfgsb", "sgd")
INITS = ("projection", "random")


class DeepGMMModule(LoadsFromCheckpoint, LightningModule):
    """A Deep GMM whose training epoch is one EM iteration (manual optimization; EM sets the parameters,
    a placeholder optimizer only keeps Lightning's step count, see :meth:`configure_optimizers`).

    Each training batch ``(x, index)`` (``x`` float ``(B, D)`` patches, ``index`` ``(B,)`` their positions
    in the training set) goes through the E-step and adds its sufficient statistics; at the end of the
    epoch the statistics are summed over processes (the Lightning strategy's all-reduce: the distribution
    over machines that the paper notes for both steps in Sec. 3) and the M-step runs (Sec. 3.2).
    Validation runs before the M-step, so ``train/log_likelihood`` and ``val/log_likelihood`` of epoch ``t``
    describe the same parameters.

    E-step (Sec. 3.1), ``em="hard"`` (default): each point's best path by the coordinate-ascent heuristic
    (:func:`~lightning_modules.deep_gmm.estep.heuristic_search`: one pass from its previous path, two from a
    random path, ``3 sum_j N_j`` path evaluations) or ``estep="full"`` (all paths). ``em="soft"``: every path
    weighted by its responsibility (small networks). The first epoch assigns paths from the data
    (``init="projection"``: seeded random directions, :func:`~lightning_modules.deep_gmm.estep.projection_paths`;
    ``"random"``: hashed random paths) and the M-step builds the first parameters from them.

    M-step: ``mstep="lbfgsb"`` (default) fits each node's ``Q = A^{-1}`` by L-BFGS-B, layer by layer from
    the top, the biases and ``pi`` in closed form (:func:`~lightning_modules.deep_gmm.mstep.m_step`);
    ``mstep="sgd"`` instead takes one gradient step of eq. 12 per minibatch on every node, layer by layer
    from the top (``sgd_lr``), with the biases and ``pi`` in closed form at the end of the epoch.

    Logged (every logger): ``train/log_likelihood``, ``val/log_likelihood``, ``test/log_likelihood``
    (average ``log p(x)`` over all paths, nats per patch), ``train/objective`` (hard EM: the average
    ``log pi_p + log N(x | path)`` of the paths this epoch's E-step assigned, at the parameters it ran with;
    soft EM: ``log p(x)``), ``em/switch_rate`` (share of points whose random start won, Fig. 2c),
    ``em/objective_gain``, ``em/lbfgs_iterations``, ``em/empty_nodes`` (no point: re-initialized or left),
    ``em/starved_nodes`` (``0 < n < min_points`` points: not fitted, transform kept), ``em/empty_paths``,
    ``em/rejected_nodes``, ``em/estep_seconds``, ``em/mstep_seconds``; a line names the emptied and the
    starved nodes of every M-step that had any.

    What hard EM guarantees (``mstep="lbfgsb"``): the E-step's warm start makes each point's new path at
    least as good as its old one at the new parameters (not in the first epoch after a resume, which has no
    old paths), and the M-step changes no node's transform for the worse at the old paths (starved nodes
    keep theirs, emptied nodes carry no point). So with
    ``reg_covar=0`` and ``empty="prune"``, ``train/objective`` never decreases from one epoch to the next;
    under ``empty="reinit"`` it can fall by at most ``E / N`` nats (the pseudo-counts of ``E`` empty paths
    among ``N`` points, :func:`~lightning_modules.deep_gmm.mstep.update_priors`), and with ``reg_covar > 0``
    each node raises its regularised eq. 11, not this objective. ``mstep="sgd"`` guarantees nothing.

    Args:
        dim: ``D`` (``data.dim``: 63 for 8x8 patches).
        components: nodes per layer from the data side up, e.g. ``[8, 4, 2]`` (64 paths).
        path_prior: ``"joint"`` (the paper) or ``"factorized"``.
        em: ``"hard"`` or ``"soft"``.
        estep: ``"heuristic"`` or ``"full"`` (hard EM).
        warm_passes, random_passes: coordinate-ascent passes from the previous and the random path (1, 2).
        mstep: ``"lbfgsb"`` or ``"sgd"``.
        lbfgs_iterations: L-BFGS-B ``maxiter`` per node and M-step.
        mstep_form: ``"auto"``, ``"kronecker"`` (eqs. 13-14) or ``"path_sum"``.
        kronecker_max_dim: ``auto`` uses the Kronecker form only up to this ``D``.
        reg_covar: added to the input variance of every node (scikit-learn's ``reg_covar``).
        min_points: nodes reached by ``0 < n < min_points`` points are not fitted and keep their transforms
            (default ``D + 1``).
        empty: ``"reinit"`` (nodes no point reached become perturbed copies of their layer's most used node,
            empty paths keep a pseudo-count) or ``"prune"`` (such nodes stay as they are, empty paths get
            ``pi = 0``).
        init: ``"projection"`` or ``"random"``.
        sgd_lr: step size of the SGD M-step (on the per-point objective).
        train_log_likelihood: also compute the exact train log-likelihood (all paths) in the E-step.
        seed: seeds the random starts and the initial directions (``${seed}``).
        monitor: the metric checkpoints rank by; monitor_mode: ``"max"`` for log-likelihoods.

    Raises:
        ValueError: on an unknown option (names the ``model.`` key), or patches whose dimension is not
            ``dim`` / that hold NaN or infinite values (at the first batch).
    """

    def __init__(self, dim: int = 63, components: Sequence[int] = (8, 4, 2), path_prior: str = "joint",
                 em: str = "hard", estep: str = "heuristic", warm_passes: int = 1, random_passes: int = 2,
                 mstep: str = "lbfgsb", lbfgs_iterations: int = 50, mstep_form: str = "auto",
                 kronecker_max_dim: int = 64, reg_covar: float = 1e-6, min_points: int | None = None,
                 empty: str = "reinit", init: str = "projection", sgd_lr: float = 0.01,
                 train_log_likelihood: bool = True, seed: int = 0, monitor: str = "val/log_likelihood",
                 monitor_mode: str = "max") -> None:
        super().__init__()
        components = [int(n) for n in components]  # plain lists: checkpoints load with weights_only
        for key, value, allowed in (("em", em, EM_KINDS), ("estep", estep, SEARCHES), ("mstep", mstep, MSTEPS),
                                    ("mstep_form", mstep_form, FORMS), ("empty", empty, EMPTY_POLICIES),
                                    ("init", init, INITS)):
            if value not in allowed:
                raise ValueError(f"model.{key} must be one of {allowed}, got {value!r}")
        if em == "soft" and mstep == "sgd":
            raise ValueError("model.mstep=sgd is implemented for hard EM only (model.em=hard)")
        self.save_hyperparameters(logger=False)
        self.hparams.components = components
        self.automatic_optimization = False
        self.gmm = DeepGMM(dim, components, path_prior, requires_grad=True)
        self.register_buffer("iterations_done", torch.zeros((), dtype=torch.long))
        self._paths: Tensor | None = None  # (N_train, k) previous E-step's paths, -1: none yet
        self._stats: EMStatistics | None = None
        self._estep_seconds = 0.0

    # --------------------------------------------------------------------------------------- utilities
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """A placeholder: EM sets the parameters itself (L-BFGS-B in the M-step, or :meth:`_sgd_update`).

        Lightning counts ``global_step`` by optimizer steps, and checkpointing skips a save when it has not
        moved; so every training batch ends with this optimizer's ``step()``, a no-op (no parameter has a
        gradient), and ``global_step`` counts batches as in any other method.
        """
        return torch.optim.SGD(self.gmm.parameters(), lr=0.0)

    def num_parameters(self) -> int:
        """The Deep GMM's free parameters (see :meth:`DeepGMM.num_parameters`)."""
        return self.gmm.num_parameters()

    def _reduce_sum(self, tensor: Tensor) -> Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="sum") if self.trainer.world_size > 1 else tensor

    def _previous_paths(self, index: Tensor) -> Tensor:
        """The previous E-step's paths of these points, ``-1`` rows where there is none (a resumed run)."""
        previous = torch.full((index.shape[0], self.gmm.depth), -1, dtype=torch.long)
        if self._paths is not None:
            known = index.cpu() < self._paths.shape[0]
            previous[known] = self._paths[index.cpu()[known]]
        return previous.to(index.device)

    def _store_paths(self, index: Tensor, paths: Tensor) -> None:
        size = int(index.max()) + 1
        if self._paths is None or self._paths.shape[0] < size:
            grown = torch.full((size, self.gmm.depth), -1, dtype=torch.long)
            if self._paths is not None:
                grown[: self._paths.shape[0]] = self._paths
            self._paths = grown
        self._paths[index.cpu()] = paths.cpu()

    # -------------------------------------------------------------------------------------------- train
    def on_train_epoch_start(self) -> None:
        """A new EM iteration: empty sufficient statistics and totals."""
        self._stats = EMStatistics(self.gmm)
        # points, sum of log p(x), sum of the E-step objective, points whose random start won
        self._totals = torch.zeros(4, dtype=torch.float64, device=self.device)
        self._assigned: list[tuple[Tensor, Tensor]] = []   # this process's (index, paths) of this epoch
        self._estep_seconds = 0.0

    @torch.no_grad()
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """E-step on one batch and its sufficient statistics (plus, for ``mstep="sgd"``, one update)."""
        x, index = batch
        x = self.gmm.check(x, "training batch")
        start = time.perf_counter()
        hp, seed = self.hparams, int(self.hparams.seed) * 1_000_003 + int(self.iterations_done)
        n = x.shape[0]
        log_prob = None
        if int(self.iterations_done) == 0:
            paths = (projection_paths(self.gmm, x, int(hp.seed)) if hp.init == "projection"
                     else hashed_paths(self.gmm, index, seed))
            objective = self.gmm.log_joint(x, paths)
        elif hp.em == "soft":
            gamma, log_prob = responsibilities(self.gmm, x)
            self._stats.add_soft(self.gmm, x, gamma)
            objective = log_prob
            paths = None
        elif hp.estep == "full":
            paths, objective = full_search(self.gmm, x)
        else:
            paths, objective, switched = heuristic_search(
                self.gmm, x, self._previous_paths(index), hashed_paths(self.gmm, index, seed),
                hp.warm_passes, hp.random_passes)
            self._totals[3] += switched.sum()
        if paths is not None:
            self._store_paths(index, paths)
            self._assigned.append((index, paths))
            if hp.mstep == "sgd" and int(self.iterations_done) > 0:
                self._sgd_update(x, paths)
            self._stats.add_hard(self.gmm, x, paths)
        self._estep_seconds += time.perf_counter() - start
        if log_prob is None and hp.train_log_likelihood:
            log_prob = self.gmm.log_prob(x)
        self._totals += torch.stack([torch.tensor(float(n), dtype=torch.float64, device=x.device),
                                     log_prob.sum() if log_prob is not None else torch.zeros_like(x[0, 0]),
                                     objective.sum(), torch.zeros_like(x[0, 0])])
        self.optimizers().step()

    def _sgd_update(self, x: Tensor, paths: Tensor) -> None:
        """One ascent step of eq. 12 (per point) on every node, layer by layer from the top."""
        batch = EMStatistics(self.gmm)
        batch.add_hard(self.gmm, x, paths)
        batch.reduce(self._reduce_sum)
        total = max(batch.total, 1.0)
        for j in reversed(range(self.gmm.depth)):
            big_t, small_t = upper_maps(self.gmm, j)
            for i in range(self.gmm.components[j]):
                if float(batch.node_counts(j)[i]) == 0:
                    continue
                objective = NodeObjective.build(batch.count[j][i], batch.sum[j][i], batch.moment[j][i], big_t,
                                                small_t, self.hparams.reg_covar, self.hparams.mstep_form,
                                                self.hparams.kronecker_max_dim)
                q = self.gmm.q(j)[i]
                _, grad = objective.value_and_gradient(q.cpu().numpy())
                self.gmm.q(j)[i] = q + self.hparams.sgd_lr * torch.as_tensor(grad / total, dtype=q.dtype,
                                                                               device=q.device)

    @torch.no_grad()
    def on_train_epoch_end(self) -> None:
        """Sum the statistics over processes and run the M-step.

        The train metrics are logged from the summed totals here rather than with ``sync_dist`` in
        ``training_step``: rank 0's progress bar would sync those in its own ``on_train_epoch_end`` (before
        this hook), out of step with the other ranks' all-reduce below.
        """
        hp = self.hparams
        stats = self._stats.reduce(self._reduce_sum)
        count, log_prob, objective, switched = (float(v) for v in self._reduce_sum(self._totals))
        if hp.train_log_likelihood or hp.em == "soft":
            self.log("train/log_likelihood", log_prob / count, prog_bar=True)
        self.log("train/objective", objective / count)
        if int(self.iterations_done) > 0 and hp.em == "hard" and hp.estep == "heuristic":
            self.log("em/switch_rate", switched / count)
        start = time.perf_counter()
        report = m_step(self.gmm, stats, iterations=hp.lbfgs_iterations, reg_covar=hp.reg_covar,
                        form=hp.mstep_form, kronecker_max_dim=hp.kronecker_max_dim, min_points=hp.min_points,
                        empty=hp.empty, optimize_q=hp.mstep == "lbfgsb" or int(self.iterations_done) == 0,
                        generator=torch.Generator().manual_seed(int(hp.seed) + int(self.iterations_done)))
        logs = report.metrics()
        logs["mstep_seconds"] = time.perf_counter() - start
        logs["estep_seconds"] = self._estep_seconds
        message = report.describe()
        if message:
            rank_zero_info(f"Deep GMM, EM iteration {int(self.iterations_done)}: {message}")
        for key, value in logs.items():
            self.log(f"em/{key}", float(value))
        self._share_paths()
        self.iterations_done += 1
        self._stats = None

    def _share_paths(self) -> None:
        """Under DDP, every process learns every point's path: the sampler may hand a point to another
        process next epoch, whose warm start must be the same as in a single process."""
        if self.trainer.world_size == 1 or not self._assigned:
            return
        index = torch.cat([i for i, _ in self._assigned])
        paths = torch.cat([p for _, p in self._assigned])
        gathered_index = self.trainer.strategy.all_gather(index).reshape(-1)
        gathered_paths = self.trainer.strategy.all_gather(paths).reshape(-1, self.gmm.depth)
        self._store_paths(gathered_index, gathered_paths)
        self._assigned = []

    # ------------------------------------------------------------------------------------- evaluation
    def _log_likelihood(self, batch: tuple[Tensor, Tensor], split: str) -> None:
        x = self.gmm.check(batch[0], f"{split} batch")
        self.log(f"{split}/log_likelihood", self.gmm.log_prob(x).mean(), on_step=False, on_epoch=True,
                 prog_bar=split == "val", sync_dist=True, batch_size=x.shape[0])

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``val/log_likelihood``: average ``log p(x)`` (nats per patch) over all paths."""
        self._log_likelihood(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``test/log_likelihood``: average ``log p(x)`` (nats per patch) over all paths."""
        self._log_likelihood(batch, "test")
