"""The collectives on a real shaped cluster: P = 3 nodes at 100 Mbit/s, 1e6 floats.

What the loopback tests cannot show: the links are really shaped (a bare all_reduce cannot
beat the rate: a lower bound that no load breaks), and across namespaces every collective
still returns exactly the one-process reference's result and counts the bytes of the formulas.
"""

from __future__ import annotations

import math

import lab_workers as lw
import pytest
import torch

from sparsgd.comm import COLLECTIVES
from sparsgd.comm.launch import launch
from sparsgd.compress.checks import k_from_density
from sparsgd.lab.cluster import Cluster, Rate
from sparsgd.lab.placement import lab_options
from sparsgd.sim.collectives import simulate

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(300), pytest.mark.slow]

NODES, RATE = 3, "100mbit"
LAUNCH_TIMEOUT_S = 200.0
# tbf holds the rate over time; its bucket lets one burst through at once, and a ring
# all_reduce overlaps sends and receives, so the bound asks for 0.7x the time the bytes take
SHAPING_FACTOR = 0.7
EXACT = ("topk_allgather", "gtopk")  # the same additions in the same order as the reference


@pytest.fixture(scope="module")
def results(lab_machine_module):
    rate = Rate.parse(RATE)
    with Cluster(NODES, rate) as cluster:
        options = lab_options(cluster, LAUNCH_TIMEOUT_S)
        return rate, launch(lw.every_collective, NODES, (), options, deadline_s=LAUNCH_TIMEOUT_S)


def test_shaping_is_in_force(results):
    rate, ranks = results
    ring_bytes = 2 * (NODES - 1) / NODES * 4 * lw.NUMEL  # what each node sends in a ring
    floor = SHAPING_FACTOR * ring_bytes / rate.bytes_per_s
    for rank in ranks:
        assert rank["plain_all_reduce_s"] >= floor, (rank["plain_all_reduce_s"], floor)


@pytest.mark.parametrize("name", list(COLLECTIVES))
def test_equals_the_one_process_reference(results, name):
    _, ranks = results
    for step in range(lw.STEPS):
        ps = []
        for rank in range(NODES):
            residual = ranks[rank][name][step - 1]["residual"] if step else 0
            ps.append(residual + lw.gradient(rank, step))
        reference = simulate(name, ps, lw.DENSITY, first_call=step == 0)
        for rank, ref in enumerate(reference):
            got = ranks[rank][name][step]
            assert torch.equal(got["residual"], ref.residual), (step, rank)
            assert torch.equal(got["sent"], ref.sent), (step, rank)
            if name in EXACT:
                assert torch.equal(got["total"], ref.total), (step, rank)
            else:  # gloo's ring sums in another order: float32 rounding only
                torch.testing.assert_close(got["total"], ref.total, rtol=1e-5, atol=1e-5)
            for field in ("messages_sent", "bytes_sent", "messages_recv", "bytes_recv"):
                assert got["stats"][field] == getattr(ref.stats, field), (step, rank, field)


def test_steady_state_bytes_equal_the_formulas(results):
    _, ranks = results
    k = k_from_density(lw.DENSITY, lw.NUMEL)
    rounds = math.ceil(math.log2(NODES))
    for rank, steps in enumerate(r["dense"][1]["stats"] for r in ranks):
        payload = steps["bytes_sent"] - steps["check_bytes_sent"]
        assert payload == 2 * (NODES - 1) * 4 * -(-lw.NUMEL // NODES), rank  # ring chunks
    tree = ranks[0]["gtopk"][1]["stats"]  # rank 0: in every round of both phases
    assert tree["messages_sent"] + tree["messages_recv"] == 2 * rounds
    sent = tree["bytes_sent"] - tree["check_bytes_sent"]
    assert sent == rounds * 8 * k  # k (int32 index, float32 value) entries per message
