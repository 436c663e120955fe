"""Multi-node torchrun across the lab's nodes, in the form docs/training.md shows.

Each node runs ``torchrun --nnodes 2 --rdzv-backend c10d --rdzv-endpoint node0:29400`` as an
operator would on two machines. The host name resolves to loopback on this machine; inside
the lab each node's hosts file maps it to the node's own address (sparsgd.lab.cluster), which
is what c10d's rendezvous needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sparsgd.lab.cluster import Cluster, Rate

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(300), pytest.mark.slow]

NODES = 2
WAIT_S = 240.0


def test_torchrun_c10d_across_two_nodes(lab_machine, tmp_path):
    out = tmp_path / "run"
    train = ["-m", "sparsgd.cli.main", "train", "--steps", "6", "--no-progress"]
    train += ["--out", str(out), "--log-every", "3"]
    with Cluster(NODES, Rate.parse("1gbit")) as lab:
        procs = []
        for node in lab.nodes:
            torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(NODES)]
            torchrun += ["--nproc-per-node", "1", "--rdzv-backend", "c10d"]
            torchrun += ["--rdzv-endpoint", "node0:29400", "--rdzv-id", "lab-test"]
            env = {**os.environ, "GLOO_SOCKET_IFNAME": node.interface}
            procs.append(
                subprocess.Popen(
                    [*node.prefix, *torchrun, *train],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        try:
            outputs = [p.communicate(timeout=WAIT_S)[0] for p in procs]
        finally:
            for p in procs:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workers"] == NODES and summary["steps"] == 6
    assert sum("done: test accuracy" in text for text in outputs) == 1  # rank 0 alone reports
