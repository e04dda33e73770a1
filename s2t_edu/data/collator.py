"""Turn a list of ``{"audio", "text"}`` rows into one padded training batch.

It does what ``DataCollatorSpeechSeq2SeqWithPadding`` in transformers'
``examples/pytorch/speech-recognition/run_speech_recognition_seq2seq.py`` does (together with
that script's ``prepare_dataset``), plus the two steps that script leaves to luck:

1. Audio: the feature extractor runs on each clip *alone* (so per-clip normalisation never
   sees padding), then ``feature_extractor.pad`` pads the batch. An attention mask is returned
   only where the encoder wants one (``feature_extractor.return_attention_mask``): wav2vec2
   models with group-norm feature encoders (wav2vec2-base) must not get one, because they were
   trained on zero-padded audio without a mask (transformers PR #10117).
2. Labels: ``tokenizer(text).input_ids``; a leading decoder-start token is dropped (the model
   prepends it itself when it shifts labels right — keeping it would teach the decoder to
   predict [CLS] after [CLS]); an end-of-sequence token is appended if the tokenizer added
   none (GPT-2 adds none; BERT's [SEP] serves as EOS), since a decoder never trained to emit
   EOS never stops (blog#641); padding becomes -100 so the loss ignores it (issue #7896).
3. Text the tokenizer cannot represent (it would become [UNK]) raises, naming the characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from s2t_edu.data.audio import load_audio
from s2t_edu.errors import S2TEduError
from s2t_edu.labels import IGNORE_INDEX, special_token_ids


@dataclass
class SpeechSeq2SeqCollator:
    """Callable for a ``DataLoader``/``Trainer``: rows with audio + text → padded tensors."""

    feature_extractor: Any
    tokenizer: Any
    # Defaults: the tokenizer's ids by s2t_edu.labels.special_token_ids ([CLS] or BOS; EOS or [SEP])
    decoder_start_token_id: int | None = None
    eos_token_id: int | None = None
    return_attention_mask: bool | None = None  # default: feature_extractor.return_attention_mask
    audio_column: str = "audio"
    text_column: str = "text"

    def __post_init__(self):
        check_processors(self.feature_extractor, self.tokenizer)
        if self.decoder_start_token_id is None or self.eos_token_id is None:
            ids = special_token_ids(self.tokenizer)  # the rule set_special_ids uses too
            if self.decoder_start_token_id is None:
                self.decoder_start_token_id = ids["decoder_start_token_id"]
            if self.eos_token_id is None:
                self.eos_token_id = ids["eos_token_id"]
        if self.return_attention_mask is None:
            self.return_attention_mask = bool(self.feature_extractor.return_attention_mask)

    def __call__(self, rows: list[dict]) -> dict:
        check_rows(rows, (self.audio_column, self.text_column))
        batch = self.audio_batch([row[self.audio_column] for row in rows])
        batch["labels"] = self.label_batch([row[self.text_column] for row in rows])
        return batch

    def audio_batch(self, audios: list) -> dict:
        """Extract features clip by clip, then pad them into one tensor (+ mask if wanted)."""
        extractor = self.feature_extractor
        rate = extractor.sampling_rate
        input_name = extractor.model_input_names[
            0
        ]  # input_values (wav2vec2), input_features (Whisper)
        clips = []
        for audio in audios:
            array = _audio_array(audio, rate)
            features = extractor(
                array, sampling_rate=rate, return_attention_mask=self.return_attention_mask
            )
            clip = {input_name: features[input_name][0]}
            if self.return_attention_mask:
                # Whisper pads every clip to 30 s already: only its own mask knows the real end
                clip["attention_mask"] = features["attention_mask"][0]
            clips.append(clip)
        batch = extractor.pad(
            clips, return_attention_mask=self.return_attention_mask, return_tensors="pt"
        )
        if "attention_mask" in batch:  # pad gives int32; tokenizers and models use int64
            batch["attention_mask"] = batch["attention_mask"].long()
        return batch

    def label_ids(self, text: str) -> list[int]:
        """Token ids the decoder must predict for ``text``: no start token, EOS last."""
        check_text(text, self.text_column)
        ids = list(self.tokenizer(text).input_ids)
        _check_no_unknown(self.tokenizer, text, ids)
        if ids and ids[0] == self.decoder_start_token_id:
            ids = ids[1:]  # the model prepends it when shifting labels right
        if not ids or ids[-1] != self.eos_token_id:
            ids.append(self.eos_token_id)
        return ids

    def label_batch(self, texts: list[str]):
        """Labels padded with -100 to the longest sequence, as a LongTensor."""
        sequences = [self.label_ids(text) for text in texts]
        labels = torch.full((len(sequences), max(map(len, sequences))), IGNORE_INDEX)
        for row, ids in enumerate(sequences):
            labels[row, : len(ids)] = torch.tensor(ids)
        return labels


def check_processors(feature_extractor, tokenizer) -> None:
    """A speech feature extractor and a text tokenizer, in that order."""
    for role, thing, needs, example in (
        ("feature_extractor", feature_extractor, ("sampling_rate", "pad"), "AutoFeatureExtractor"),
        ("tokenizer", tokenizer, ("convert_tokens_to_ids", "__call__"), "AutoTokenizer"),
    ):
        if not all(hasattr(thing, name) for name in needs):
            raise S2TEduError(
                f"the {role} is not a {role.replace('_', ' ')}",
                "pass SpeechSeq2SeqCollator(feature_extractor, tokenizer) in that order, e.g. "
                f"{example}.from_pretrained(resolve(name))",
                type(thing).__name__,
            )


def check_rows(rows, columns: tuple[str, ...]) -> None:
    """A non-empty list of dict rows, each holding every column the collator reads."""
    if not isinstance(rows, list | tuple) or not rows:
        raise S2TEduError(
            "the collator takes a non-empty list of rows (dicts), as a DataLoader passes them",
            "call collator([dataset[0], dataset[1]]), not collator(dataset[0])",
            type(rows).__name__ if not isinstance(rows, list | tuple) else "[]",
        )
    for index, row in enumerate(rows):
        missing = [c for c in columns if not isinstance(row, dict) or c not in row]
        if missing:
            have = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise S2TEduError(
                f"row {index} has no {missing} column",
                "rename the dataset's columns, or pass audio_column= / text_column= to the collator",
                f"columns {have}",
            )


def check_text(text, column: str) -> None:
    """A transcript is one string."""
    if not isinstance(text, str):
        raise S2TEduError(
            f"the {column!r} column must hold strings (the transcripts)",
            "drop rows without a transcript, or convert them with str()",
            repr(text)[:80],
        )


def _audio_array(audio, rate: int) -> np.ndarray:
    """A row's audio — a datasets dict, a path, or an array already at ``rate`` — as floats."""
    if isinstance(audio, np.ndarray | list):
        return load_audio(np.asarray(audio), rate, orig_sampling_rate=rate)
    return load_audio(audio, rate)


def _check_no_unknown(tokenizer, text: str, ids: list[int]) -> None:
    unk = tokenizer.unk_token_id
    if unk is None or unk not in ids:
        return
    # Which characters become [UNK] on their own? Those are the ones to remove or replace.
    bad = sorted(
        {
            c
            for c in text
            if not c.isspace() and unk in tokenizer(c, add_special_tokens=False).input_ids
        }
    )
    raise S2TEduError(
        f"the tokenizer cannot represent {bad or 'some of the text'}: it would train the "
        "decoder to write [UNK]",
        "normalise the transcripts (e.g. drop or spell out those characters) or use a tokenizer "
        "whose vocabulary has them",
        text,
    )
