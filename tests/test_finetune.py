"""The command line: outputs, resume after kill -9 (same final weights), and bad input."""

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import write_tiny_checkpoints

import s2t_edu.training.finetune as finetune
import s2t_edu.training.loop
from s2t_edu import S2TEduError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny-models"))


def _args(tiny_dirs, out, *extra):
    encoder, decoder = tiny_dirs
    return [
        "--encoder", encoder, "--decoder", decoder, "--corpus", "tiny", "--batch-size", "4",
        "--lr", "1e-3", "--warmup-steps", "2", "--eval-clips", "4", "--device", "cpu", "--quiet",
        "--output-dir", str(out), *extra,
    ]  # fmt: skip


def _weights(out: Path) -> dict:
    checkpoint = finetune.latest_checkpoint(out)
    return torch.load(checkpoint / "state.pt", weights_only=False)["model"]


# A child process that runs the CLI, each step slowed down so a kill lands mid-run.
CHILD = textwrap.dedent(
    """
    import sys, time, torch
    torch.set_num_threads(int(sys.argv[1]))
    import s2t_edu.training.finetune as f
    import s2t_edu.training.loop as loop
    step = loop.train_step
    loop.train_step = lambda *a, **k: (time.sleep(float(sys.argv[2])), step(*a, **k))[1]
    sys.exit(f.main(sys.argv[3:]))
    """
)


def _child(args, delay):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", CHILD, str(torch.get_num_threads()), str(delay), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_run_writes_metrics_curves_checkpoint_and_model(tiny_dirs, tmp_path):
    out = tmp_path / "run"
    assert finetune.main(_args(tiny_dirs, out, "--steps", "6", "--eval-every", "3")) == 0
    history = json.loads((out / "metrics.json").read_text())
    assert [r["step"] for r in history] == list(range(1, 7))
    assert [r["step"] for r in history if "wer" in r] == [3, 6]
    assert all(r["audio_seconds_per_second"] > 0 for r in history)
    assert (out / "metrics.csv").read_text().startswith("step,loss,lr,")
    assert (out / "curves.png").stat().st_size > 1000
    final = json.loads((out / "final_metrics.json").read_text())
    assert {"test_wer", "test_unseen_voice_wer"} <= set(final)
    assert finetune.latest_checkpoint(out).name == "step-000006"
    assert (out / "model" / "model.safetensors").is_file()


def test_kill_9_then_resume_gives_the_same_final_weights(tiny_dirs, tmp_path):
    """Uninterrupted vs SIGKILLed at a random point after the first checkpoint, then resumed.

    Bitwise equal: weights, optimizer moments, schedule and RNG states come back from the
    checkpoint and step k's batch depends only on the seed, so the resumed run repeats exactly
    the arithmetic of the uninterrupted one (same thread count, same machine).
    """
    steps = ["--steps", "16", "--save-every", "4", "--eval-every", "8", "--no-save-model"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert finetune.main(_args(tiny_dirs, reference, *steps)) == 0

    child = _child(_args(tiny_dirs, killed, *steps), delay=0.3)
    deadline = time.monotonic() + 240
    while finetune.latest_checkpoint(killed) is None and time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()[1].decode()[-2000:]
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (killed / "final_metrics.json").exists(), "the run ended before the kill"
    stopped_at = finetune.latest_checkpoint(killed).name
    assert stopped_at != "step-000016"

    assert finetune.main(_args(tiny_dirs, killed, *steps)) == 0  # the same command resumes
    a, b = _weights(reference), _weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), f"weights differ after resuming {stopped_at}"
    history = json.loads((killed / "metrics.json").read_text())
    assert [r["step"] for r in history] == list(range(1, 17))


