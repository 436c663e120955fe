"""Every collective on real gloo process groups of P = 1, 2, 3, 5, 6, 7, 8 ranks.

One spawned world of 8 processes runs every group size as a subgroup (P = 8 on the default
group), every spec and collective, two error-feedback steps each; the tests below check what
the ranks sent back against each other, the invariant, the one-process reference
(sparsgd.sim.collectives) and the message and byte formulas of docs/algorithms.md (cost
model). Step 0 is a collective's first call (it opens with the input-check handshake); step 1
is the steady state, where the check rides in the payload messages.
"""

from __future__ import annotations

import math

import comm_workers as cw
import pytest
import torch

from sparsgd.comm import COLLECTIVES
from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.compress import make_compressor
from sparsgd.compress.checks import k_from_density
from sparsgd.compress.message import dense_bytes, message_bytes
from sparsgd.sim.collectives import simulate

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(300), pytest.mark.slow]

GROUP_TIMEOUT_S = 240.0  # 8 processes start, import torch and run 160 small calls on 2 cores
EPS32 = torch.finfo(torch.float32).eps
# Sums of P float32 values in two different orders (gloo's ring vs rank order) differ by at
# most 2 (P - 1) eps sum_i |p_i| per element (first-order bound of recursive summation).
SUM_ORDER_FACTOR = 2
# The invariant compares sums that each carry up to P roundings (tree merges, the residual
# sums, the test's own sums): 4 P eps sum_i |p_i| per element covers all of them.
INVARIANT_FACTOR = 4
CHECK_BYTES = 5 * 8  # the handshake header of a first call: 5 int64 per rank
STATUS_BYTES = 8  # the status header of every gTop-k tree message
EXACT = ("topk_allgather", "gtopk")  # totals are the same additions in the same order
CASES = [(size, spec, name) for size in cw.GROUPS for spec in cw.SPECS for name in COLLECTIVES]


@pytest.fixture(scope="module")
def runs() -> dict[str, list[list[dict]]]:
    """key "P/spec/collective" -> [rank 0's steps, ..., rank P-1's steps] (group rank order)."""
    options = LaunchOptions(timeout_s=GROUP_TIMEOUT_S, threads=1)
    by_global = launch(cw.run_every_collective, cw.WORLD, (), options, deadline_s=GROUP_TIMEOUT_S)
    out = {}
    for size, members in cw.GROUPS.items():
        ranks = range(cw.WORLD) if members is None else sorted(members)
        for spec in cw.SPECS:
            for name in COLLECTIVES:
                key = f"{size}/{spec}/{name}"
                out[key] = [by_global[r][key] for r in ranks]
        for variant in cw.COMPRESSED:
            key = f"{size}/wide/topk_allgather+{variant}"
            out[key] = [by_global[r][key] for r in ranks]
    return out


def _bound(ps: list[torch.Tensor], factor: int) -> torch.Tensor:
    """Per-element rounding allowance factor * P * eps * sum_i |p_i| (see the constants)."""
    return factor * len(ps) * EPS32 * torch.stack(ps).abs().sum(dim=0) + 1e-30


@pytest.mark.parametrize(("size", "spec", "name"), CASES)
def test_every_rank_holds_the_same_total(runs, size, spec, name):
    ranks = runs[f"{size}/{spec}/{name}"]
    assert len(ranks) == size
    for step in range(cw.STEPS):
        for r in range(1, size):
            assert torch.equal(ranks[r][step]["total"], ranks[0][step]["total"]), (step, r)


@pytest.mark.parametrize(("size", "spec", "name"), CASES)
def test_invariant_summed_over_ranks(runs, size, spec, name):
    ranks = runs[f"{size}/{spec}/{name}"]
    for step in range(cw.STEPS):
        ps = [r[step]["p"] for r in ranks]
        kept = torch.stack([r[step]["residual"] for r in ranks]).sum(dim=0)
        gap = (kept + ranks[0][step]["total"] - torch.stack(ps).sum(dim=0)).abs()
        assert bool((gap <= _bound(ps, INVARIANT_FACTOR)).all()), (step, float(gap.max()))


