"""Build-once cache directories that survive Ctrl-C, crashes and concurrent builders.

Corpora and converted checkpoints are expensive to make, so they are built once into
``$S2T_EDU_CACHE`` (default ``~/.cache/s2t_edu``). Three rules make that safe:

1. Build into a temporary sibling directory and ``os.replace`` it into place: a rename is
   atomic, so a reader sees either nothing or a complete directory, never half of one.
2. Hold an exclusive file lock while checking and building: a second process waits, then
   finds the finished directory instead of building it again over the first one.
3. Write ``MANIFEST.json`` (size + SHA-256 of every file) last; a directory whose files do
   not match their manifest is damaged and gets rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

MANIFEST = "MANIFEST.json"


def cache_root() -> Path:
    """The cache directory: ``$S2T_EDU_CACHE`` or ``~/.cache/s2t_edu``."""
    root = Path(os.environ.get("S2T_EDU_CACHE", Path.home() / ".cache" / "s2t_edu"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(directory: Path) -> None:
    """Record size and SHA-256 of every file under ``directory`` (written last)."""
    entries = {
        str(p.relative_to(directory)): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(directory)
    }
    (directory / MANIFEST).write_text(json.dumps(entries, indent=1, sort_keys=True))


def is_intact(directory: Path) -> bool:
    """True when ``directory`` has a manifest and every file matches it (no extra, none missing)."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return False
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    present = {str(p.relative_to(directory)): p for p in _files(directory)}
    if set(present) != set(entries):
        return False
    for name, entry in entries.items():
        path = present[name]
        if path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            return False
    return True


@contextmanager
def _exclusive_lock(target: Path):
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # blocks until the other builder is done
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return ``target``, first building it with ``build(tmp_dir)`` if it is missing or damaged.

    ``build`` writes files into the empty directory it is given; it never sees ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_intact(target):  # fast path, no lock needed: complete directories never change
        return target
    with _exclusive_lock(target):
        if is_intact(target):  # someone else finished it while we waited for the lock
            return target
        if target.exists():
            shutil.rmtree(target)  # damaged or half-deleted: rebuild from scratch
        # Builders hold the lock while building, so any build folder seen now was orphaned by a
        # killed process (SIGKILL skips the cleanup below): reclaim its space.
        for orphan in target.parent.glob(f".{target.name}.building-*"):
            shutil.rmtree(orphan, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
        try:
            build(tmp)
            write_manifest(tmp)
            tmp.chmod(0o755)  # mkdtemp makes it owner-only; a finished cache is readable by all
            os.replace(tmp, target)
        except BaseException:  # Ctrl-C included: leave no half-built directory behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
