"""Make a fine-tuned zoo entry: train, pack the trained tensors, score, write the model card.

    python tools/finetune_zoo.py w2v2-minilm-synth
    python tools/finetune_zoo.py w2v2-minilm-en-de-synth

One command per entry, recorded in its card. Steps:

1. ``python -m s2t_edu.finetune`` with the entry's recipe (``s2t_edu.pretrained.finetuned``)
   into ``--work-dir`` (default: the s2t_edu cache). Interrupted? Run the same command again:
   the CLI resumes from its last checkpoint to the same weights. A finished run is not redone.
2. The tensors training changed, float16, into ``s2t_edu/pretrained/checkpoints/NAME/
   trained.safetensors`` (frozen tensors are checked unchanged and left out).
3. The full checkpoint assembled from that file exactly as ``resolve(NAME)`` does, and scored
   with greedy ``generate`` on the corpus's ``test`` and ``test_unseen_voice`` splits.
4. ``training.json`` (every number) and ``README.md`` (the model card) beside the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

from s2t_edu.data.cache import cache_root
from s2t_edu.data.corpus import CORPUS_SIZES, load_corpus
from s2t_edu.pretrained import finetuned

ROOT = Path(__file__).resolve().parent.parent
SCORED_SPLITS = ("test", "test_unseen_voice")


def git_description() -> str:
    """The commit the code came from, and whether s2t_edu/ had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "s2t_edu"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (s2t_edu/ has uncommitted changes)" if dirty else "")


def train_once(recipe: finetuned.Recipe, work: Path) -> dict:
    """Train (or resume); a run that already reached its steps is read back, not redone."""
    final_path = work / "final_metrics.json"
    if final_path.is_file():
        final = json.loads(final_path.read_text())
        if final.get("steps") == recipe.steps and (work / "model").is_dir():
            print(f"{work} already holds the finished run: not training again", file=sys.stderr)
            return final
    return finetuned.train(recipe, work)


def record(recipe, final, history, scores, trained_path, assemble_seconds, note) -> dict:
    from s2t_edu.data.corpus import corpus_dir

    counts = CORPUS_SIZES[recipe.corpus]
    train_meta = (corpus_dir(recipe.corpus, recipe.seed) / "train.jsonl").read_text().splitlines()
    hours = sum(json.loads(line)["duration"] for line in train_meta if line) / 3600
    steps = final["steps"]
    return {
        "name": recipe.name,
        "task": recipe.task,
        "command": recipe.command,
        "finetune_args": recipe.finetune_args("WORK_DIR"),
        "encoder": finetuned.ENCODER,
        "decoder": finetuned.DECODER,
        "target_column": recipe.target_column,
        "corpus": f"{recipe.corpus} (corpus seed {recipe.seed}), train split, "
        f"{counts['train']} clips, {hours:.2f} h",
        "steps": steps,
        "batch_size": recipe.batch_size,
        "peak_lr": recipe.lr,
        "warmup_steps": recipe.warmup_steps,
        "threads": recipe.threads,
        "train_wall_seconds": final["elapsed"],
        "seconds_per_step": round(final["elapsed"] / max(steps, 1), 3),
        "loss_first_20_steps": round(sum(r["loss"] for r in history[:20]) / 20, 4),
        "loss_last_20_steps": round(sum(r["loss"] for r in history[-20:]) / 20, 4),
        "validation": [
            {"step": r["step"], "wer": round(r["wer"], 4)} for r in history if "wer" in r
        ],
        "fp32_model_wer_during_run": {
            split: round(final[f"{split}_wer"], 4) for split in SCORED_SPLITS
        },
        "scores": scores,
        "trained_file_bytes": trained_path.stat().st_size,
        "total_params": sum(p.numel() for p in finetuned.starting_model(recipe)[0].parameters()),
        "trained_tensors_params": sum(
            t.numel() for t in finetuned.load_file(trained_path).values()
        ),
        "assemble_seconds": round(assemble_seconds, 1),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "git": git_description(),
        "date": time.strftime("%Y-%m-%d"),
        "note": note,
    }


