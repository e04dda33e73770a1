"""Pretrain our own small wav2vec2 speech encoder with CTC, so warm-starting works offline.

The seed examples warm-start a ``SpeechEncoderDecoderModel`` from
``facebook/wav2vec2-base-960h`` or ``facebook/hubert-large-ll60k``. No pip package ships
wav2vec2-family weights and there is no hub here, so the course trains a stand-in: a
``Wav2Vec2ForCTC`` made from scratch and trained with CTC on characters of the synthetic
espeak-ng corpus (:mod:`s2t_edu.data.corpus`). It is what wav2vec2-base-960h is — a wav2vec2 encoder
fine-tuned with CTC on characters — minus the self-supervised pretraining, and about 25x
smaller. The zoo's checkpoint (``resolve("w2v2-synth-ctc")``, committed under
``s2t_edu/checkpoints/``, 15 MB) was made by::

    python tools/pretrain_ctc.py --out s2t_edu/checkpoints/w2v2-synth-ctc --steps 3000 --threads 1

about 30 minutes on one idle CPU core; its ``training.json`` holds the record (loss, time,
greedy CER on the course corpus's test splits) and its ``README.md`` is the model card.
The first 120-step attempt (on a heavily shared machine) stayed on CTC's blank plateau:
CTC needs a few hundred steps before it emits anything but blanks.

Design choices (each one a trade-off made for a CPU):

- **Frames**: the standard wav2vec2 convolution stack (kernels 10,3,3,3,3,2,2, strides
  5,2,2,2,2,2,2: 320 samples = 20 ms per frame, so the frame-length formula of the course
  holds unchanged), but with narrow channels that widen with depth (32 → 256) instead of 512
  everywhere: the early layers run at high time resolution and dominate the cost.
- **Normalisation**: ``feat_extract_norm="layer"`` + ``do_stable_layer_norm=True`` (pre-LN
  transformer), the layout of wav2vec2-large-lv60 and HuBERT-large. Unlike group norm
  (wav2vec2-base), it normalises each frame on its own, so padding cannot leak into real
  frames and an ``attention_mask`` is valid: the processor returns one (see transformers PR
  #10117 for why group-norm models must not get one). Pre-LN also tolerates a high learning
  rate, which a from-scratch run of a few hundred steps needs.
- **Vocabulary**: the 32 tokens of wav2vec2-base-960h's ``vocab.json`` in lowercase
  (``<pad>`` is the CTC blank, ``|`` the word delimiter).
- **Budget by steps, not time**: the same command gives the same weights on the same
  machine and thread count (seeded init, seeded data order, seeded masking), however busy
  the CPU is.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
)

from s2t_edu.data.audio import SAMPLING_RATE, load_audio
from s2t_edu.data.corpus import build_corpus, read_metadata
from s2t_edu.errors import S2TEduError
from s2t_edu.frames import encoder_output_lengths
from s2t_edu.labels import IGNORE_INDEX
from s2t_edu.metrics import cer
from s2t_edu.training.loop import evaluate as loop_evaluate
from s2t_edu.training.loop import set_seed, training_loop

# wav2vec2-base-960h's vocabulary, lowercased: blank/pad first, then <s> </s> <unk>, the
# word delimiter "|" (a space in text), the letters and the apostrophe.
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz", "'"]
DEFAULT_STEPS = 3000  # the zoo checkpoint's budget
DEFAULT_SEED = 0


def encoder_config(**overrides):
    """The ``Wav2Vec2Config`` of the stand-in: hidden 256, 4 layers, ~5M parameters."""
    settings = dict(
        vocab_size=len(VOCAB),
        pad_token_id=VOCAB.index("<pad>"),  # the CTC blank
        bos_token_id=VOCAB.index("<s>"),
        eos_token_id=VOCAB.index("</s>"),
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        conv_dim=(16, 32, 64, 128, 128, 256, 256),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=64,  # relative positions seen by the conv: ±0.64 s
        num_conv_pos_embedding_groups=16,
        hidden_dropout=0.05,
        attention_dropout=0.05,
        activation_dropout=0.05,
        feat_proj_dropout=0.05,
        final_dropout=0.05,
        layerdrop=0.0,  # dropping one of only 4 layers hurts more than it regularises
        mask_time_prob=0.05,
        mask_time_length=5,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    settings.update(overrides)
    return Wav2Vec2Config(**settings)


def build_processor(directory: str | Path):
    """Write ``vocab.json`` into ``directory`` and return a matching ``Wav2Vec2Processor``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.json"
    vocab_file.write_text(json.dumps({token: i for i, token in enumerate(VOCAB)}, indent=1))
    # do_lower_case=True would *upper*-case the text (it is for wav2vec2-base-960h's uppercase
    # vocabulary) and turn every letter into <unk>; our text and vocabulary are lowercase.
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab_file), do_lower_case=False)
    # return_attention_mask: valid for a layer-norm feature encoder (see the module docstring)
    features = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLING_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    return Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer)