def test_resuming_with_other_settings_is_refused(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    assert finetune.main(_args(tiny_dirs, out, "--steps", "2", "--eval-every", "0")) == 0
    code = finetune.main(_args(tiny_dirs, out, "--steps", "2", "--eval-every", "0", "--lr", "5e-4"))
    assert code == 2
    err = capsys.readouterr().err
    assert "different settings" in err and "lr: saved 0.001, now 0.0005" in err


def test_a_failed_save_keeps_the_last_good_checkpoint(tiny_dirs, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_save, calls = torch.save, []

    def save_until_disk_full(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half a checkpoint")  # the disk fills up mid-write
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(finetune.torch, "save", save_until_disk_full)
    with pytest.raises(S2TEduError, match="No space left.*step-000002.*is intact"):
        finetune.run(finetune.parse_args(_args(tiny_dirs, out, "--steps", "6", "--save-every", "2",
                                               "--eval-every", "0")))  # fmt: skip
    assert finetune.latest_checkpoint(out).name == "step-000002"
    assert _weights(out)  # loads
    assert not list((out / "checkpoints").glob(".tmp-*"))


def test_out_of_memory_becomes_advice(tiny_dirs, tmp_path, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(s2t_edu.training.loop, "train_step", oom)
    with pytest.raises(S2TEduError, match="does not fit in memory") as error:
        finetune.run(finetune.parse_args(_args(tiny_dirs, tmp_path / "run", "--steps", "2")))
    assert "--batch-size 2" in str(error.value)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--encoder", "whisper-tiny", "did you mean 'whisper-tiny.en'"),
        ("--corpus", "huge", "unknown corpus size"),
        ("--device", "tpu", "unknown --device"),
        ("--init", "pretrained", "invalid choice"),
    ],
)
def test_bad_input_gets_a_clear_message(tiny_dirs, tmp_path, capsys, flag, value, message):
    args = _args(tiny_dirs, tmp_path / "run", "--steps", "1", flag, value)  # the last one wins
    try:
        code = finetune.main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_the_gpu_profile_runs_on_cpu(tiny_dirs, tmp_path):
    """End to end, length-grouped, bf16 autocast, data-loader workers: the CUDA defaults, on CPU."""
    from transformers import WhisperForConditionalGeneration

    out = tmp_path / "gpu-profile"
    flags = ["--steps", "3", "--eval-every", "3", "--no-save-model", "--workers", "2",
             "--end-to-end", "--group-by-length", "--precision", "bf16"]  # fmt: skip
    assert finetune.main(_args(tiny_dirs, out, *flags)) == 0
    saved = json.loads((out / "run_config.json").read_text())
    assert (saved["end_to_end"], saved["group_by_length"], saved["precision"]) == (
        True,
        True,
        "bf16",
    )
    history = json.loads((out / "metrics.json").read_text())
    assert all(np.isfinite(r["loss"]) for r in history) and "wer" in history[-1]
    # End to end: the encoder's weights were trained and checkpointed (a frozen run keeps them out).
    original = WhisperForConditionalGeneration.from_pretrained(tiny_dirs[0]).model.encoder
    weights = _weights(out)
    trained = {k: v for k, v in weights.items() if k.startswith("encoder.layers.")}
    assert trained and any(
        not torch.equal(v, original.state_dict()[k.removeprefix("encoder.")])
        for k, v in trained.items()
    )


def test_cpu_defaults_freeze_the_encoder_in_fp32(tiny_dirs, tmp_path):
    out = tmp_path / "cpu-profile"
    assert finetune.main(_args(tiny_dirs, out, "--steps", "1", "--eval-every", "0")) == 0
    saved = json.loads((out / "run_config.json").read_text())
    assert (saved["end_to_end"], saved["group_by_length"], saved["precision"]) == (
        False,
        False,
        "fp32",
    )
    assert not any(k.startswith("encoder.layers.") for k in _weights(out))


def test_cuda_requested_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(S2TEduError, match="no CUDA GPU"):
        finetune.pick_device("cuda")
    assert finetune.pick_device("auto").type == "cpu"


def test_accelerate_launch_runs_the_same_script(tiny_dirs, tmp_path):
    out = tmp_path / "launched"
    launcher = Path(sys.executable).with_name("accelerate")
    command = [str(launcher), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "s2t_edu.finetune",
               *_args(tiny_dirs, out, "--steps", "2", "--eval-every", "0", "--no-save-model")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "final_metrics.json").read_text())["steps"] == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "-1"], "--lr must be a number > 0"),
        (["--workers", "-1"], "--workers must be a whole number >= 0"),
        (["--eval-clips", "-1", "--eval-every", "1"], "--eval-clips must be a whole number >= 0"),
        (["--steps", "-1"], "--steps must be a whole number >= 0"),
        (["--steps", "0", "--minutes", "-1"], "--minutes must be a number >= 0"),
        (["--window", "0"], "--window must be whole seconds from 1 to 30"),
        (["--max-clips", "-3"], "--max-clips must be a whole number >= 1"),
    ],
)
def test_bad_settings_stop_the_cli_before_anything_loads(
    tiny_dirs, tmp_path, capsys, monkeypatch, flags, message
):
    """Checked where Settings is built: exit 2 with problem, value and fix; no model built,
    nothing written (the cases found by trying the CLI: raw errors, or 0 or 1 steps, exit 0)."""

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built for settings that were never valid")

    monkeypatch.setattr(finetune, "build_model_and_processors", no_model)
    out = tmp_path / "run"
    assert finetune.main(_args(tiny_dirs, out, "--steps", "2", *flags)) == 2
    err = capsys.readouterr().err
    assert message in err and "(got: " in err and "\nFix: " in err
    assert "--batch-size 0 or less" not in err
    assert not out.exists()


