"""Chapter 7's test bench: small offline set-ups on which each failure mode really happens.

The chapter shows every problem with the code a user would write. What it needs besides that
lives here:

- :func:`attempt` runs a call and keeps exactly what the user would see: the exception, the
  warnings, and what transformers logged, without printing paths that differ between machines
  (``s2t_edu.teaching.load_report`` does the same for ``from_pretrained``'s LOAD REPORT).
- :func:`tiny_task`: four clips of the course corpus and a word-level tokenizer for their
  sentences. A tiny random model (:meth:`TinyTask.model`) learns to transcribe them in about
  ten seconds of CPU (:func:`train_briefly`), so "generation never stops" or "every clip gets
  the same transcript" are real outputs of a real trained model, not descriptions.
- :func:`one_process_group`: a one-process ``torch.distributed`` group, enough for
  ``DistributedDataParallel`` to show its errors on a laptop.
- :func:`table_of_contents`: the gallery's symptoms, from ``s2t_edu.doctor.FAILURE_MODES``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import BertConfig, BertTokenizer, Wav2Vec2Config, Wav2Vec2FeatureExtractor

from s2t_edu.data.audio import SAMPLING_RATE
from s2t_edu.data.collator import SpeechSeq2SeqCollator
from s2t_edu.data.corpus import load_corpus
from s2t_edu.doctor import FAILURE_MODES, caught_entries
from s2t_edu.labels import set_special_ids
from s2t_edu.model import build_model
from s2t_edu.training.loop import compute_loss, prepare_training, training_loop

# --- running a call and keeping what the user sees ------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one call did: its value, or the exception it raised; and what it warned or logged."""

    value: object = None
    error: BaseException | None = None
    warnings: tuple[str, ...] = ()
    log: tuple[str, ...] = ()
    printed: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def error_text(self) -> str:
        """``"ValueError: <message>"``, as the last line of a traceback shows it."""
        return "" if self.error is None else f"{type(self.error).__name__}: {self.error}"

    def __str__(self) -> str:
        lines = [f"warning: {text}" for text in self.warnings]
        lines.append(self.error_text if self.failed else "ran without an error")
        return "\n".join(lines)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def attempt(call: Callable, *args, **kwargs) -> Outcome:
    """Run ``call(*args, **kwargs)`` and return its :class:`Outcome` instead of raising.

    Python warnings, transformers' warning-level log messages and whatever the call prints
    are collected instead of shown (they carry this machine's paths and timings); the
    exception is kept, not re-raised.
    """
    root = transformers.utils.logging.get_logger()  # the "transformers" logger everything uses
    handler, saved_handlers, saved_level = _Records(), root.handlers[:], root.level
    root.handlers, root.level = [handler], logging.WARNING
    printed = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
            warnings.simplefilter("always")
            try:
                value, error = call(*args, **kwargs), None
            except Exception as exception:  # the symptom we came to see
                value, error = None, exception
    finally:
        root.handlers, root.level = saved_handlers, saved_level
    return Outcome(
        value=value,
        error=error,
        warnings=tuple(dict.fromkeys(str(w.message) for w in caught)),  # once each, in order
        log=tuple(_ANSI.sub("", message) for message in handler.messages),
        printed=printed.getvalue(),
    )


# --- a four-clip task a tiny model learns in seconds ------------------------------------------


def tiny_encoder_config(**overrides) -> Wav2Vec2Config:
    """A small random wav2vec2 (layer norm, so padding masks are valid; 125 samples per frame).

    SpecAugment is off (``mask_time_prob=0``): four clips are memorised, not generalised.
    """
    settings = dict(
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 5, 5),
        conv_stride=(5, 5, 5),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        mask_time_prob=0.0,
    )
    return Wav2Vec2Config(**{**settings, **overrides})


def tiny_decoder_config(vocab_size: int, **overrides) -> BertConfig:
    """A two-layer BERT, 32 wide (the encoder is too: no projection)."""
    settings = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48
    )
    return BertConfig(vocab_size=vocab_size, **{**settings, **overrides})


def word_tokenizer(texts: list[str]) -> BertTokenizer:
    """A BERT tokenizer whose vocabulary is BERT's five special tokens plus the words of
    ``texts``: [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3, [MASK]=4, then the words in sorted order."""
    words = sorted({word for text in texts for word in text.split()})
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", *words]
    # transformers 5: the vocabulary is passed as a dict; a vocab_file path is ignored
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})


