"""The Deep GMM's density, E-step, M-step and EM (van den Oord & Schrauwen 2014), on small networks."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from lightning_modules.deep_gmm.estep import (
    coordinate_pass,
    full_search,
    hashed_paths,
    heuristic_search,
    projection_paths,
    responsibilities,
)
from lightning_modules.deep_gmm.mstep import NodeObjective, m_step, upper_maps
from lightning_modules.deep_gmm.networks import DeepGMM
from lightning_modules.deep_gmm.shallow_gmm import components_for_parameters, gmm_parameter_count
from lightning_modules.deep_gmm.stats import EMStatistics

pytestmark = pytest.mark.usefixtures("single_thread")
F64 = torch.float64


def random_model(dim: int = 4, components=(2, 3, 2), prior: str = "joint", seed: int = 0) -> DeepGMM:
    """A Deep GMM with random well-conditioned transforms, biases and path probabilities."""
    g = torch.Generator().manual_seed(seed)
    model = DeepGMM(dim, components, prior)
    for j, n in enumerate(components):
        model.q(j).copy_(torch.eye(dim, dtype=F64) + 0.3 * torch.randn(n, dim, dim, generator=g, dtype=F64))
        model.b(j).copy_(torch.randn(n, dim, generator=g, dtype=F64))
        if prior == "factorized":
            getattr(model, f"log_pi_{j}").copy_(torch.log_softmax(torch.randn(n, generator=g, dtype=F64), 0))
    if prior == "joint":
        model.log_pi.copy_(torch.log_softmax(torch.randn(model.num_paths, generator=g, dtype=F64), 0))
    return model


def clustered(n: int = 1200, dim: int = 4, seed: int = 0) -> torch.Tensor:
    """Three elongated Gaussian clusters."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for c in range(3):
        mix = torch.randn(dim, dim, generator=g, dtype=F64)
        parts.append(torch.randn(n // 3, dim, generator=g, dtype=F64) @ mix + 4.0 * c)
    return torch.cat(parts)


@pytest.mark.parametrize("prior", ["joint", "factorized"])
def test_log_density_equals_the_expanded_shallow_gmm(prior):
    """Eq. 3: the deep model is the GMM of all its paths; checked against SciPy's multivariate normal."""
    model = random_model(prior=prior)
    x = 2 * torch.randn(40, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    log_pi, means, covs = model.expanded()
    assert len(log_pi) == 12 and torch.allclose(log_pi.exp().sum(), torch.tensor(1.0, dtype=F64))
    dens = sum(math.exp(log_pi[p]) * multivariate_normal(means[p].numpy(), covs[p].numpy()).pdf(x.numpy())
               for p in range(12))
    np.testing.assert_allclose(model.log_prob(x).numpy(), np.log(dens), rtol=0, atol=1e-9)
    paths = model.path_of(torch.arange(12).repeat(4)[:40])
    assert torch.equal(model.path_index(paths), torch.arange(12).repeat(4)[:40])
    one = model.all_path_log_joint(x).gather(1, model.path_index(paths)[:, None]).squeeze(1)
    torch.testing.assert_close(model.log_joint(x, paths), one, rtol=0, atol=1e-10)


def test_log_density_is_stable_in_63_dimensions():
    """D = 63 with tiny patch-like variances: finite, and equal to SciPy's for a one-node model."""
    g = torch.Generator().manual_seed(0)
    model = DeepGMM(63, (1,))
    a = 0.02 * torch.randn(63, 63, generator=g, dtype=F64)
    model.q(0).copy_(torch.linalg.inv(a))
    x = (torch.randn(20, 63, generator=g, dtype=F64) @ a.T)
    expected = multivariate_normal(np.zeros(63), (a @ a.T).numpy()).logpdf(x.numpy())
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-10)
    assert expected.mean() > 40  # a density far above 1: the log-determinant dominates


def test_sampling_matches_the_mixture_moments():
    model = random_model(dim=3, components=(2, 2))
    x, paths = model.sample(40000, generator=torch.Generator().manual_seed(0))
    log_pi, means, covs = model.expanded()
    pi = log_pi.exp()
    mean = (pi[:, None] * means).sum(0)
    second = (pi[:, None, None] * (covs + means[:, :, None] * means[:, None, :])).sum(0)
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(x.T @ x / len(x), second, atol=0.15, rtol=0.02)
    counts = torch.bincount(model.path_index(paths), minlength=4).to(F64) / len(x)
    torch.testing.assert_close(counts, pi, atol=0.01, rtol=0)


@pytest.mark.parametrize("form", ["kronecker", "path_sum"])
def test_eq12_gradient_matches_finite_differences_of_eq11(form):
    model = random_model()
    x = 2 * torch.randn(300, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    paths, _ = full_search(model, x)
    stats = EMStatistics(model)
    stats.add_hard(model, x, paths)
    j, i = 1, 2
    big_t, small_t = upper_maps(model, j)
    objective = NodeObjective.build(stats.count[j][i], stats.sum[j][i], stats.moment[j][i], big_t, small_t,
                                    form=form)
    assert (objective.kronecker is not None) == (form == "kronecker")
    q0 = model.q(j)[i].numpy()
    value, grad = objective.value_and_gradient(q0)
    numeric = np.zeros_like(q0)
    for a in range(4):
        for b in range(4):
            step = np.zeros_like(q0)
            step[a, b] = 1e-6
            numeric[a, b] = (objective.value_and_gradient(q0 + step)[0]
                             - objective.value_and_gradient(q0 - step)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)
    # the paper's printed eq. 12 is the transpose of this gradient: it does not match the finite differences
    assert np.abs(grad.T - numeric).max() > 1e3 * np.abs(grad - numeric).max() + 1.0
    # eq. 11 at the node's current bias is exactly sum_n (log|det Q| - |z_n|^2 / 2) over its points
    through = paths[:, j] == i
    z = model.apply_layers(x[through], paths[through], range(model.depth))
    direct = float((model.log_dets(j)[i] - 0.5 * (z * z).sum(1)).sum())
    at_bias, _ = objective.value_and_gradient(q0, w=(model.q(j)[i] @ model.b(j)[i]).numpy())
    assert at_bias == pytest.approx(direct, rel=1e-10)
    assert value >= at_bias  # the closed-form bias is the maximiser


def test_both_mstep_forms_agree():
    model = random_model()
    x = 2 * torch.randn(300, 4, generator=torch.Generator().manual_seed(3), dtype=F64)
    paths, _ = full_search(model, x)
    stats = EMStatistics(model)
    stats.add_hard(model, x, paths)
    big_t, small_t = upper_maps(model, 0)
    values = [NodeObjective.build(stats.count[0][1], stats.sum[0][1], stats.moment[0][1], big_t, small_t,
                                  form=f).value_and_gradient(model.q(0)[1].numpy()) for f in ("kronecker", "path_sum")]
    assert values[0][0] == pytest.approx(values[1][0], rel=1e-12)
    np.testing.assert_allclose(values[0][1], values[1][1], rtol=1e-10, atol=1e-10)


def run_hard_em(model: DeepGMM, x: torch.Tensor, iterations: int, estep: str = "heuristic", empty: str = "prune",
                min_points: int | None = None):
    """Hard EM as the module runs it (``reg_covar=0``); returns [(E-step objective, objective after the
    M-step)] in nats, the last E-step's paths, and per M-step its report and the ``(layer, node)`` pairs
    whose ``Q`` or ``b`` it changed."""
    index, previous, trace, steps = torch.arange(len(x)), None, [], []
    for it in range(iterations):
        if it == 0:
            paths = projection_paths(model, x, 0)
        elif estep == "full":
            paths, _ = full_search(model, x)
        else:
            paths, _, _ = heuristic_search(model, x, previous, hashed_paths(model, index, it))
        before = float(model.log_joint(x, paths).sum())
        stats = EMStatistics(model)
        stats.add_hard(model, x, paths)
        old = [(model.q(j).clone(), model.b(j).clone()) for j in range(model.depth)]
        report = m_step(model, stats, reg_covar=0.0, empty=empty, min_points=min_points,
                        generator=torch.Generator().manual_seed(it))
        moved = {(j, i) for j, (q, b) in enumerate(old) for i in range(len(q))
                 if not (torch.equal(q[i], model.q(j)[i]) and torch.equal(b[i], model.b(j)[i]))}
        trace.append((before, float(model.log_joint(x, paths).sum())))
        steps.append((report, moved))
        previous = paths
    return trace, previous, steps


def test_hard_em_never_lowers_its_objective():
    model = DeepGMM(4, (3, 2))
    trace, _, _ = run_hard_em(model, clustered(), 8)
    flat = [v for pair in trace[1:] for v in pair]
    assert all(b >= a - 1e-6 for a, b in pairwise(flat)), trace
    assert flat[-1] - flat[0] > 100  # and it does improve (nats over 1,200 points)


def test_a_starved_node_keeps_its_transform_and_hard_em_never_lowers_its_objective():
    """Issue 30: a node reached by 0 < n < min_points points is not fitted and keeps its transform; only a
    node no point reached is re-initialized. Re-initializing the starved node (0, 2) as well, as before the
    fix, lowered the objective by 248.88 nats (of 1,200 points) in the M-step of EM iteration 4."""
    model = DeepGMM(4, (3, 2))
    trace, _, steps = run_hard_em(model, clustered(seed=1), 8, empty="reinit", min_points=40)
    # exact numbers, E-step and M-step alike: no step lowers the objective; the smallest rise is 8.82 nats
    flat = [v for pair in trace[1:] for v in pair]
    assert all(b >= a - 1e-6 for a, b in pairwise(flat)), trace
    assert min(b - a for a, b in pairwise(flat)) == pytest.approx(8.816, abs=0.01)
    everyone = {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)}
    assert [moved for _, moved in steps] == [everyone] * 4 + [everyone - {(0, 2)}] * 4
    starved = [report.starved for report, _ in steps]
    assert starved == [[], [], [], [], [(0, 2, 34)], [(0, 2, 30)], [(0, 2, 28)], [(0, 2, 19)]], starved
    assert not any(report.emptied or report.empty_paths for report, _ in steps)
    metrics = steps[4][0].metrics()
    assert metrics["starved_nodes"] == 1 and metrics["empty_nodes"] == 0 and metrics["empty_paths"] == 0
    assert steps[4][0].describe() == (
        "node(s) (layer, node) (0, 2) with 34 patch(es), fewer than model.min_points=40, were not fitted and "
        "keep their transforms")


def test_heuristic_finds_the_full_search_path_on_small_networks():
    """Within hard EM (warm start + random start, 3 sum_j N_j evaluations), the heuristic's path is the
    best of all 12 paths for nearly every point, and never better than the best."""
    model = DeepGMM(4, (3, 2, 2))
    x = clustered(seed=1)
    _, previous, _ = run_hard_em(model, x, 10)
    _, found, switched = heuristic_search(model, x, previous, hashed_paths(model, torch.arange(len(x)), 11))
    _, full = full_search(model, x)
    assert (found <= full + 1e-9).all()
    assert (found >= full - 1e-9).double().mean() > 0.97
    assert switched.double().mean() < 0.05   # the warm start is rarely beaten once EM has settled
    # one pass from the best path stays there
    best, _ = full_search(model, x)
    stay, _ = coordinate_pass(model, x, best, 1)
    assert torch.equal(stay, best)


def test_soft_em_raises_the_log_likelihood():
    model = DeepGMM(4, (2, 2))
    x = clustered(seed=2)
    stats = EMStatistics(model)
    stats.add_hard(model, x, projection_paths(model, x, 0))
    m_step(model, stats)
    lls = []
    for _ in range(6):
        gamma, log_prob = responsibilities(model, x)
        assert torch.allclose(gamma.sum(1), torch.ones(len(x), dtype=F64))
        lls.append(float(log_prob.mean()))
        stats = EMStatistics(model)
        stats.add_soft(model, x, gamma)
        m_step(model, stats, reg_covar=0.0)
    assert all(b >= a - 1e-7 for a, b in pairwise(lls)), lls
    assert lls[-1] > lls[0]


def test_soft_statistics_of_one_hot_responsibilities_equal_the_hard_ones():
    model = random_model()
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    paths, _ = full_search(model, x)
    hard, soft = EMStatistics(model), EMStatistics(model)
    hard.add_hard(model, x, paths)
    soft.add_soft(model, x, torch.nn.functional.one_hot(model.path_index(paths), 12).to(F64))
    for a, b in zip(hard.tensors(), soft.tensors()):
        torch.testing.assert_close(a, b)


def test_empty_paths_are_pruned_or_reinitialized():
    x = clustered(n=300)
    for policy in ("prune", "reinit"):
        model = DeepGMM(4, (3, 2))
        stats = EMStatistics(model)
        paths = torch.zeros(len(x), 2, dtype=torch.long)   # every point on path (0, 0)
        paths[::2, 1] = 1                                    # and (0, 1): node 1 and 2 of layer 0 empty
        stats.add_hard(model, x, paths)
        report = m_step(model, stats, empty=policy, generator=torch.Generator().manual_seed(0))
        assert report.emptied == [(0, 1), (0, 2)] and report.starved == [] and report.empty_paths == 4
        assert report.metrics()["empty_nodes"] == 2 and report.metrics()["starved_nodes"] == 0
        fate = ("re-initialized as perturbed copies of their layer's busiest node; 4 path(s) held no patch and "
                "keep a pseudo-count of one patch" if policy == "reinit"
                else "left as they were; 4 path(s) held no patch and were pruned (pi = 0)")
        assert report.describe() == f"node(s) (layer, node) (0, 1), (0, 2) held no patch and were {fate}"
        pi = model.log_pi.exp()
        if policy == "prune":
            assert torch.equal(pi[2:], torch.zeros(4, dtype=F64))
        else:
            assert (pi[2:] > 0).all() and torch.allclose(pi[2:], torch.full((4,), 1 / 304, dtype=F64))
            assert not torch.equal(model.q(0)[1], model.q(0)[0])
            torch.testing.assert_close(model.q(0)[1], model.q(0)[0], atol=0.2 * model.q(0)[0].abs().max(), rtol=0)


def test_random_paths_depend_on_the_point_not_the_batch():
    model = DeepGMM(3, (4, 3))
    index = torch.arange(1000)
    paths = hashed_paths(model, index, 7)
    assert torch.equal(paths[500:], hashed_paths(model, index[500:], 7))
    assert not torch.equal(paths, hashed_paths(model, index, 8))
    counts = torch.bincount(model.path_index(paths), minlength=12).double()
    assert counts.min() > 50 and counts.max() < 120   # roughly uniform over the 12 paths


def test_bad_input_is_named():
    model = DeepGMM(63, (2, 2))
    with pytest.raises(ValueError, match=r"expects patches of shape \(B, 63\), got \(5, 48\)"):
        model.log_prob(torch.zeros(5, 48))
    bad = torch.zeros(5, 63)
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        model.log_prob(bad)
    model.q(1)[1] = torch.zeros(63, 63, dtype=F64)
    with pytest.raises(ValueError, match="Q_1,1 is singular"):
        model.sample(3)
    with pytest.raises(ValueError, match="Q_1,1 is singular"):
        model.log_prob(torch.zeros(5, 63))
    with pytest.raises(ValueError, match="path_prior"):
        DeepGMM(4, (2,), "shared")
    with pytest.raises(ValueError, match="components"):
        DeepGMM(4, ())


def test_parameter_counts():
    assert DeepGMM(63, (8, 4, 2)).num_parameters() == 14 * (63 * 63 + 63) + 63
    assert DeepGMM(63, (8, 4, 2), "factorized").num_parameters() == 14 * (63 * 63 + 63) + 11
    assert gmm_parameter_count(27, 63) == 27 * (63 + 2016) + 26
    assert components_for_parameters(DeepGMM(63, (8, 4, 2)).num_parameters(), 63) == 27
