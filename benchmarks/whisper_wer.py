"""How good is the zoo's Whisper tiny.en on the course corpus? WER on ``test`` and ``test_unseen_voice``.

    .venv/bin/python benchmarks/whisper_wer.py                 # course corpus, 200 + 200 clips
    .venv/bin/python benchmarks/whisper_wer.py --size tiny     # 8 + 8 clips, seconds

The converted checkpoint (``s2t_edu.pretrained.resolve("whisper-tiny.en")``), greedy decoding
with ``generate``, no prompt; transcripts and references are lowercased and stripped of
punctuation before scoring (Whisper writes "The dog." for "the dog"). Two input windows: the
standard 30 s, and the 5 s window the course's CPU training uses
(:func:`s2t_edu.pretrained.whisper.shorten_whisper_window`), to show what the shortcut costs before any
fine-tuning. Writes ``benchmarks/results/whisper_tiny_en_wer_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def normalise(text: str) -> str:
    """Lowercase, keep letters, digits and apostrophes, collapse spaces (the corpus's style)."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def transcribe(model, extractor, tokenizer, clips, batch_size=16) -> tuple[list[str], float]:
    """Greedy transcripts of 16 kHz arrays, and the seconds it took."""
    import torch

    texts, started = [], time.perf_counter()
    for start in range(0, len(clips), batch_size):
        features = extractor(
            clips[start : start + batch_size], sampling_rate=16000, return_tensors="pt"
        ).input_features
        with torch.no_grad():
            ids = model.generate(features, max_new_tokens=60, do_sample=False, num_beams=1)
        texts += tokenizer.batch_decode(ids, skip_special_tokens=True)
    return texts, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="course", help="corpus size: tiny, course or large")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    import transformers
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    from s2t_edu.data.corpus import load_corpus
    from s2t_edu.metrics import cer, wer
    from s2t_edu.pretrained.whisper import shorten_whisper_window
    from s2t_edu.pretrained.zoo import resolve

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    path = resolve("whisper-tiny.en")
    processor = WhisperProcessor.from_pretrained(path)
    corpus = load_corpus(args.size)
    result = {
        "what": "zoo whisper-tiny.en (converted from CTranslate2), greedy generate, no prompt",
        "command": "python benchmarks/whisper_wer.py " + " ".join(argv or sys.argv[1:]),
        "corpus": args.size,
        "scoring": "lowercased, punctuation removed; s2t_edu.metrics.wer / cer",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch threads",
        "windows": {},
    }
    for window in (30, 5):
        model = WhisperForConditionalGeneration.from_pretrained(path).eval()
        extractor = WhisperFeatureExtractor.from_pretrained(path)
        if window != 30:
            shorten_whisper_window(model, window)
            extractor = WhisperFeatureExtractor(**{**extractor.to_dict(), "chunk_length": window})
            extractor.n_samples = window * extractor.sampling_rate
            extractor.nb_max_frames = extractor.n_samples // extractor.hop_length
        scores = {}
        for split in ("test", "test_unseen_voice"):
            rows = corpus[split]
            references = [normalise(t) for t in rows["text"]]
            clips = [row["audio"]["array"] for row in rows]
            hypotheses, seconds = transcribe(model, extractor, processor.tokenizer, clips)
            hypotheses = [normalise(h) for h in hypotheses]
            scores[split] = {
                "clips": len(clips),
                "wer": round(wer(references, hypotheses), 4),
                "cer": round(cer(references, hypotheses), 4),
                "seconds": round(seconds, 1),
                "examples": [[r, h] for r, h in zip(references, hypotheses, strict=True) if r != h][
                    :3
                ],
            }
            print(f"{window:2d} s window  {split:18s} {scores[split]}", flush=True)
        result["windows"][f"{window}s"] = scores
    out = ROOT / "benchmarks" / "results" / f"whisper_tiny_en_wer_{args.size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