@pytest.mark.parametrize(("size", "spec", "name"), CASES)
def test_equals_the_one_process_reference(runs, size, spec, name):
    ranks = runs[f"{size}/{spec}/{name}"]
    numel, density = cw.SPECS[spec]
    for step in range(cw.STEPS):
        ps = [r[step]["p"] for r in ranks]
        if step == 0:
            assert all(torch.equal(p, cw.gradient(size, i, 0, numel)) for i, p in enumerate(ps))
        reference = simulate(name, ps, density, first_call=step == 0)
        for i, (mine, ref) in enumerate(zip(ranks, reference, strict=True)):
            got = mine[step]
            assert torch.equal(got["residual"], ref.residual), (step, i)
            assert torch.equal(got["sent"], ref.sent), (step, i)
            if name in EXACT:
                assert torch.equal(got["total"], ref.total), (step, i)
            else:
                gap = (got["total"] - ref.total).abs()
                assert bool((gap <= _bound(ps, SUM_ORDER_FACTOR)).all()), (step, i)
            for field in ("messages_sent", "bytes_sent", "messages_recv", "bytes_recv"):
                assert got["stats"][field] == getattr(ref.stats, field), (step, i, field)


def _tree_degree(rank: int, size: int) -> int:
    """Partners rank receives from in the reduction, counted round by round (section 3)."""
    rounds = math.ceil(math.log2(size)) if size > 1 else 0
    return sum(1 for r in range(rounds) if rank % 2 ** (r + 1) == 0 and rank + 2**r < size)


