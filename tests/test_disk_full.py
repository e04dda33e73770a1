"""A full disk while saving a checkpoint or building a cache: a clear message, nothing half-written.

Each case runs twice where it can: with the disk's answer faked (``OSError(ENOSPC)``, or the
``RuntimeError`` torch.save raises then), always; and on a real small filesystem, a tmpfs mount,
where the test runs as root and mounting is permitted (skipped otherwise, saying why).
"""

import contextlib
import errno
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import write_tiny_checkpoints

import s2t_edu.data.cache as cache
import s2t_edu.training.encoder_cache as encoder_cache
import s2t_edu.training.finetune as finetune
from s2t_edu import S2TEduError
from s2t_edu.data.corpus import corpus_dir, load_corpus
from s2t_edu.training.loop import make_optimizer, make_schedule

# What torch.save raised on a full tmpfs here (torch 2.13): its C++ writer, not an OSError.
TORCH_DISK_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny-models"))


@contextlib.contextmanager
def small_disk(path: Path, size: int):
    """A tmpfs of ``size`` bytes mounted at ``path``; skips the test without root or mount."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the faked-ENOSPC variant still runs)")
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here (the faked-ENOSPC variant still runs)")
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def _args(tiny_dirs, out, *extra):
    encoder, decoder = tiny_dirs
    return [
        "--encoder", encoder, "--decoder", decoder, "--corpus", "tiny", "--batch-size", "4",
        "--lr", "1e-3", "--warmup-steps", "2", "--eval-every", "0", "--device", "cpu",
        "--quiet", "--no-save-model", "--output-dir", str(out), *extra,
    ]  # fmt: skip


def _assert_last_good_checkpoint_kept(out: Path, name: str) -> None:
    assert finetune.latest_checkpoint(out).name == name
    assert torch.load(out / "checkpoints" / name / "state.pt", weights_only=False)["model"]
    assert not list((out / "checkpoints").glob(".tmp-*"))  # the partial folder is gone
    assert not list((out / "checkpoints").glob(".*.tmp"))


# ---------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, "No space left on device"), RuntimeError(TORCH_DISK_FULL)],
    ids=["oserror", "torch-runtimeerror"],
)
def test_a_full_disk_while_saving_a_checkpoint(tiny_dirs, tmp_path, monkeypatch, capsys, failure):
    out = tmp_path / "run"
    real_save, calls = torch.save, []

    def save_until_disk_full(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half a checkpoint")  # the disk fills up mid-write
            raise failure
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(finetune.torch, "save", save_until_disk_full)
    code = finetune.main(_args(tiny_dirs, out, "--steps", "6", "--save-every", "2"))
    assert code == 2
    err = capsys.readouterr().err
    assert "No space left on device for the checkpoint of step 4" in err
    assert "it needs about" in err and "MB" in err and "is free there" in err
    assert "the last good checkpoint (step-000002) is intact" in err
    assert "Fix: free disk space" in err and "Traceback" not in err
    _assert_last_good_checkpoint_kept(out, "step-000002")
    # The metrics of the last good checkpoint stay readable (they are replaced atomically).
    assert [r["step"] for r in json.loads((out / "metrics.json").read_text())] == [1, 2]


def test_too_little_free_space_is_said_before_writing(tiny_dirs, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_free, saves = cache.free_bytes, []
    real_save = torch.save

    def count_saves(*args, **kwargs):
        saves.append(args[1])
        return real_save(*args, **kwargs)

    monkeypatch.setattr(finetune.torch, "save", count_saves)
    # Room for the first checkpoint, then 1 kB left.
    monkeypatch.setattr(cache, "free_bytes", lambda d: 1000 if saves else real_free(d))
    with pytest.raises(S2TEduError, match=r"needs about .* MB, and 1\.0 kB is free") as error:
        finetune.run(
            finetune.parse_args(_args(tiny_dirs, out, "--steps", "4", "--save-every", "2"))
        )
    assert "(step-000002) is intact" in str(error.value)
    assert len(saves) == 1  # the second save never started writing
    _assert_last_good_checkpoint_kept(out, "step-000002")


def test_a_full_tmpfs_while_saving_a_checkpoint(tiny_dirs, tmp_path, monkeypatch):
    """A real small disk: room for one checkpoint, not for the next beside it (the old one is
    removed only once the new one is complete). Checked twice: by the space check before
    writing, and with that check off, by the write that fails (torch's own error)."""
    measured = tmp_path / "measure"
    assert finetune.main(_args(tiny_dirs, measured, "--steps", "2", "--save-every", "2")) == 0
    size = (measured / "checkpoints" / "step-000002" / "state.pt").stat().st_size
    for check in ("space check", "write fails"):
        if check == "write fails":
            monkeypatch.setattr(finetune, "check_free_space", lambda *args: None)
        with small_disk(tmp_path / check.replace(" ", "-"), size * 3 // 2) as disk:
            out = disk / "run"
            with pytest.raises(S2TEduError, match="No space left on device") as error:
                finetune.run(
                    finetune.parse_args(_args(tiny_dirs, out, "--steps", "4", "--save-every", "2"))
                )
            message = str(error.value)
            assert "step 4" in message and "(step-000002) is intact" in message, message
            needs = float(re.search(r"it needs about ([\d.]+) MB", message).group(1)) * 1e6
            assert size <= needs <= size + 1.1e6, (size, message)  # the estimate: size + 1 MB
            _assert_last_good_checkpoint_kept(out, "step-000002")
            if check == "write fails":
                assert isinstance(error.value.__cause__, RuntimeError | OSError)


def test_save_checkpoint_reports_other_failures_as_before(tmp_path, monkeypatch):
    """Only a full disk becomes the disk message; a torch error of another kind stays itself."""
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model)
    scheduler = make_schedule(optimizer, 1, 10)

    def broken(*args, **kwargs):
        raise RuntimeError("something else broke")

    monkeypatch.setattr(finetune.torch, "save", broken)
    with pytest.raises(RuntimeError, match="something else broke"):
        finetune.save_checkpoint(tmp_path, 1, model, optimizer, scheduler, [])
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


# ---------------------------------------------------------------- the data cache
def _fill(directory: Path, size: int) -> None:
    np.save(directory / "frames.npy", np.zeros(size // 8))


def test_a_full_disk_while_building_a_cache_entry(tmp_path):
    def build(tmp):
        (tmp / "part.bin").write_bytes(b"x" * 5000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(S2TEduError, match=r"needs more than the 5\.0 kB written") as error:
        cache.build_once(tmp_path / "entry", build)
    assert "is free there" in str(error.value) and "S2T_EDU_CACHE" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".entry.lock"]  # nothing half-built


def test_a_cache_entry_too_big_for_the_free_space_is_not_started(tmp_path):
    started = []
    with pytest.raises(S2TEduError, match=r"needs about 1000\.0 GB"):
        cache.build_once(tmp_path / "entry", started.append, needed_bytes=10**12)
    assert not started and not (tmp_path / "entry").exists()


def test_a_full_tmpfs_while_building_a_cache_entry(tmp_path):
    with small_disk(tmp_path / "disk", 200_000) as disk:
        with pytest.raises(S2TEduError, match="No space left on device") as error:
            cache.build_once(disk / "entry", lambda tmp: _fill(tmp, 400_000))
        # numpy's own words for it, without an errno: "400128 requested and 196608 written"
        assert isinstance(error.value.__cause__, OSError), error.value.__cause__
        assert "written before the disk filled" in str(error.value)
        assert sorted(p.name for p in disk.iterdir()) == [".entry.lock"]


# ---------------------------------------------------------------- the encoder cache
@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A cache folder holding only the tiny corpus (linked from the test run's cache)."""
    load_corpus("tiny")  # built once in the shared test cache
    source = corpus_dir("tiny")
    root = tmp_path / "cache"
    root.mkdir()
    (root / source.name).symlink_to(source, target_is_directory=True)
    monkeypatch.setenv("S2T_EDU_CACHE", str(root))
    return root


def _tiny_encoder(tiny_dirs):
    model, extractor, _ = finetune.build_model_and_processors(*tiny_dirs, window=5)
    return model.encoder, extractor


def test_the_encoder_cache_checks_the_space_before_encoding(tiny_dirs, empty_cache, monkeypatch):
    encoder, extractor = _tiny_encoder(tiny_dirs)
    encoded = []
    monkeypatch.setattr(encoder_cache, "encode_clips", lambda *a, **k: encoded.append(1))
    monkeypatch.setattr(cache, "free_bytes", lambda directory: 1000)
    expected = cache.format_bytes(encoder_cache.stored_bytes(encoder, 64))  # 64 tiny clips
    with pytest.raises(S2TEduError, match=f"needs about {expected}, and 1.0 kB is free"):
        encoder_cache.cached_encoder_outputs(encoder, extractor, "tiny")
    assert not encoded  # stopped before the first clip
    assert not [p for p in empty_cache.iterdir() if "encoder-outputs" in p.name and p.is_dir()]


def test_a_full_tmpfs_while_building_the_encoder_cache(tiny_dirs, tmp_path, monkeypatch):
    encoder, extractor = _tiny_encoder(tiny_dirs)
    load_corpus("tiny")
    source = corpus_dir("tiny")
    needed = encoder_cache.stored_bytes(encoder, 64)
    for check in ("space check", "write fails"):
        if check == "write fails":  # the estimate passed, the disk filled up anyway
            monkeypatch.setattr(encoder_cache, "check_free_space", lambda *args: None)
        with small_disk(tmp_path / check.replace(" ", "-"), needed // 3) as disk:
            (disk / source.name).symlink_to(source, target_is_directory=True)
            monkeypatch.setenv("S2T_EDU_CACHE", str(disk))
            with pytest.raises(S2TEduError, match="No space left on device") as error:
                encoder_cache.cached_encoder_outputs(encoder, extractor, "tiny")
            message = str(error.value)
            if check == "space check":
                assert f"needs about {cache.format_bytes(needed)}" in message
            else:
                assert "written before the disk filled" in message
            left = [p.name for p in disk.iterdir() if "encoder-outputs" in p.name]
            assert all(name.endswith(".lock") for name in left), left
