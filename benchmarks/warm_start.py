"""The warm-start claim, measured fairly: which pretrained part makes a composite learn?

Four arms of the same architecture (Whisper tiny.en's encoder, 5 s window, + a MiniLM-sized
BERT decoder with cross-attention), the same data order and the same number of steps — the
four arms of the warm-starting literature:

| arm            | encoder                          | decoder    |
|----------------|----------------------------------|------------|
| ``warm``         | pretrained (frozen, cached)      | pretrained |
| ``encoder-warm`` | pretrained (frozen, cached)      | random     |
| ``decoder-warm`` | random, **trained end to end**   | pretrained |
| ``random``       | random, **trained end to end**   | random     |

Cross-attention and the projection start random in every arm (a BERT checkpoint has none).
An encoder that starts random is trained: a frozen random encoder could never learn the audio.
A pretrained encoder is frozen (its outputs cached once, the course's CPU profile): those
arms train fewer parameters and are not the ones the comparison flatters by compute. Each arm is run at every learning rate
in ``LRS`` and reported at the one with the best final validation WER; every run is recorded.

    python benchmarks/warm_start.py --profile short   # 300 steps of 16 clips per run
    python benchmarks/warm_start.py --profile full    # 900 steps

Writes ``benchmarks/results/warm_start_<profile>.{json,csv,png}`` after every finished run
(partial results survive a stop; the same command resumes an interrupted run from its last
checkpoint). Step budgets (not minutes) keep the runs comparable on a busy machine; the wall
time of each run is recorded too. This is a benchmark, run by hand: CI never runs it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

from s2t_edu.training.finetune import parse_args, plot_curves, run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PROFILES = {
    "short": {"steps": 300, "eval_every": 50},
    "full": {"steps": 900, "eval_every": 100},
}
ARMS = ("warm", "encoder-warm", "decoder-warm", "random")  # = finetune --init
LRS = (1e-3, 3e-4)
COMMAND = "python -m s2t_edu.finetune"


def run_name(arm: str, lr: float) -> str:
    return f"{arm}@lr{lr:g}"


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--lrs", nargs="+", type=float, default=list(LRS))
    parser.add_argument("--work-dir", default=str(ROOT / ".cache" / "runs" / "warm_start"))
    parser.add_argument(
        "--collect-only", action="store_true",
        help="write the result files from the finished runs in --work-dir, train nothing",
    )  # fmt: skip
    args = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars
    profile = PROFILES[args.profile]
    runs: dict[str, dict] = {}
    for arm in args.arms:
        for lr in args.lrs:
            name = run_name(arm, lr)
            out = Path(args.work_dir) / f"{args.profile}-{name}"
            command = [
                "--init", arm, "--lr", f"{lr:g}", "--corpus", "course",
                "--steps", str(profile["steps"]), "--eval-every", str(profile["eval_every"]),
                "--eval-clips", "100", "--save-every", str(profile["eval_every"]),
                "--no-save-model", "--quiet", "--device", "cpu", "--output-dir", str(out),
            ]  # fmt: skip
            if not args.collect_only:
                # No fresh start: an interrupted run resumes from its last checkpoint, because
                # the command and settings are the same. Delete --work-dir to redo.
                load_before = os.getloadavg()[0]
                started = time.perf_counter()
                final = run(parse_args(command))
                final["wall_seconds"] = round(time.perf_counter() - started, 1)
                final["load_average_1min_before_after"] = [load_before, os.getloadavg()[0]]
                (out / "benchmark_run.json").write_text(json.dumps(final, indent=1))
            if not (out / "benchmark_run.json").is_file():
                continue
            final = json.loads((out / "benchmark_run.json").read_text())
            history = json.loads((out / "metrics.json").read_text())
            runs[name] = {
                "arm": arm,
                "lr": lr,
                "command": f"{COMMAND} " + " ".join(command),
                "final": final,
                "history": history,
            }
            print(name, _summary(runs[name]), flush=True)
            _write_results(args.profile, profile, runs)
    return 0


def _summary(entry: dict) -> dict:
    final = entry["final"]
    return {
        "validation_wer": _last_validation_wer(entry),
        "test_wer": final["test_wer"],
        "test_unseen_voice_wer": final["test_unseen_voice_wer"],
        "wall_seconds": final["wall_seconds"],
    }


def _last_validation_wer(entry: dict) -> float:
    return [r["wer"] for r in entry["history"] if "wer" in r][-1]


def _machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


def _write_results(profile_name: str, profile: dict, runs: dict) -> None:
    """``benchmarks/results/warm_start_<profile>.{json,csv,png}`` from the runs so far."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"warm_start_{profile_name}"
    arms = {}
    for arm in ARMS:
        tried = [entry for entry in runs.values() if entry["arm"] == arm]
        if not tried:
            continue
        best = min(tried, key=_last_validation_wer)  # chosen on validation, never on test
        final = best["final"]
        arms[arm] = {
            "pretrained": final["pretrained"],
            "trained": final["trained"],
            "lr": best["lr"],
            "steps": final["steps"],
            "validation_wer": _last_validation_wer(best),
            "test_wer": final["test_wer"],
            "test_unseen_voice_wer": final["test_unseen_voice_wer"],
            "test_examples": final["test_examples"][:2],
            "wall_seconds": final["wall_seconds"],
            "command": best["command"],
            "lrs_tried": {f"{e['lr']:g}": _summary(e) for e in tried},
        }
    result = {
        "claim": "which pretrained part makes a speech encoder-decoder learn in a fixed budget",
        "command": f"python benchmarks/warm_start.py --profile {profile_name}",
        "profile": {**profile, "batch_size": 16, "corpus": "course", "eval_clips": 100},
        "learning_rates": list(LRS),
        "selection": "each arm at the learning rate with the lowest final validation WER",
        "machine": _machine(),
        "arms": arms,
        "curves": {name: [_slim(r) for r in entry["history"]] for name, entry in runs.items()},
    }
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "arm", "lr", "step", "loss", "validation_wer", "elapsed_s"])
        for name, entry in runs.items():
            for r in entry["history"]:
                writer.writerow(
                    [name, entry["arm"], entry["lr"], r["step"], f"{r['loss']:.4f}",
                     r.get("wer", ""), r["elapsed"]]
                )  # fmt: skip
    best_runs = {
        f"{arm} (lr {a['lr']:g})": runs[run_name(arm, a["lr"])]["history"]
        for arm, a in arms.items()
    }
    title = f"four inits, each at its best lr: {profile['steps']} steps of 16 clips, 2 CPU cores"
    plot_curves(best_runs, stem.with_suffix(".png"), title=title)
    print("wrote", stem.with_suffix(".json"), flush=True)


def _slim(record: dict) -> dict:
    keys = ("step", "loss", "lr", "elapsed", "eval_loss", "wer")
    return {k: record[k] for k in keys if k in record}


if __name__ == "__main__":
    sys.exit(main())
