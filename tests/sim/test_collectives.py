"""The one-process reference of the collectives, checked against first principles."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.comm import COLLECTIVES
from sparsgd.comm.stats import Reduced
from sparsgd.compress import make_compressor
from sparsgd.compress.checks import NonFiniteError, k_from_density
from sparsgd.compress.topk_reference import topk_reference
from sparsgd.sim.collectives import simulate

WORLDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]
NUMEL = 200
DENSITY = 0.05  # k = 10; k P > d for no P here, but the ranks share many indices (below)
STEPS = 3
EPS32 = torch.finfo(torch.float32).eps
# Each side of the invariant is a sum of at most 2P float32 terms per element (residuals,
# tree partial sums, the test's own sums): 4 P eps sum |p_i| bounds their rounding.
INVARIANT_FACTOR = 4


def gradients(world: int, step: int, numel: int = NUMEL) -> list[torch.Tensor]:
    """A shared component (so ranks pick overlapping indices) plus per-rank noise."""
    gen = torch.Generator().manual_seed(10_000 * world + step)
    common = torch.randn(numel, generator=gen)
    return [common + 0.5 * torch.randn(numel, generator=gen) for _ in range(world)]


def run_steps(name: str, world: int, compressor=None) -> list[tuple[list, list[Reduced]]]:
    residuals = [torch.zeros(NUMEL) for _ in range(world)]
    history = []
    for step in range(STEPS):
        ps = [e + g for e, g in zip(residuals, gradients(world, step), strict=True)]
        reduced = simulate(name, ps, DENSITY, compressor)
        history.append((ps, reduced))
        residuals = [r.residual for r in reduced]
    return history


def assert_sums_close(a: torch.Tensor, b: torch.Tensor, ps: list[torch.Tensor]) -> None:
    """``a == b`` up to the rounding of sums over the ranks (see INVARIANT_FACTOR)."""
    bound = INVARIANT_FACTOR * len(ps) * EPS32 * torch.stack(ps).abs().sum(dim=0)
    gap = (a - b).abs()
    assert bool((gap <= bound).all()), float(gap.max())


def assert_invariant(ps: list[torch.Tensor], reduced: list[Reduced]) -> None:
    kept = torch.stack([r.residual for r in reduced]).sum(dim=0)
    assert_sums_close(kept + reduced[0].total, torch.stack(ps).sum(dim=0), ps)


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("name", list(COLLECTIVES))
def test_invariant_and_identical_totals_over_steps(name, world):
    for ps, reduced in run_steps(name, world):
        assert len(reduced) == world
        assert_invariant(ps, reduced)
        assert all(torch.equal(r.total, reduced[0].total) for r in reduced)
        for p in ps:
            assert p.shape == (NUMEL,)  # inputs untouched in shape


@pytest.mark.parametrize("world", WORLDS)
def test_gtopk_drops_merged_values_into_the_merging_ranks_residual(world):
    k = k_from_density(DENSITY, NUMEL)
    for ps, reduced in run_steps("gtopk", world):
        assert int((reduced[0].total != 0).sum()) == k
        without_merges = sum(p - _dense_topk(p, k) for p in ps)
        dropped = sum(r.residual for r in reduced) - without_merges
        if world > 1:  # the ranks overlap but not fully: some merged values were dropped
            assert float(dropped.abs().sum()) > 0
        # what was dropped is exactly what the plain sum of local sets has beyond the total
        sum_of_local_sets = sum(_dense_topk(p, k) for p in ps)
        assert_sums_close(dropped, sum_of_local_sets - reduced[0].total, ps)


def _dense_topk(p: torch.Tensor, k: int) -> torch.Tensor:
    out = torch.zeros_like(p)
    idx = topk_reference(p, k)
    out[idx] = p[idx]
    return out


def test_gtopk_two_ranks_is_topk_of_the_summed_local_sets():
    k = k_from_density(DENSITY, NUMEL)
    ps = gradients(2, 0)
    union = _dense_topk(ps[0], k) + _dense_topk(ps[1], k)
    assert torch.equal(simulate("gtopk", ps, DENSITY)[0].total, _dense_topk(union, k))


def test_one_rank_sparse_collectives_are_plain_topk():
    (p,) = gradients(1, 0)
    k = k_from_density(DENSITY, NUMEL)
    for name in ("topk_allgather", "gtopk", "gtopk_exact"):
        (r,) = simulate(name, [p], DENSITY)
        assert torch.equal(r.total, _dense_topk(p, k))
        assert torch.equal(r.residual, p - _dense_topk(p, k))
        assert torch.equal(r.sent, topk_reference(p, k))


@pytest.mark.parametrize("world", [2, 5, 8])
def test_topk_allgather_and_gtopk_exact_against_brute_force(world):
    ps = gradients(world, 1)
    k = k_from_density(DENSITY, NUMEL)
    union = simulate("topk_allgather", ps, DENSITY)[0].total
    assert torch.equal(union, sum(_dense_topk(p, k) for p in ps))  # same adds, same order
    chosen = simulate("gtopk", ps, DENSITY)[0].total.nonzero().flatten()
    exact = simulate("gtopk_exact", ps, DENSITY)
    assert torch.equal(exact[0].sent, chosen)  # same tree, same index set G
    expected = torch.zeros(NUMEL)
    expected[chosen] = torch.stack(ps).sum(dim=0)[chosen]
    assert_sums_close(exact[0].total, expected, ps)
    for p, r in zip(ps, exact, strict=True):
        kept = p.clone()
        kept[chosen] = 0
        assert torch.equal(r.residual, kept)


@pytest.mark.parametrize("world", WORLDS)
def test_gtopk_critical_path_counts(world):
    k = k_from_density(DENSITY, NUMEL)
    log_p = math.ceil(math.log2(world)) if world > 1 else 0
    reduced = simulate("gtopk", gradients(world, 0), DENSITY)
    for rank, r in enumerate(reduced):
        s = r.stats
        messages = s.payload_messages_sent + s.messages_recv - (world - 1)
        assert messages <= 2 * log_p
        assert s.payload_bytes_sent == s.payload_messages_sent * 8 * k
        if rank == 0:
            assert messages == 2 * log_p
        assert s.comm_s == 0.0


@pytest.mark.parametrize("world", range(1, 9))
def test_gtopk_steady_state_messages_are_the_tree_and_nothing_else(world):
    """A later call (no handshake): rank i sends and receives one message per tree edge
    (its parent, its children), 2 ceil(log2 P) on rank 0, each 8 + 8k bytes with the 8-byte
    status header counted as the input check."""
    k = k_from_density(DENSITY, NUMEL)
    log_p = math.ceil(math.log2(world)) if world > 1 else 0
    reduced = simulate("gtopk", gradients(world, 0), DENSITY, first_call=False)
    for rank, r in enumerate(reduced):
        s = r.stats
        edges = sum(
            1 for j in range(world) if j != rank and (j & (j - 1) == rank or rank & (rank - 1) == j)
        )
        assert s.check_messages_sent == s.check_messages_recv == 0
        assert s.messages_sent == s.messages_recv == edges
        assert s.bytes_sent == edges * (8 + 8 * k) and s.check_bytes_sent == edges * 8
    assert reduced[0].stats.messages_sent + reduced[0].stats.messages_recv == 2 * log_p
    assert sum(r.stats.messages_sent for r in reduced) == 2 * (world - 1)


def test_topk_allgather_takes_a_compressor_with_variable_lengths():
    compressor = make_compressor("threshold", threshold=1.5)
    for ps, reduced in run_steps("topk_allgather", 4, compressor):
        assert_invariant(ps, reduced)
        lengths = [int((p.abs() >= 1.5).sum()) for p in ps]
        assert [r.sent.numel() for r in reduced] == lengths
        payload = reduced[0].stats.payload_bytes_sent
        assert payload == 3 * (16 + max(lengths) * 8)


def test_bad_input_is_refused():
    ps = gradients(3, 0)
    with pytest.raises(ValueError, match=r"unknown collective 'gtop'; valid names: \["):
        simulate("gtop", ps, DENSITY)
    with pytest.raises(ValueError, match="ps must be a non-empty list"):
        simulate("gtopk", [], DENSITY)
    with pytest.raises(ValueError, match=r"same numel and dtype; got shapes \[\(200,\), \(199,\)"):
        simulate("gtopk", [ps[0], ps[1][:-1]], DENSITY)
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\]; got 0.0"):
        simulate("dense", ps, 0.0)
    bad = ps[2].clone()
    bad[5] = float("inf")
    with pytest.raises(NonFiniteError, match=r"ps\[1\] must be finite"):
        simulate("topk_allgather", [ps[0], bad], DENSITY)
    with pytest.raises(ValueError, match="gtopk does its own selection"):
        simulate("gtopk", ps, DENSITY, make_compressor("randomk"))
