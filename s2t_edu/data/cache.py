"""Build-once cache directories that survive Ctrl-C, crashes and concurrent builders.

Corpora and converted checkpoints are expensive to make, so they are built once into
``$S2T_EDU_CACHE`` (default ``~/.cache/s2t_edu``). Three rules make that safe:

1. Build into a temporary sibling directory and ``os.replace`` it into place: a rename is
   atomic, so a reader sees either nothing or a complete directory, never half of one.
2. Hold an exclusive file lock while checking and building: a second process waits, then
   finds the finished directory instead of building it again over the first one.
3. Write ``MANIFEST.json`` (size + SHA-256 of every file) last; a directory whose files do
   not match their manifest is damaged and gets rebuilt.

A full disk is one more way a build can stop halfway: the half-built folder is removed and the
error says how much space the build needs (or had used when the disk filled) and how much is
free (:func:`disk_full_error`). The training checkpoints use the same helpers.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from s2t_edu.errors import S2TEduError

MANIFEST = "MANIFEST.json"
# How a full disk shows itself: OSError errno, or the text of errors from writers that do not
# pass the errno on (torch.save: "[enforce fail at inline_container.cc:...] . unexpected pos
# ..."; numpy's tofile: "50000 requested and 25072 written"; safetensors: "IoError(Os { code:
# 28, kind: StorageFull, ... })").
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_TEXTS = (
    "No space left on device",
    "StorageFull",
    "unexpected pos",
    "file write failed",
    "requested and",
)


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


def format_bytes(size: float) -> str:
    """``1536000`` -> ``"1.5 MB"`` (decimal units, as ``df -H`` prints them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def free_bytes(directory: Path) -> int:
    """Bytes this user may still write on the filesystem holding ``directory`` (or its parent)."""
    path = Path(directory).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def folder_bytes(directory: Path) -> int:
    """Total size of the files under ``directory`` (0 if it is gone)."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def is_disk_full(error: BaseException) -> bool:
    """True when ``error`` says the disk (or the user's quota) is full."""
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return True
    from_a_writer = isinstance(error, OSError | RuntimeError)
    from_a_writer |= type(error).__name__ == "SafetensorError"
    return from_a_writer and any(text in str(error) for text in DISK_FULL_TEXTS)


def disk_full_error(what: str, directory: Path, needed: int | None, fix: str, written: int = 0):
    """The :class:`~s2t_edu.errors.S2TEduError` for a full disk: what needed room, how much, how much is free.

    ``needed`` is the size worked out beforehand; when it is unknown, ``written`` (what was on
    disk when it filled up) is a lower bound.
    """
    free = free_bytes(directory)
    if needed is not None:
        size = f"it needs about {format_bytes(needed)}"
    else:
        size = f"it needs more than the {format_bytes(written)} written before the disk filled"
    return S2TEduError(
        f"No space left on device for {what}: {size}, and {format_bytes(free)} is free there",
        fix,
        str(directory),
    )


def check_free_space(what: str, directory: Path, needed: int, fix: str) -> None:
    """Stop before writing anything when ``needed`` bytes will not fit (a build can take minutes
    before its first write: better to say so at once)."""
    if free_bytes(directory) < needed:
        raise disk_full_error(what, directory, needed, fix)


CACHE_FIX = (
    "free disk space, or set S2T_EDU_CACHE to a folder on a disk with room, then run the same "
    "command again"
)


def build_once(
    target: Path, build: Callable[[Path], None], needed_bytes: int | None = None
) -> Path:
    """Return ``target``, first building it with ``build(tmp_dir)`` if it is missing or damaged.

    ``build`` writes files into the empty directory it is given; it never sees ``target``.
    ``needed_bytes`` (the build's size, if known) is checked against the free space first. A
    full disk during the build removes the half-built folder and raises
    :class:`~s2t_edu.errors.S2TEduError`.
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
        what = f"the cache folder {target.name}"
        if needed_bytes is not None:
            check_free_space(what, target.parent, needed_bytes, CACHE_FIX)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
        try:
            build(tmp)
            write_manifest(tmp)
            tmp.chmod(0o755)  # mkdtemp makes it owner-only; a finished cache is readable by all
            os.replace(tmp, target)
        except BaseException as error:  # Ctrl-C included: leave no half-built directory behind
            written = folder_bytes(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            if is_disk_full(error):
                raise disk_full_error(
                    what, target.parent, needed_bytes, CACHE_FIX, written
                ) from error
            raise
    return target
