"""Make a fine-tuned zoo entry: train, pack the trained tensors, score, write the model card.

    python tools/finetune_zoo.py w2v2-minilm-synth
    python tools/finetune_zoo.py w2v2-minilm-en-de-synth

One command per entry, recorded in its card. Steps:

1. ``python -m s2t_edu.finetune`` once per stage of the entry's recipe
   (``s2t_edu.pretrained.finetuned``: decoder on cached encoder frames, then end to end from
   those weights) into ``--work-dir`` (default: the s2t_edu cache). Interrupted? Run the same
   command again: the CLI resumes from its last checkpoint to the same weights. A finished
   stage is not redone.
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
import signal
import subprocess
import sys
import tempfile
import threading
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
        # the entry's own folder is left out: the tool has just written the weights there
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "s2t_edu", ":(exclude)s2t_edu/pretrained/checkpoints"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (s2t_edu/ has uncommitted changes)" if dirty else "")


class LoadSampler:
    """The machine's 1-minute load average, sampled every ``every`` seconds in a thread while
    a stage trains: the card says how busy the 2 shared cores were."""

    def __init__(self, every: float = 30.0):
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            if self._stop.wait(self.every):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


TOOL_RUNS = "zoo_tool_runs.json"  # per stage folder: wall time and load of each invocation


def latest_step(out: Path) -> int:
    """The step of the stage's newest checkpoint, ``step-NNNNNN`` (0 before the first one)."""
    from s2t_edu.training.finetune import latest_checkpoint

    checkpoint = latest_checkpoint(out)
    return int(checkpoint.name.removeprefix("step-")) if checkpoint else 0


def train_stages(recipe: finetuned.Recipe, work: Path) -> list[dict]:
    """Train every stage (resuming where a run stopped); the CLI's final metrics of each.
    Each invocation that trains a stage appends its wall time, load samples and the step it
    started from to the stage folder's ``zoo_tool_runs.json``, also when it is stopped
    (Ctrl-C or SIGTERM; a SIGKILL or a power cut leaves no record)."""
    finals = []
    for index in range(len(recipe.stages)):
        out = recipe.stage_dir(work, index)
        done = (out / "final_metrics.json").is_file() and (out / "model").is_dir()
        if done:  # read back, not trained: nothing to add
            print(f"{out} already holds the finished stage: not training again", file=sys.stderr)
            finals.append(finetuned.train_stage(recipe, work, index))
            continue
        started, from_step, finished = time.perf_counter(), latest_step(out), False
        try:
            with LoadSampler() as load:
                finals.append(finetuned.train_stage(recipe, work, index))
            finished = True
        finally:
            runs = json.loads((out / TOOL_RUNS).read_text()) if (out / TOOL_RUNS).is_file() else []
            runs.append(
                {
                    "wall_seconds": round(time.perf_counter() - started, 1),
                    "load": load.samples,
                    "started_at_step": from_step,
                    "finished": finished,
                }
            )
            (out / TOOL_RUNS).write_text(json.dumps(runs))
    return finals


def stage_record(recipe, index: int, work: Path, final: dict) -> dict:
    """What one stage did: settings, time (training only, and the whole invocation with the
    cache build and final scoring), the machine's load, losses, validation WER."""
    stage, out = recipe.stages[index], recipe.stage_dir(work, index)
    history = json.loads((out / "metrics.json").read_text())
    runs = json.loads((out / TOOL_RUNS).read_text()) if (out / TOOL_RUNS).is_file() else []
    load = [x for run in runs for x in run["load"]]
    steps = final["steps"]
    return {
        "stage": stage.name,
        "end_to_end": stage.end_to_end,
        "finetune_args": recipe.stage_args("WORK_DIR", index),
        "steps": steps,
        "batch_size": stage.batch_size,
        "peak_lr": stage.lr,
        "warmup_steps": stage.warmup_steps,
        "train_wall_seconds": final["elapsed"],
        "seconds_per_step": round(final["elapsed"] / max(steps, 1), 3),
        "stage_wall_seconds": round(sum(run["wall_seconds"] for run in runs), 1),
        "recorded_runs": len(runs),
        # steps trained by runs that left no record (before this tool recorded stopped runs)
        "unrecorded_steps": min((run.get("started_at_step", 0) for run in runs), default=steps),
        "load_average": {
            "mean": round(sum(load) / len(load), 2) if load else None,
            "min": min(load, default=None),
            "max": max(load, default=None),
        },
        "loss_first_20_steps": round(sum(r["loss"] for r in history[:20]) / len(history[:20]), 4),
        "loss_last_20_steps": round(sum(r["loss"] for r in history[-20:]) / len(history[-20:]), 4),
        "validation": [
            {"step": r["step"], "wer": round(r["wer"], 4)} for r in history if "wer" in r
        ],
        "fp32_model_wer_at_end": {
            split: round(final[f"{split}_wer"], 4) for split in SCORED_SPLITS
        },
    }


