"""Training under several processes (torchrun, gloo on CPU) follows the same loss curve as one process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).parent / "helpers" / "loss_curve.py"
TOLERANCE = 0.02  # relative: each process averages its half of a batch, one process the whole batch


def _curve(*launcher: str) -> dict:
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, *launcher, str(HELPER)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_processes_match_one():
    one = _curve()
    two = _curve("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517")
    assert one["processes"] == 1 and two["processes"] == 2
    assert two["losses"] == pytest.approx(one["losses"], rel=TOLERANCE)
    assert two["losses"] != one["losses"]  # really split: the halves' means differ slightly from the whole
