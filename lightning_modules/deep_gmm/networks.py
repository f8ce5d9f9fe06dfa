"""The Deep Gaussian Mixture Model's density: layers of square linear transforms whose paths are mixture
components (van den Oord & Schrauwen 2014, "Factoring Variations in Natural Images with Deep Gaussian
Mixture Models", Sec. 2, eqs. 1-3).

Layers are numbered from the data: layer ``0`` is the bottom (it produces ``x``), layer ``k - 1`` the top
(it reads the standard normal ``z``). Layer ``j`` holds ``N_j`` nodes, each a transform
``A_{j,i}`` (``D x D``) and a bias ``b_{j,i}``. A path ``p = (i_0, ..., i_{k-1})`` picks one node per layer
and generates ``x = A_{0,i_0}(A_{1,i_1}(... A_{k-1,i_{k-1}} z + b_{k-1,i_{k-1}} ...) + b_{1,i_1}) + b_{0,i_0}``,
so ``p(x) = sum_p pi_p N(x | beta_p, Omega_p Omega_p^T)`` with ``Omega_p = A_{0,i_0} ... A_{k-1,i_{k-1}}``
(eq. 3). There are ``prod_j N_j`` paths from ``sum_j N_j`` transforms.

The parameters are kept as the inverses ``Q = A^{-1}`` (the form the M-step optimises, Sec. 3.2), so the
log-density of ``x`` along a path needs no inversion: ``h_{-1} = x``, ``h_j = Q_{j,i_j}(h_{j-1} - b_{j,i_j})``,
``z = h_{k-1}`` and ``log p(x, p) = log pi_p + sum_j log|det Q_{j,i_j}| - |z|^2 / 2 - D/2 log(2 pi)``.
Everything is float64: with ``D = 63`` the log-determinants and the sum over paths need it.

Path probabilities are ``joint`` (one ``pi_p`` per path, the paper) or ``factorized``
(``pi_p = prod_j pi_{j,i_j}``). Paths are flattened row-major with layer 0 most significant:
``p = ((i_0 N_1 + i_1) N_2 + i_2) ...``; :meth:`DeepGMM.path_index` and :meth:`DeepGMM.path_of` convert.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int

PATH_PRIORS = ("joint", "factorized")
#: bytes of float64 activations one chunk of :meth:`DeepGMM.all_path_log_joint` may hold
CHUNK_BYTES = 128 * 2**20


class DeepGMM(nn.Module):
    """A Deep GMM's parameters and its densities (no training logic; EM lives in the LightningModule).

    Args:
        dim: ``D``, the data dimension (63 for 8x8 patches with the last pixel dropped).
        components: ``(N_0, ..., N_{k-1})``, nodes per layer from the bottom (data side) to the top.
        path_prior: ``"joint"`` (one probability per path, eq. 3) or ``"factorized"`` (per layer).
        requires_grad: whether ``q_j`` and ``b_j`` require gradients. EM sets them in place, without
            autograd; a LightningModule sets ``True`` only so that DDP agrees to wrap it (and the model
            summary counts them), and updates them under ``torch.no_grad()``.

    Parameters (float64): ``q_j`` ``(N_j, D, D)`` the inverse transforms ``Q = A^{-1}`` and ``b_j``
    ``(N_j, D)`` the biases; buffers: ``log_pi`` ``(P,)`` (joint) or ``log_pi_j`` ``(N_j,)`` (factorized),
    in nats, where a probability of 0 (``-inf``) marks a pruned path or node.

    Raises:
        ValueError: on a non-positive ``dim`` or layer size, no layers, or an unknown path prior.
    """

    def __init__(self, dim: int, components: Sequence[int], path_prior: str = "joint",
                 requires_grad: bool = False) -> None:
        super().__init__()
        self.dim = as_int(dim, "dim", "DeepGMM")
        self.components = tuple(as_int(n, "components", "DeepGMM") for n in components)
        if not self.components:
            raise ValueError("DeepGMM: components must name at least one layer, got []")
        if path_prior not in PATH_PRIORS:
            raise ValueError(f"DeepGMM: path_prior must be one of {PATH_PRIORS}, got {path_prior!r}")
        self.path_prior = path_prior
        eye = torch.eye(self.dim, dtype=torch.float64)
        for j, n in enumerate(self.components):
            self.register_parameter(f"q_{j}", nn.Parameter(eye.repeat(n, 1, 1), requires_grad=requires_grad))
            self.register_parameter(f"b_{j}", nn.Parameter(torch.zeros(n, self.dim, dtype=torch.float64),
                                                           requires_grad=requires_grad))
            if path_prior == "factorized":
                self.register_buffer(f"log_pi_{j}", torch.full((n,), -math.log(n), dtype=torch.float64))
        if path_prior == "joint":
            self.register_buffer("log_pi", torch.full((self.num_paths,), -math.log(self.num_paths),
                                                      dtype=torch.float64))

    # ----------------------------------------------------------------------------------------- structure
    @property
    def depth(self) -> int:
        """``k``, the number of layers."""
        return len(self.components)

    @property
    def num_paths(self) -> int:
        """``prod_j N_j``, the number of mixture components."""
        return math.prod(self.components)

    def q(self, j: int) -> Tensor:
        """Layer ``j``'s inverse transforms ``Q_{j,i}``, ``(N_j, D, D)``."""
        return getattr(self, f"q_{j}")

    def b(self, j: int) -> Tensor:
        """Layer ``j``'s biases ``b_{j,i}``, ``(N_j, D)``."""
        return getattr(self, f"b_{j}")

    def num_parameters(self) -> int:
        """Free parameters: ``sum_j N_j (D^2 + D)`` plus the path probabilities (``P - 1`` joint,
        ``sum_j (N_j - 1)`` factorized)."""
        weights = sum(n * (self.dim**2 + self.dim) for n in self.components)
        if self.path_prior == "joint":
            return weights + self.num_paths - 1
        return weights + sum(n - 1 for n in self.components)

    def path_index(self, paths: Tensor) -> Tensor:
        """Flat path indices ``(B,)`` of node choices ``paths`` ``(B, k)`` (layer 0 most significant)."""
        flat = torch.zeros(paths.shape[0], dtype=torch.long, device=paths.device)
        for j, n in enumerate(self.components):
            flat = flat * n + paths[:, j]
        return flat

    def path_of(self, flat: Tensor) -> Tensor:
        """Node choices ``(B, k)`` of flat path indices ``flat`` ``(B,)``; inverse of :meth:`path_index`."""
        out = []
        for n in reversed(self.components):
            out.append(flat % n)
            flat = torch.div(flat, n, rounding_mode="floor")
        return torch.stack(out[::-1], dim=1)

    # -------------------------------------------------------------------------------------------- priors
    def log_path_prior(self, paths: Tensor) -> Tensor:
        """``log pi_p`` (nats) of node choices ``paths`` ``(B, k)`` -> ``(B,)``."""
        if self.path_prior == "joint":
            return self.log_pi[self.path_index(paths)]
        return sum(getattr(self, f"log_pi_{j}")[paths[:, j]] for j in range(self.depth))

    def all_log_path_priors(self) -> Tensor:
        """``log pi_p`` of every path, ``(P,)`` in flat order."""
        if self.path_prior == "joint":
            return self.log_pi
        total = torch.zeros((), dtype=torch.float64, device=self.q(0).device)
        for j, n in enumerate(self.components):
            total = total.unsqueeze(-1) + getattr(self, f"log_pi_{j}")
        return total.reshape(-1)

    def log_dets(self, j: int) -> Tensor:
        """``log|det Q_{j,i}|`` of every node of layer ``j``, ``(N_j,)``.

        Raises:
            ValueError: if a transform is singular (names the layer and node): its density is undefined.
        """
        log_dets = torch.linalg.slogdet(self.q(j))[1]
        bad = ~torch.isfinite(log_dets)
        if bad.any():
            raise ValueError(f"DeepGMM: transform Q_{j},{int(bad.nonzero()[0])} is singular (log|det| = "
                             f"{float(log_dets[bad][0])}); its paths have no density")
        return log_dets

    def all_path_log_dets(self) -> Tensor:
        """``sum_j log|det Q_{j,i_j}|`` of every path, ``(P,)`` in flat order."""
        total = torch.zeros((), dtype=torch.float64, device=self.q(0).device)
        for j in range(self.depth):
            total = total.unsqueeze(-1) + self.log_dets(j)
        return total.reshape(-1)

    # ----------------------------------------------------------------------------------------- densities
    def check(self, x: Tensor, source: str = "x") -> Tensor:
        """``x`` as float64 ``(B, D)`` on the model's device.

        Raises:
            ValueError: if ``x`` is not ``(B, D)`` with this model's ``D`` or holds NaN or infinite values
                (names ``source``).
        """
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{source}: the Deep GMM expects patches of shape (B, {self.dim}), got "
                             f"{tuple(x.shape)} (data.patch_size must match model.dim)")
        x = x.to(device=self.q(0).device, dtype=torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError(f"{source}: {int((~torch.isfinite(x)).sum())} NaN or infinite values in the patches")
        return x

    def apply_layers(self, y: Tensor, paths: Tensor, layers: Sequence[int]) -> Tensor:
        """Push ``y`` ``(B, D)`` through ``layers`` (in order), each point through its own node:
        ``y <- Q_{j,paths[:, j]} (y - b_{j,paths[:, j]})``. Returns ``(B, D)``."""
        for j in layers:
            q, b, out = self.q(j), self.b(j), torch.empty_like(y)
            for i in range(self.components[j]):
                rows = (paths[:, j] == i).nonzero().squeeze(1)
                if rows.numel():
                    out[rows] = (y[rows] - b[i]) @ q[i].T
            y = out
        return y

    def log_joint(self, x: Tensor, paths: Tensor) -> Tensor:
        """``log pi_p + log N(x | beta_p, Omega_p Omega_p^T)`` (nats) of each point along its own path.

        Args:
            x: float ``(B, D)``.
            paths: int64 ``(B, k)`` node choices.

        Returns:
            float64 ``(B,)``.
        """
        z = self.apply_layers(x, paths, range(self.depth))
        log_det = sum(self.log_dets(j)[paths[:, j]] for j in range(self.depth))
        return self.log_path_prior(paths) + log_det - 0.5 * (z * z).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)

    def all_path_log_joint(self, x: Tensor) -> Tensor:
        """``log pi_p + log N(x | beta_p, Omega_p Omega_p^T)`` (nats) of every point on every path, by
        pushing all points through the tree of paths (``sum_j prod_{l<=j} N_l`` transforms per point).

        Args:
            x: float ``(B, D)``.

        Returns:
            float64 ``(B, P)``, paths in flat order.
        """
        x = self.check(x)
        chunk = max(1, CHUNK_BYTES // (8 * self.dim * self.num_paths * 2))
        const = self.all_log_path_priors() + self.all_path_log_dets() - 0.5 * self.dim * math.log(2 * math.pi)
        out = []
        for start in range(0, x.shape[0], chunk):
            h = x[start:start + chunk, None, :]
            for j in range(self.depth):
                # (B, prefixes, 1, D) - (N_j, D) -> (B, prefixes, N_j, D), then each node's Q
                h = torch.einsum("bpie,ide->bpid", h[:, :, None, :] - self.b(j), self.q(j))
                h = h.reshape(h.shape[0], -1, self.dim)
            out.append(const - 0.5 * (h * h).sum(-1))
        return torch.cat(out)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` (nats per point), the exact sum over all paths (eq. 3) by logsumexp.

        Args:
            x: float ``(B, D)``.

        Returns:
            float64 ``(B,)``.

        Raises:
            ValueError: on a wrong shape or non-finite values (see :meth:`check`), or a singular transform.
        """
        return torch.logsumexp(self.all_path_log_joint(x), dim=1)

    # ---------------------------------------------------------------------------------------- generation
    def transforms(self, j: int) -> Tensor:
        """Layer ``j``'s forward transforms ``A_{j,i} = Q_{j,i}^{-1}``, ``(N_j, D, D)``.

        Raises:
            ValueError: if a transform is singular (names the layer and node).
        """
        q = self.q(j)
        singular = torch.linalg.matrix_rank(q) < self.dim
        if singular.any():
            raise ValueError(f"DeepGMM: transform Q_{j},{int(singular.nonzero()[0])} is singular")
        return torch.linalg.inv(q)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` points: a path from ``pi``, ``z ~ N(0, I)``, then ``x = Omega_p z + beta_p``.

        Returns:
            ``(x, paths)``: float64 ``(n, D)`` and int64 ``(n, k)``.
        """
        device = self.q(0).device
        probs = self.all_log_path_priors().exp()
        flat = torch.multinomial(probs.cpu(), n, replacement=True, generator=generator).to(device)
        paths = self.path_of(flat)
        h = torch.randn(n, self.dim, generator=generator, dtype=torch.float64).to(device)
        for j in reversed(range(self.depth)):
            a, b, out = self.transforms(j), self.b(j), torch.empty_like(h)
            for i in range(self.components[j]):
                rows = (paths[:, j] == i).nonzero().squeeze(1)
                if rows.numel():
                    out[rows] = h[rows] @ a[i].T + b[i]
            h = out
        return h, paths

    def expanded(self) -> tuple[Tensor, Tensor, Tensor]:
        """The equivalent shallow GMM: every path's weight, mean and covariance (eq. 3).

        Returns:
            ``(log_pi, means, covariances)``: ``(P,)``, ``(P, D)``, ``(P, D, D)``, paths in flat order.
        """
        omega = torch.eye(self.dim, dtype=torch.float64, device=self.q(0).device)[None]
        beta = torch.zeros(1, self.dim, dtype=torch.float64, device=omega.device)
        for j in range(self.depth):
            a, b = self.transforms(j), self.b(j)
            # path so far maps h_j to x: x = omega h_j + beta; h_j = A_j h_{j+1} + b_j
            beta = (beta[:, None, :] + torch.einsum("pde,ie->pid", omega, b)).reshape(-1, self.dim)
            omega = torch.einsum("pde,ief->pidf", omega, a).reshape(-1, self.dim, self.dim)
        return self.all_log_path_priors(), beta, omega @ omega.transpose(1, 2)