def test_every_numeric_option_has_a_rule():
    """A new numeric option cannot slip past check_settings: each has a rule (window its own)."""
    numeric = {
        field.name
        for field in dataclasses.fields(finetune.Settings)
        if field.type.split(" |")[0] in ("int", "float")
    }
    assert numeric - {"window"} == set(finetune.NUMBER_RULES)
    for name, (_, bound, fix) in finetune.NUMBER_RULES.items():
        flag = "--" + name.replace("_", "-")
        assert fix.startswith(f"use {flag} "), fix  # the fix names the option it fixes
        finetune.Settings("unused", **{name: bound if name != "lr" else 1e-3})  # bounds pass


def test_a_run_that_never_saved_does_not_block_new_settings(tiny_dirs, tmp_path, monkeypatch):
    """A run stopped before its first checkpoint (here: out of memory) left run_config.json but
    nothing to resume; the next command, with other settings, runs instead of being refused."""
    out = tmp_path / "run"

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with monkeypatch.context() as patch:
        patch.setattr(s2t_edu.training.loop, "train_step", oom)
        with pytest.raises(S2TEduError, match="does not fit in memory"):
            finetune.run(finetune.parse_args(_args(tiny_dirs, out, "--steps", "2")))
    assert (out / "run_config.json").is_file() and finetune.latest_checkpoint(out) is None
    flags = ["--steps", "1", "--batch-size", "2", "--eval-every", "0", "--no-save-model"]
    assert finetune.main(_args(tiny_dirs, out, *flags)) == 0
    assert json.loads((out / "run_config.json").read_text())["batch_size"] == 2


def test_options_that_need_the_model_are_explained(tiny_dirs, tmp_path):
    """--freeze-feature-encoder on Whisper (no conv feature encoder), a --target-column the
    corpus lacks, a Whisper window of 0 s: each an S2TEduError before the first step."""
    end_to_end = ["--steps", "1", "--end-to-end", "--eval-every", "0"]
    with pytest.raises(S2TEduError, match="has no convolutional feature encoder"):
        finetune.run(
            finetune.parse_args(
                _args(tiny_dirs, tmp_path / "a", *end_to_end, "--freeze-feature-encoder")
            )
        )
    with pytest.raises(S2TEduError, match="corpus has no column 'nope'") as error:
        finetune.run(
            finetune.parse_args(
                _args(tiny_dirs, tmp_path / "b", *end_to_end, "--target-column", "nope")
            )
        )
    assert "text_de" in error.value.fix
    with pytest.raises(S2TEduError, match="whole number of seconds"):
        finetune.build_model_and_processors(*tiny_dirs, window=0)