def _read_split(size: str, split: str, seed: int) -> list[dict]:
    """All clips of one split in memory as ``{"audio", "text"}`` rows (course train: ~280 MB)."""
    rows = read_metadata(build_corpus(size, seed), split)
    return [{"audio": load_audio(row["path"]), "text": row["text"]} for row in rows]


def sortish_batches(lengths: list[int], batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Batches for ever, epoch after epoch, each epoch as :func:`batch_order` deals it."""
    while True:
        epoch = batch_order(lengths, batch_size, rng)
        while epoch:
            yield epoch.pop()


def batch_order(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches: shuffled, then sorted by length within windows of 50 batches.

    Clips of similar length go together, so little compute is spent on padding, while the
    order still changes every epoch ("sortish" sampling, as in fairseq). The zoo checkpoint
    was trained in this order, so it stays this recipe's own (fine-tuning's
    ``s2t_edu.training.loop.batch_order`` is a pure function of the step instead, for resume).
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


@dataclass
class CTCCollator:
    """Rows ``{"audio", "text"}`` → padded ``input_values``, ``attention_mask`` and CTC ``labels``."""

    processor: Any

    def __call__(self, rows: list[dict]) -> dict:
        inputs = self.processor(
            [row["audio"] for row in rows],
            sampling_rate=SAMPLING_RATE,
            padding=True,
            return_tensors="pt",
        ).data
        texts = [row["text"] for row in rows]
        labels = self.processor.tokenizer(texts, padding=True, return_tensors="pt")
        unknown = labels.input_ids == self.processor.tokenizer.unk_token_id
        if unknown.any():
            raise S2TEduError(
                "a transcript has characters outside the CTC vocabulary",
                "lowercase the text and keep only a-z, space and apostrophe",
                texts[int(unknown.any(-1).nonzero()[0])],
            )
        # padding is ignored: Wav2Vec2ForCTC takes each label's length from labels >= 0
        inputs["labels"] = labels.input_ids.masked_fill(labels.attention_mask == 0, IGNORE_INDEX)
        return inputs


def ctc_loss(model, batch: dict) -> torch.Tensor:
    """The training loop's ``loss_fn``: ``Wav2Vec2ForCTC`` computes CTC itself from the labels."""
    return model(**batch).loss


@torch.no_grad()
def greedy_ctc_texts(model, batch: dict, processor) -> list[str]:
    """Greedy CTC decoding of a batch: argmax per frame, then merge repeats and drop blanks.

    Only a clip's own frames are read: the encoder still outputs (meaningless) frames over the
    padding of a shorter clip in a batch, and their argmax would add stray letters at its end.
    """
    model.eval()
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    ids = model(**inputs).logits.argmax(-1)
    frames = encoder_output_lengths(model.config, inputs["attention_mask"].sum(-1))
    return [processor.decode(ids[row, : int(frames[row])]) for row in range(len(ids))]


def transcribe(model, processor, audio: list[np.ndarray], batch_size: int = 16) -> list[str]:
    """Greedy CTC transcripts of 16 kHz clips, in their order (batched by length: less padding)."""
    order = sorted(range(len(audio)), key=lambda i: len(audio[i]))
    texts = [""] * len(audio)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = processor(
            [audio[i] for i in chunk],
            sampling_rate=SAMPLING_RATE,
            padding=True,
            return_tensors="pt",
        ).data
        for i, text in zip(chunk, greedy_ctc_texts(model, batch, processor), strict=True):
            texts[i] = text
    return texts


def evaluate(model, processor, size: str = "course", seed: int = 0, splits=None) -> dict:
    """CER (greedy decoding) on each split of the corpus, by the training loop's ``evaluate``."""
    splits = splits or ("test", "test_unseen_voice")
    result = {}
    for split in splits:
        rows = sorted(_read_split(size, split, seed), key=lambda row: len(row["audio"]))
        scores = loop_evaluate(
            model,
            rows,
            CTCCollator(processor),
            processor,
            batch_size=16,
            transcribe=greedy_ctc_texts,
            metric=cer,
            loss_fn=None,
        )
        result[split] = round(scores["cer"], 4)
    return result


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak``, then cosine decay to zero at ``steps``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer_and_schedule(model, peak: float, warmup: int, steps: int):
    """AdamW (betas 0.9/0.98, weight decay 0.01 except biases and norms) and the cosine schedule.

    The schedule hands the optimizer :func:`learning_rate` itself (base lr 1, factor = the lr),
    so every step's learning rate is bit for bit the one the zoo checkpoint was trained with.
    """
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or "norm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1.0,
        betas=(0.9, 0.98),
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate(step, steps, peak, warmup)
    )
    return optimizer, schedule