def card(rec: dict) -> str:
    """The model card: what it is, how it was made, how good it is, and the licence."""
    what = {
        "transcribe": "speech recognition: English speech in, English text out",
        "translate": "speech translation: English speech in, German text out (written "
        "without umlauts: ae, oe, ue, ss)",
    }[rec["task"]]
    lines = [
        f"# {rec['name']}",
        "",
        f"A `SpeechEncoderDecoderModel` for {what}: the zoo's `{rec['encoder']}` wav2vec2 "
        f"encoder and the `{rec['decoder']}` BERT (all-MiniLM-L6-v2) decoder with new "
        "cross-attention, fine-tuned end to end on raw 16 kHz `input_values` of the course's "
        "synthetic espeak-ng corpus. Its processor is a `Wav2Vec2Processor` (the encoder's "
        "feature extractor + MiniLM's uncased `BertTokenizer`), so the transformers page's "
        "inference lines run on it unchanged:",
        "",
        "    from transformers import SpeechEncoderDecoderModel, Wav2Vec2Processor",
        "    from s2t_edu.pretrained import resolve",
        f'    model = SpeechEncoderDecoderModel.from_pretrained(resolve("{rec["name"]}"))',
        f'    processor = Wav2Vec2Processor.from_pretrained(resolve("{rec["name"]}"))',
        '    input_values = processor(audio, return_tensors="pt").input_values',
        "    generated_ids = model.generate(input_values)",
        "    text = processor.batch_decode(generated_ids, skip_special_tokens=True)",
        "",
        "Made with one command (it resumes if interrupted):",
        "",
        f"    {rec['command']}",
        "",
        "which runs `python -m s2t_edu.finetune` with "
        + " ".join(a if a != "WORK_DIR" else "<work dir>" for a in rec["finetune_args"]),
        "",
        f"- data: {rec['corpus']}; target column `{rec['target_column']}`",
        f"- steps {rec['steps']}, batch {rec['batch_size']}, peak lr {rec['peak_lr']}, "
        f"warm-up {rec['warmup_steps']}, linear warm-up and decay (the CLI's schedule), AdamW, "
        "clip 1.0; the conv feature encoder and the decoder's word embeddings (tied to the "
        "output layer) frozen",
        f"- {rec['threads']} CPU thread, {rec['train_wall_seconds']:.0f} s of training "
        f"({rec['seconds_per_step']} s/step on a 2-core machine shared with other work)",
        f"- training loss: {rec['loss_first_20_steps']} nats/token (first 20 steps) -> "
        f"{rec['loss_last_20_steps']} (last 20)",
        f"- torch {rec['torch']}, transformers {rec['transformers']}, git {rec['git']}, "
        f"{rec['date']}",
        "",
        "## Scores",
        "",
        "Greedy `generate` on the assembled checkpoint (the float16 trained tensors, as "
        "`resolve` builds it), on the held-out splits: `test` (seen voices, sentences never "
        "in training) and `test_unseen_voice` (the same sentences, a voice and rate never in "
        "training).",
        "",
    ]
    metrics = ["wer"] + (["bleu", "chrf", "exact_match"] if rec["task"] == "translate" else [])
    lines += ["| split | clips | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for split, s in rec["scores"].items():
        lines.append(f"| {split} | {s['clips']} | " + " | ".join(str(s[m]) for m in metrics) + " |")
    if rec["task"] == "translate":
        lines += [
            "",
            "BLEU and chrF are sacrebleu's corpus scores with its default settings; exact match "
            "is the share of clips whose output equals the reference. WER here is against the "
            "German reference. The German comes from `s2t_edu.data.sentences.to_german` (the "
            "grammar's parallel German) spelled by `ascii_german`: MiniLM's uncased tokenizer "
            "strips accents (grün -> grun, schön -> schon), so the target spells umlauts ae, oe, "
            "ue and ß as ss.",
        ]
    if rec.get("note"):
        lines += ["", f"Note: {rec['note']}"]
    lines += [
        "",
        "## What is stored",
        "",
        f"The repository holds `trained.safetensors`: the {rec['trained_tensors_params']:,} "
        f"parameters training changed, in float16 ({rec['trained_file_bytes'] / 1e6:.1f} MB). "
        "The frozen tensors (the conv feature encoder of `w2v2-synth-ctc`, MiniLM's word "
        "embeddings) are taken from their sources, which the repository and a pip package "
        "already ship: `resolve(name)` assembles the full float32 checkpoint into the s2t_edu "
        f"cache on first use ({rec['assemble_seconds']} s on 2 cores, with a progress bar) and "
        f"reuses it afterwards. The whole model in float16 would take "
        f"{rec['total_params'] * 2 / 1e6:.1f} MB.",
        "",
        "## Licence",
        "",
        "Apache-2.0 for these weights (MiniLM's all-MiniLM-L6-v2 is Apache-2.0; `w2v2-synth-ctc`"
        " was trained by this project, Apache-2.0). The training audio was made with espeak-ng "
        "(GPL-3.0), used as a tool; no espeak-ng code or data is part of this checkpoint. It has "
        "never heard human speech: outside espeak-ng's voices it is of no use.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(finetuned.RECIPES))
    parser.add_argument("--work-dir", help="where the run trains (default: in the s2t_edu cache)")
    parser.add_argument("--train-only", action="store_true", help="stop after training")
    parser.add_argument("--note", default="", help="what the card should say about this run")
    parser.add_argument(
        "--card-only", action="store_true", help="rewrite README.md from training.json (and --note)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    transformers.logging.set_verbosity_error()
    recipe = finetuned.recipe_of(args.name)
    if args.card_only:
        path = finetuned.CHECKPOINTS / recipe.name / "training.json"
        rec = json.loads(path.read_text())
        rec["note"] = args.note or rec.get("note", "")
        path.write_text(json.dumps(rec, indent=1) + "\n")
        (path.parent / "README.md").write_text(card(rec))
        return 0
    work = Path(args.work_dir or cache_root() / "zoo-runs" / recipe.name)

    final = train_once(recipe, work)
    if args.train_only:
        return 0
    history = json.loads((work / "metrics.json").read_text())
    trained_model = transformers.SpeechEncoderDecoderModel.from_pretrained(work / "model")
    start_model = finetuned.starting_model(recipe)[0]
    destination = finetuned.CHECKPOINTS / recipe.name
    trained_path = finetuned.pack(trained_model, start_model, destination)
    del trained_model, start_model

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        directory = finetuned.assemble_into(Path(tmp) / "model", destination, recipe)
        assemble_seconds = time.perf_counter() - started
        model = transformers.SpeechEncoderDecoderModel.from_pretrained(directory)
        processor = transformers.AutoProcessor.from_pretrained(directory)
        corpus = load_corpus(recipe.corpus, recipe.seed)
        scores = {
            split: finetuned.score(model, processor, list(corpus[split]), recipe)
            for split in SCORED_SPLITS
        }
    rec = record(recipe, final, history, scores, trained_path, assemble_seconds, args.note)
    (destination / "training.json").write_text(json.dumps(rec, indent=1) + "\n")
    (destination / "README.md").write_text(card(rec))
    print(
        json.dumps(
            {split: {k: v for k, v in s.items() if k != "examples"} for split, s in scores.items()}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