@dataclass
class TinyTask:
    """Clips of the course corpus, their sentences, and what turns them into a batch."""

    rows: list[dict]
    tokenizer: BertTokenizer
    feature_extractor: Wav2Vec2FeatureExtractor
    batch: dict = field(init=False)

    def __post_init__(self):
        self.batch = self.collator()(self.rows)

    @property
    def texts(self) -> list[str]:
        return [row["text"] for row in self.rows]

    def collator(self, **settings) -> SpeechSeq2SeqCollator:
        return SpeechSeq2SeqCollator(self.feature_extractor, self.tokenizer, **settings)

    def audio(self) -> dict:
        """The batch without its labels: what the encoder reads."""
        return {key: value for key, value in self.batch.items() if key != "labels"}

    def model(self, seed: int = 0, **encoder_overrides):
        """A fresh random composite for this task, special ids set from the tokenizer."""
        encoder = tiny_encoder_config(**encoder_overrides)
        decoder = tiny_decoder_config(len(self.tokenizer))
        return set_special_ids(build_model(encoder, decoder, seed=seed), self.tokenizer)


def tiny_task(clips: int = 4, split: str = "train") -> TinyTask:
    """The first ``clips`` clips of the tiny corpus's ``split`` (2-3 s of speech each)."""
    rows = [load_corpus("tiny")[split][i] for i in range(clips)]
    tokenizer = word_tokenizer([row["text"] for row in rows])
    return TinyTask(rows, tokenizer, Wav2Vec2FeatureExtractor(return_attention_mask=True))


def one_long_clip(task: TinyTask, clips: int = 3) -> TinyTask:
    """The task's first ``clips`` clips played one after the other, as one clip with one long
    sentence (same vocabulary): a target longer than ``generate``'s default length."""
    rows = task.rows[:clips]
    audio = np.concatenate([np.asarray(row["audio"]["array"]) for row in rows])
    text = " ".join(row["text"] for row in rows)
    row = {"audio": {"array": audio, "sampling_rate": SAMPLING_RATE}, "text": text}
    return TinyTask([row], task.tokenizer, task.feature_extractor)


def model_loss(model, batch: dict) -> torch.Tensor:
    """The loss transformers computes from whatever the batch holds (``model(**batch).loss``):
    what a user's own training code optimises, mistakes included."""
    return model(**batch).loss


def train_briefly(
    model, batch: dict, steps: int = 80, lr: float = 1e-2, loss_fn=compute_loss, seed: int = 0
) -> list[float]:
    """Train ``model`` on one batch, ``steps`` times (the course's one training loop); returns
    the losses and leaves the model in eval mode. The defaults memorise the tiny task."""
    optimizer, scheduler = prepare_training(model, lr, 0, steps, seed, "cpu")
    history = training_loop(
        model, itertools.repeat(batch), optimizer, scheduler, steps=steps, loss_fn=loss_fn
    )
    model.eval()
    return [record["loss"] for record in history]


@torch.no_grad()
def transcripts(
    model,
    audio: dict,
    tokenizer,
    *,
    max_new_tokens: int = 32,
    skip_special_tokens: bool = True,
    **generate_kwargs,
) -> list[str]:
    """``model.generate`` on the audio, decoded. With ``skip_special_tokens=False`` the
    padding ``generate`` appends to finished rows is left out, the other special tokens shown."""
    inputs = {key: audio[key] for key in ("input_values", "attention_mask") if key in audio}
    ids = model.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
    if skip_special_tokens:
        return tokenizer.batch_decode(ids, skip_special_tokens=True)
    pad = tokenizer.pad_token_id
    return [tokenizer.decode([i for i in row.tolist() if i != pad]) for row in ids]


# --- distributed training on one laptop -------------------------------------------------------


@contextlib.contextmanager
def one_process_group() -> Iterator[None]:
    """A ``torch.distributed`` group of one process (gloo, CPU): ``DistributedDataParallel``
    then runs, and fails, exactly as it does on each GPU of a multi-GPU job."""
    with tempfile.TemporaryDirectory() as directory:
        store = Path(directory) / "rendezvous"
        torch.distributed.init_process_group(
            "gloo", init_method=f"file://{store}", rank=0, world_size=1
        )
        try:
            yield
        finally:
            torch.distributed.destroy_process_group()


# --- the chapter's table of contents -----------------------------------------------------------


def table_of_contents() -> str:
    """Markdown: each entry's number, what the user sees, and whether ``doctor`` catches it."""
    caught = set(caught_entries())
    lines = ["| # | what you see | `doctor` |", "|---|---|---|"]
    for number, mode in FAILURE_MODES.items():
        symptom = mode.symptom.replace("|", "\\|")
        lines.append(f"| {number} | {symptom} | {'yes' if number in caught else 'no'} |")
    return "\n".join(lines)