def _git_state() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "s2t_edu"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' (s2t_edu/ has uncommitted changes)' if dirty else ''}"


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def train(
    out: str | Path,
    steps: int = DEFAULT_STEPS,
    seed: int = DEFAULT_SEED,
    size: str = "course",
    batch_size: int = 8,
    lr: float = 2e-3,
    warmup: int = 40,
    threads: int = 2,
    evaluate_splits: bool = True,
    config_overrides: dict | None = None,
    command: str | None = None,
) -> dict:
    """Train the CTC model for ``steps`` steps and save it (with its processor) into ``out``.

    The steps are ``s2t_edu.training.loop.training_loop``'s, with the CTC loss. Returns the training
    record, also written to ``out/training.json``.
    """
    if steps < 1:
        raise S2TEduError("steps must be at least 1", "pass --steps 3000 (the default)", steps)
    torch.set_num_threads(threads)
    # Every source of randomness: init and dropout (torch), time masking (numpy, inside
    # transformers' _compute_mask_indices), data order (our own Random).
    set_seed(seed)
    rng = random.Random(f"pretrain-ctc-{seed}")

    out = Path(out)
    processor = build_processor(out)
    rows = _read_split(size, "train", 0)
    model = Wav2Vec2ForCTC(encoder_config(**(config_overrides or {}))).train()
    optimizer, schedule = optimizer_and_schedule(model, lr, warmup, steps)
    lengths = [len(row["audio"]) for row in rows]
    collate = CTCCollator(processor)
    batches = (
        collate([rows[i] for i in batch]) for batch in sortish_batches(lengths, batch_size, rng)
    )

    losses: list[float] = []
    loads = [_load_average()]
    started = time.perf_counter()
    with tqdm(total=steps, desc="CTC pretraining", unit="step") as bar:

        def progress(record, model):
            losses.append(record["loss"])
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            bar.update()
            if record["step"] % 100 == 0:
                loads.append(_load_average())

        training_loop(
            model, batches, optimizer, schedule, steps=steps, loss_fn=ctc_loss, on_step=progress
        )
    train_seconds = time.perf_counter() - started

    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    record = {
        "command": command or f"s2t_edu.pretrained.w2v2_ctc.train(steps={steps}, seed={seed}, ...)",
        "steps": steps,
        "seed": seed,
        "corpus": f"{size} (corpus seed 0), train split, {len(rows)} clips, "
        f"{sum(lengths) / SAMPLING_RATE / 3600:.2f} h",
        "batch_size": batch_size,
        "peak_lr": lr,
        "warmup_steps": warmup,
        "schedule": "linear warm-up, cosine decay to 0; AdamW betas (0.9, 0.98), wd 0.01, clip 1.0",
        "threads": threads,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "git": _git_state(),
        "params": sum(p.numel() for p in model.parameters()),
        "train_wall_seconds": round(train_seconds, 1),
        "seconds_per_step": round(train_seconds / steps, 3),
        "load_average_1_5_15min_every_100_steps": loads,
        "loss_first_20_steps": round(float(np.mean(losses[:20])), 4),
        "loss_last_20_steps": round(float(np.mean(losses[-20:])), 4),
    }
    if evaluate_splits:
        record["cer_greedy"] = evaluate(model, processor, size, 0)
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    write_model_card(out, record)
    return record


def write_model_card(out: str | Path, record: dict) -> None:
    """A short README.md for the checkpoint: what it is, how it was made, how good it is."""
    cer = record.get("cer_greedy", {})
    scores = ", ".join(f"{split} {value:.3f}" for split, value in cer.items()) or "not measured"
    text = f"""# w2v2-synth-ctc

A small wav2vec2 (`Wav2Vec2ForCTC`, {record["params"] / 1e6:.2f}M parameters: hidden 256,
4 pre-LN layers, layer-norm conv feature encoder with 20 ms frames) trained **from scratch**
with character CTC on the synthetic espeak-ng corpus of `s2t_edu.data.corpus`. It stands in for
`facebook/wav2vec2-base-960h` / `facebook/hubert-large-ll60k` as the pretrained speech encoder
of the warm-start examples, offline. It has never heard human speech: outside espeak-ng's
voices it is of no use.

    {record["command"]}

- steps {record["steps"]}, batch {record["batch_size"]}, seed {record["seed"]}, peak lr
  {record["peak_lr"]}, warm-up {record["warmup_steps"]}; {record["schedule"]}
- data: {record["corpus"]}
- {record["threads"]} CPU thread(s), {record["train_wall_seconds"]} s of training
  ({record["seconds_per_step"]} s/step; load averages in training.json)
- torch {record["torch"]}, transformers {record["transformers"]}, git {record["git"]}
- greedy CTC character error rate (`s2t_edu.metrics.cer`): {scores}
{("- " + record["note"]) if record.get("note") else ""}

Same command, same machine, same thread count: same weights (seeded init, data order and
masking); other CPUs or thread counts may differ in the last float bits.

Licence: Apache-2.0 for these weights. The training audio was made with espeak-ng
(GPL-3.0), used as a tool; no espeak-ng code or data is part of this checkpoint.
"""
    (Path(out) / "README.md").write_text(text)
