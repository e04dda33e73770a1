"""How much a 5 s Whisper window saves: encoder time for 30 s vs 5 s of input, same clips.

    python benchmarks/whisper_window.py [--repeats 9] [--batch 8] [--seconds 5]

Whisper tiny.en's encoder (from the zoo) encodes the same batch of course clips with its
standard 30 s window and with the window cut by ``shorten_whisper_window``. The two are timed
in alternation, so load on a shared machine hits both alike; the speed-up is the median of the
per-pair ratios. The input shrinks by exactly 30 / seconds (3000 → 500 mel frames for 5 s);
the time shrinks by more, because self-attention's cost grows with the square of the frames.
Writes ``benchmarks/results/whisper_window.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

from s2t_edu.data import load_corpus
from s2t_edu.pretrained import resolve, shorten_whisper_window, whisper_feature_extractor

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "whisper_window.json"))
    args = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    whisper = WhisperForConditionalGeneration.from_pretrained(resolve("whisper-tiny.en"))
    full = whisper.model.encoder.eval()
    short = shorten_whisper_window(copy.deepcopy(full), args.seconds)
    clips = [
        row["audio"]["array"] for row in load_corpus("course")["test"].select(range(args.batch))
    ]
    full_features = WhisperFeatureExtractor.from_pretrained(resolve("whisper-tiny.en"))
    short_features = whisper_feature_extractor("whisper-tiny.en", args.seconds)
    inputs = {
        "30 s": (full, full_features(clips, sampling_rate=16_000, return_tensors="pt").input_features),
        f"{args.seconds} s": (short, short_features(clips, sampling_rate=16_000, return_tensors="pt").input_features),
    }  # fmt: skip
    times = {name: [] for name in inputs}
    with torch.inference_mode():
        for encoder, features in inputs.values():  # warm-up
            encoder(features)
        for _ in range(args.repeats):
            for name, (encoder, features) in inputs.items():
                started = time.perf_counter()
                encoder(features)
                times[name].append(time.perf_counter() - started)
    long_name, short_name = inputs
    ratios = [a / b for a, b in zip(times[long_name], times[short_name], strict=True)]
    result = {
        "command": "python benchmarks/whisper_window.py " + " ".join(argv or sys.argv[1:]),
        "what": f"Whisper tiny.en encoder forward, batch of {args.batch} course test clips",
        "mel_frames": {name: int(f.shape[-1]) for name, (_, f) in inputs.items()},
        "input_ratio": inputs[long_name][1].shape[-1] / inputs[short_name][1].shape[-1],
        "ms_per_clip_median": {
            name: round(1000 * statistics.median(t) / args.batch, 1) for name, t in times.items()
        },
        "speedup_median": round(statistics.median(ratios), 2),
        "speedup_min_max": [round(min(ratios), 2), round(max(ratios), 2)],
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