def record(recipe, work, finals, scores, trained_path, assemble_seconds, note) -> dict:
    from s2t_edu.data.corpus import corpus_dir

    counts = CORPUS_SIZES[recipe.corpus]
    train_meta = (corpus_dir(recipe.corpus, recipe.seed) / "train.jsonl").read_text().splitlines()
    hours = sum(json.loads(line)["duration"] for line in train_meta if line) / 3600
    stages = [stage_record(recipe, i, work, final) for i, final in enumerate(finals)]
    return {
        "name": recipe.name,
        "task": recipe.task,
        "command": recipe.command,
        "encoder": finetuned.ENCODER,
        "decoder": finetuned.DECODER,
        "target_column": recipe.target_column,
        "corpus": f"{recipe.corpus} (corpus seed {recipe.seed}), train split, "
        f"{counts['train']} clips, {hours:.2f} h",
        "threads": recipe.threads,
        "stages": stages,
        "train_wall_seconds": round(sum(s["train_wall_seconds"] for s in stages), 1),
        "wall_seconds": round(sum(s["stage_wall_seconds"] for s in stages), 1),
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


WHY_TWO_STAGES = (
    "Why two stages: the encoder, `w2v2-synth-ctc`, was already trained on this corpus (CTC, "
    "character error rate 1.9% on its test split), so what is new is the decoder's side: "
    "cross-attention and the projection start random and must learn to read the encoder's "
    "frames, and MiniLM must learn to write the task's sentences. Stage 1 trains exactly that "
    "with the encoder frozen and its frames computed once per clip "
    "(`s2t_edu.training.encoder_cache`: a clip's frames equal its frames inside a padded batch "
    "with the attention mask, tested), so a step costs the decoder only and many steps fit in "
    "CPU minutes. Stage 2 then trains end to end on raw 16 kHz `input_values` (everything but "
    "the conv feature encoder and the word embeddings), starting from stage 1's weights "
    "(`--init-from`), with a lower learning rate: the encoder adapts to the decoder, as in the "
    "page's training example. A single end-to-end run of 800 steps on the same machine "
    "(earlier version of this entry) pays the encoder's forward and backward pass on every step "
    "and got far fewer updates for the same time."
)


def wall_sentence(stage: dict) -> str:
    """How long the tool's runs of a stage took, and what that figure leaves out."""
    what = ("computing the cached frames, " if not stage["end_to_end"] else "") + (
        "validation and the final scoring"
    )
    wall = f"{stage['stage_wall_seconds']:.0f} s wall with {what}"
    unrecorded = stage.get("unrecorded_steps", 0)
    if unrecorded:
        wall += (
            f", counted from step {unrecorded} on (the runs that trained steps 1-{unrecorded} "
            "were stopped before they could record their wall time)"
        )
    return wall


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
        "cross-attention, fine-tuned on the course's synthetic espeak-ng corpus, last end to "
        "end on raw 16 kHz `input_values`. Its processor is a `Wav2Vec2Processor` (the "
        "encoder's feature extractor + MiniLM's uncased `BertTokenizer`), so the transformers "
        "page's inference lines run on it unchanged:",
        "",
        "    from transformers import SpeechEncoderDecoderModel, Wav2Vec2Processor",
        "    from s2t_edu.pretrained import resolve",
        f'    model = SpeechEncoderDecoderModel.from_pretrained(resolve("{rec["name"]}"))',
        f'    processor = Wav2Vec2Processor.from_pretrained(resolve("{rec["name"]}"))',
        '    input_values = processor(audio, return_tensors="pt").input_values',
        "    generated_ids = model.generate(input_values)",
        "    text = processor.batch_decode(generated_ids, skip_special_tokens=True)",
        "",
        "Made with one command (it resumes if interrupted, stage by stage):",
        "",
        f"    {rec['command']}",
        "",
        "which runs `python -m s2t_edu.finetune` once per stage, with 1 CPU thread:",
        "",
    ]
    for number, stage in enumerate(rec["stages"], 1):
        args = " ".join(a.replace("WORK_DIR", "<work dir>") for a in stage["finetune_args"])
        load = stage["load_average"]
        lines += [
            f"{number}. `{stage['stage']}`: `{args}`",
            f"   - {stage['steps']} steps of {stage['batch_size']} clips, peak lr "
            f"{stage['peak_lr']}, warm-up {stage['warmup_steps']} steps, then linear decay "
            "(the CLI's schedule), AdamW, gradient norm clipped at 1.0",
            f"   - {stage['train_wall_seconds']:.0f} s of training ({stage['seconds_per_step']} "
            f"s/step); {wall_sentence(stage)}; load average {load['mean']} "
            f"(min {load['min']}, max {load['max']}) on the 2-core machine, shared with other work",
            f"   - training loss {stage['loss_first_20_steps']} -> {stage['loss_last_20_steps']} "
            "nats/token (mean of the first and last 20 steps); validation WER "
            + ", ".join(f"{v['wer']} (step {v['step']})" for v in stage["validation"]),
        ]
    lines += [
        "",
        f"- data: {rec['corpus']}; target column `{rec['target_column']}`",
        f"- in all {rec['train_wall_seconds']:.0f} s of training (the CLI's clock, across resumes)",
        f"- torch {rec['torch']}, transformers {rec['transformers']}, git {rec['git']}, "
        f"{rec['date']}",
        "",
        WHY_TWO_STAGES,
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
    lines += ["", "Examples (test):", ""]
    for example in rec["scores"]["test"]["examples"]:
        lines.append(f"- `{example['reference']}` -> `{example['output']}`")
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
    parser.add_argument("--work-dir", help="where the stages train (default: in the s2t_edu cache)")
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
    work = Path(args.work_dir or cache_root() / "zoo-runs" / f"{recipe.name}-stages")
    # a SIGTERM (kill, a closing session) unwinds like Ctrl-C, so the stopped run is recorded
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    finals = train_stages(recipe, work)
    if args.train_only:
        return 0
    last = recipe.stage_dir(work, len(recipe.stages) - 1)
    trained_model = transformers.SpeechEncoderDecoderModel.from_pretrained(last / "model")
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
    rec = record(recipe, work, finals, scores, trained_path, assemble_seconds, args.note)
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