def _payload_formula(name: str, rank: int, size: int, numel: int, k: int) -> tuple[int, ...]:
    """(messages sent, bytes sent, messages received, bytes received) of section 3."""
    kids, has_parent = _tree_degree(rank, size), int(rank > 0)
    entry8k = message_bytes(k, numel)  # k (index, value) pairs: 8k bytes
    index4k = 4 * k  # k int32 indices
    ring = 2 * (size - 1)
    if name == "dense":
        chunk = dense_bytes(-(-numel // size))
        return (ring, ring * chunk, ring, ring * chunk)
    if name == "topk_allgather":
        per_rank = 2 * 8 + entry8k  # length header, then the k entries
        return (ring, (size - 1) * per_rank, ring, (size - 1) * per_rank)
    if name == "gtopk":
        return (has_parent + kids, (has_parent + kids) * entry8k) * 2
    chunk = dense_bytes(-(-k // size))
    sent = has_parent * entry8k + kids * index4k + ring * chunk
    recv = kids * entry8k + has_parent * index4k + ring * chunk
    return (has_parent + kids + ring, sent, kids + has_parent + ring, recv)


def _status_formula(name: str, rank: int, size: int, numel: int) -> int:
    """Bytes of the input check riding in the payload, sent and (as many) received."""
    if name == "dense":  # one element appended to the ring all-reduce
        return 2 * (size - 1) * dense_bytes(-(-(numel + 1) // size) - -(-numel // size))
    if name == "topk_allgather":  # in the length header the payload already has
        return 0
    return STATUS_BYTES * (int(rank > 0) + _tree_degree(rank, size))  # one per tree message


@pytest.mark.parametrize(("size", "spec", "name"), CASES)
def test_counted_bytes_equal_the_formulas(runs, size, spec, name):
    numel, density = cw.SPECS[spec]
    k = k_from_density(density, numel)
    for rank, steps in enumerate(runs[f"{size}/{spec}/{name}"]):
        for step, stats in enumerate(s["stats"] for s in steps):
            handshake = size - 1 if step == 0 else 0
            assert stats["check_messages_sent"] == stats["check_messages_recv"] == handshake
            status = _status_formula(name, rank, size, numel)
            assert stats["check_bytes_sent"] == handshake * CHECK_BYTES + status
            assert stats["check_bytes_recv"] == handshake * CHECK_BYTES + status
            got = (
                stats["messages_sent"] - stats["check_messages_sent"],
                stats["bytes_sent"] - stats["check_bytes_sent"],
                stats["messages_recv"] - stats["check_messages_recv"],
                stats["bytes_recv"] - stats["check_bytes_recv"],
            )
            assert got == _payload_formula(name, rank, size, numel, k), rank
            assert min(stats["select_s"], stats["comm_s"], stats["apply_s"]) >= 0.0


@pytest.mark.parametrize("size", list(cw.GROUPS))
def test_gtopk_critical_path_is_two_log_p_messages_of_k_entries(runs, size):
    numel, density = cw.SPECS["wide"]
    k = k_from_density(density, numel)
    log_p = math.ceil(math.log2(size)) if size > 1 else 0
    for rank, steps in enumerate(runs[f"{size}/wide/gtopk"]):
        stats = steps[0]["stats"]
        messages = stats["messages_sent"] + stats["messages_recv"]
        messages -= stats["check_messages_sent"] + stats["check_messages_recv"]
        nbytes = stats["bytes_sent"] + stats["bytes_recv"]
        nbytes -= stats["check_bytes_sent"] + stats["check_bytes_recv"]
        assert nbytes == messages * 8 * k
        assert messages <= 2 * log_p
        if rank == 0:
            assert messages == 2 * log_p


@pytest.mark.parametrize("size", list(cw.GROUPS))
def test_gtopk_steady_state_sends_the_tree_messages_and_nothing_else(runs, size):
    """After the first call: 2 ceil(log2 P) messages on rank 0, every one a tree message of
    8 + 8k bytes, the input check riding inside; no other message on any rank."""
    numel, density = cw.SPECS["wide"]
    k = k_from_density(density, numel)
    log_p = math.ceil(math.log2(size)) if size > 1 else 0
    all_stats = [steps[1]["stats"] for steps in runs[f"{size}/wide/gtopk"]]
    for rank, stats in enumerate(all_stats):
        assert stats["check_messages_sent"] == stats["check_messages_recv"] == 0
        edges = int(rank > 0) + _tree_degree(rank, size)  # parent and children in the tree
        assert stats["messages_sent"] == stats["messages_recv"] == edges
        assert stats["bytes_sent"] == stats["bytes_recv"] == edges * (STATUS_BYTES + 8 * k)
    assert all_stats[0]["messages_sent"] + all_stats[0]["messages_recv"] == 2 * log_p
    assert sum(s["messages_sent"] for s in all_stats) == 2 * (size - 1)  # each edge twice


@pytest.mark.parametrize("size", list(cw.GROUPS))
def test_gtopk_applies_exactly_k_entries(runs, size):
    for spec, (numel, density) in cw.SPECS.items():
        k = k_from_density(density, numel)
        steps = runs[f"{size}/{spec}/gtopk"][0]
        for step in steps:
            assert int((step["total"] != 0).sum()) <= k  # grid values may merge to exactly 0
            assert step["sent"].numel() == k
        assert int((steps[1]["total"] != 0).sum()) == k  # Gaussian values: no exact zeros


@pytest.mark.parametrize("size", list(cw.GROUPS))
@pytest.mark.parametrize("variant", list(cw.COMPRESSED))
def test_topk_allgather_with_a_compressor(runs, size, variant):
    """Variable-length (threshold) and 6-byte (float16) sets: padded, counted, exact."""
    ranks = runs[f"{size}/wide/topk_allgather+{variant}"]
    density = cw.SPECS["wide"][1]
    compressor, settings = cw.COMPRESSED[variant]
    entry = 6 if settings.get("value_dtype") == torch.float16 else 8
    for step in range(cw.STEPS):
        ps = [r[step]["p"] for r in ranks]
        reference = simulate("topk_allgather", ps, density, make_compressor(compressor, **settings))
        longest = max(r[step]["sent"].numel() for r in ranks)
        for mine, ref in zip(ranks, reference, strict=True):
            got = mine[step]
            assert torch.equal(got["total"], ref.total)
            assert torch.equal(got["total"], ranks[0][step]["total"])
            assert torch.equal(got["residual"], ref.residual)
            payload = got["stats"]["bytes_sent"] - got["stats"]["check_bytes_sent"]
            assert payload == (size - 1) * (2 * 8 + longest * entry)
        kept = torch.stack([r[step]["residual"] for r in ranks]).sum(dim=0)
        gap = (kept + ranks[0][step]["total"] - torch.stack(ps).sum(dim=0)).abs()
        assert bool((gap <= _bound(ps, INVARIANT_FACTOR)).all())
    if variant == "threshold" and size > 1:  # the padded path was really taken
        assert len({r[0]["sent"].numel() for r in ranks}) > 1
