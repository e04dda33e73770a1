"""No bad input left unexplained: one table, every public function, one bad input per row.

Each row calls a public function of s2t_edu with one bad input its type admits (wrong dtype,
wrong rank, empty, out of range, NaN/inf audio, mismatched batch sizes, wrong sampling rate, a
path that does not exist, a corrupt file, ...) and checks the answer is an ``S2TEduError`` --
never a raw ``IndexError``/``RuntimeError`` from inside torch -- whose message names the problem
(``match``), shows the value seen (``error.seen``, unless the row says there is none to show)
and gives the fix (``Fix:``). ``test_the_table_covers_every_area`` keeps the table complete.

Models are tiny and random (tests/tiny_models.py), so the whole table runs in seconds.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch
from tiny_models import decoder_configs, encoder_configs, set_special_tokens, trocr_decoder_config
from transformers import AutoTokenizer, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

import s2t_edu
from s2t_edu import S2TEduError
from s2t_edu import decoding as dec
from s2t_edu.attention import (
    cross_attention,
    cross_attention_modules,
    projections,
    recorded_cross_attention,
)
from s2t_edu.data import audio as audio_module
from s2t_edu.data import collator as collator_module
from s2t_edu.data import corpus
from s2t_edu.inputs import check_speech_inputs
from s2t_edu.labels import set_special_ids
from s2t_edu.metrics import align, cer, edit_distance_table, error_counts, wer
from s2t_edu.model import load_speech_encoder_decoder
from s2t_edu.pretrained import resolve, shorten_whisper_window, whisper_feature_extractor
from s2t_edu.teaching.exercises import check_concept
from s2t_edu.teaching.exercises.concepts import judge_concept
from s2t_edu.training import finetune, loop

W2V2, BERT = encoder_configs()["wav2vec2-layer"], decoder_configs()["bert"]
VOCAB = BERT.vocab_size  # 99
AUDIO = torch.randn(2, 1600, generator=torch.Generator().manual_seed(0))
MASK = torch.ones(2, 1600, dtype=torch.long)
LABELS = torch.tensor([[5, 6, 2], [7, 2, -100]])
LOGITS = torch.randn(2, 3, VOCAB)
SCORES = torch.randn(2, VOCAB)
TOKENS = torch.tensor([[1, 5], [1, 6]])
EOS = torch.tensor([2])


@dataclass
class Row:
    area: str  # the module or group of functions (see AREAS)
    function: str  # the public function called
    bad: str  # what is wrong with the input
    call: object  # ctx -> the call that must raise
    match: str  # regex the message must contain: the problem, named
    seen: bool = True  # False: nothing to show (e.g. an id that is not set at all)

    @property
    def id(self) -> str:
        return f"{self.function}: {self.bad}"


@contextlib.contextmanager
def _ids_set(model, **ids):
    """Special ids changed on model.config and model.generation_config, restored afterwards."""
    sources = (model.config, model.generation_config)
    saved = [(source, name, getattr(source, name, None)) for source in sources for name in ids]
    for source, name, _ in saved:
        setattr(source, name, ids[name])
    try:
        yield model
    finally:
        for source, name, value in saved:
            setattr(source, name, value)


def _with_ids(call, **ids):
    """A row's call run on ctx.model with some special ids changed."""

    def run(ctx):
        with _ids_set(ctx.model, **ids):
            return call(ctx)

    return run


def _left_padded():
    mask = MASK.clone()
    mask[1, :100] = 0
    return mask


def _labels_with(value):
    labels = LABELS.clone()
    labels[0, 1] = value
    return labels


def _row_audio(audio, text="the cat sat"):
    return [{"audio": audio, "text": text}]


CLIP = np.random.default_rng(0).standard_normal(3200).astype(np.float32) * 0.1

TABLE = [
    # ------------------------------------------------------------------ config
    Row("config", "compose_config", "None as encoder", lambda c: s2t_edu.compose_config(None, BERT), "no base model for encoder config"),
    Row("config", "compose_config", "encoder and decoder swapped", lambda c: s2t_edu.compose_config(BERT, W2V2), "not a speech encoder"),
    Row("config", "compose_config", "a speech config as decoder", lambda c: s2t_edu.compose_config(W2V2, W2V2), "no causal-LM model class"),
    Row("config", "compose_config", "a name instead of a config", lambda c: s2t_edu.compose_config("wav2vec2", BERT), "no base model for encoder config"),
    Row("config", "config_changes", "None instead of a config", lambda c: s2t_edu.config_changes(None, BERT), "expected transformers config objects"),
    Row("config", "config_changes", "a dict instead of a config", lambda c: s2t_edu.config_changes(BERT.to_dict(), BERT), "expected transformers config objects"),
    # ------------------------------------------------------------------ frames
    Row("frames", "encoder_output_lengths", "negative length", lambda c: s2t_edu.encoder_output_lengths(W2V2, [-5, 1600]), "input lengths must be >= 0"),
    Row("frames", "encoder_output_lengths", "fractional length", lambda c: s2t_edu.encoder_output_lengths(W2V2, [1.5]), "whole numbers"),
    Row("frames", "encoder_output_lengths", "NaN length", lambda c: s2t_edu.encoder_output_lengths(W2V2, torch.tensor([math.nan])), "whole numbers"),
    Row("frames", "encoder_output_lengths", "infinite length", lambda c: s2t_edu.encoder_output_lengths(W2V2, [math.inf]), "whole numbers"),
    Row("frames", "encoder_output_lengths", "text instead of a length", lambda c: s2t_edu.encoder_output_lengths(W2V2, "1600"), "whole numbers"),
    Row("frames", "encoder_output_lengths", "None as config", lambda c: s2t_edu.encoder_output_lengths(None, [1600]), "speech encoder's config"),
    Row("frames", "encoder_output_lengths", "a text config", lambda c: s2t_edu.encoder_output_lengths(BERT, [1600]), "no frame-length rule"),
    Row("frames", "minimum_input_length", "a model name instead of a config", lambda c: s2t_edu.minimum_input_length("wav2vec2"), "speech encoder's config"),
    Row("frames", "encoder_attention_mask", "1-D mask", lambda c: s2t_edu.encoder_attention_mask(W2V2, torch.ones(1600)), r"shape \(batch, samples\)"),
    Row("frames", "encoder_attention_mask", "fractional mask values", lambda c: s2t_edu.encoder_attention_mask(W2V2, torch.full((1, 1600), 0.5)), "only 1 .* and 0"),
    Row("frames", "encoder_attention_mask", "mask values of 2", lambda c: s2t_edu.encoder_attention_mask(W2V2, torch.full((1, 1600), 2)), "only 1 .* and 0"),
    Row("frames", "encoder_attention_mask", "empty batch", lambda c: s2t_edu.encoder_attention_mask(W2V2, torch.ones(0, 1600)), "empty batch"),
    Row("frames", "encoder_attention_mask", "left padding", lambda c: s2t_edu.encoder_attention_mask(W2V2, _left_padded()), "1s followed by 0s"),
    Row("frames", "encoder_attention_mask", "a row shorter than the receptive field", lambda c: s2t_edu.encoder_attention_mask(W2V2, torch.tensor([[1] * 50 + [0] * 1550])), "receptive field"),
    # ------------------------------------------------------------------ projection
    Row("projection", "projection_needed", "the encoder config, not the composed one", lambda c: s2t_edu.projection_needed(W2V2), "composed SpeechEncoderDecoderConfig"),
    Row("projection", "projection_needed", "None", lambda c: s2t_edu.projection_needed(None), "composed SpeechEncoderDecoderConfig"),
    Row("projection", "projection_needed", "cross_attention_hidden_size != encoder width", lambda c: s2t_edu.projection_needed(s2t_edu.compose_config(W2V2, trocr_decoder_config(7))), "cross_attention_hidden_size must equal"),
    Row("projection", "build_projection", "the decoder config", lambda c: s2t_edu.build_projection(BERT), "composed SpeechEncoderDecoderConfig"),
    # ------------------------------------------------------------------ labels
    Row("labels", "shift_tokens_right", "float labels", lambda c: s2t_edu.shift_tokens_right(LABELS.float(), 0, 1), "integer token ids"),
    Row("labels", "shift_tokens_right", "bool labels", lambda c: s2t_edu.shift_tokens_right(LABELS > 3, 0, 1), "integer token ids"),
    Row("labels", "shift_tokens_right", "1-D labels", lambda c: s2t_edu.shift_tokens_right(LABELS[0], 0, 1), r"shape \(batch, target_length\)"),
    Row("labels", "shift_tokens_right", "empty batch", lambda c: s2t_edu.shift_tokens_right(torch.zeros(0, 3, dtype=torch.long), 0, 1), "hold no token"),
    Row("labels", "shift_tokens_right", "rows of length 0", lambda c: s2t_edu.shift_tokens_right(torch.zeros(2, 0, dtype=torch.long), 0, 1), "hold no token"),
    Row("labels", "shift_tokens_right", "ragged rows", lambda c: s2t_edu.shift_tokens_right([[5, 6, 2], [7, 2]], 0, 1), "rectangular table"),
    Row("labels", "shift_tokens_right", "text instead of ids", lambda c: s2t_edu.shift_tokens_right("the cat", 0, 1), "rectangular table"),
    Row("labels", "shift_tokens_right", "negative id other than -100", lambda c: s2t_edu.shift_tokens_right(_labels_with(-5), 0, 1), "negative ids"),
    Row("labels", "shift_tokens_right", "pad id None", lambda c: s2t_edu.shift_tokens_right(LABELS, None, 1), "pad_token_id is not set", seen=False),
    Row("labels", "shift_tokens_right", "pad id as text", lambda c: s2t_edu.shift_tokens_right(LABELS, "0", 1), "pad_token_id must be one token id"),
    Row("labels", "shift_tokens_right", "pad id -100", lambda c: s2t_edu.shift_tokens_right(LABELS, -100, 1), "pad_token_id must be one token id"),
    Row("labels", "shift_tokens_right", "fractional start id", lambda c: s2t_edu.shift_tokens_right(LABELS, 0, 1.5), "decoder_start_token_id must be one token id"),
    Row("labels", "pad_to_ignore_index", "mask of another shape", lambda c: s2t_edu.pad_to_ignore_index(LABELS, torch.ones(2, 5)), "same shape"),
    Row("labels", "pad_to_ignore_index", "float token ids", lambda c: s2t_edu.pad_to_ignore_index(LABELS.float(), torch.ones(2, 3)), "integer token ids"),
    Row("labels", "set_special_ids", "a tokenizer with no special tokens", lambda c: set_special_ids(c.model, SimpleNamespace(cls_token_id=None, bos_token_id=None, eos_token_id=None, sep_token_id=None, pad_token_id=None)), "has no token for"),
    # ------------------------------------------------------------------ loss
    Row("loss", "seq2seq_loss", "label outside the vocabulary", lambda c: s2t_edu.seq2seq_loss(LOGITS, _labels_with(500)), r"outside the decoder vocabulary \[0, 99\)"),
    Row("loss", "seq2seq_loss", "negative label other than -100", lambda c: s2t_edu.seq2seq_loss(LOGITS, _labels_with(-3)), "negative ids"),
    Row("loss", "seq2seq_loss", "labels shorter than the logits", lambda c: s2t_edu.seq2seq_loss(LOGITS, LABELS[:, :2]), "disagree in batch or length"),
    Row("loss", "seq2seq_loss", "labels of another batch", lambda c: s2t_edu.seq2seq_loss(LOGITS, LABELS[:1]), "disagree in batch or length"),
    Row("loss", "seq2seq_loss", "2-D logits", lambda c: s2t_edu.seq2seq_loss(LOGITS[0], LABELS), r"logits must be a float tensor \(batch, length, vocab\)"),
    Row("loss", "seq2seq_loss", "argmax ids instead of logits", lambda c: s2t_edu.seq2seq_loss(LOGITS.argmax(-1), LABELS), "logits must be a float tensor"),
    Row("loss", "seq2seq_loss", "numpy logits", lambda c: s2t_edu.seq2seq_loss(LOGITS.numpy(), LABELS), "logits must be a float tensor"),
    Row("loss", "seq2seq_loss", "label_smoothing 1.5", lambda c: s2t_edu.seq2seq_loss(LOGITS, LABELS, 1.5), r"label_smoothing must be in \[0, 1\)"),
    Row("loss", "seq2seq_loss", "label_smoothing NaN", lambda c: s2t_edu.seq2seq_loss(LOGITS, LABELS, math.nan), r"label_smoothing must be in \[0, 1\)"),
    Row("loss", "seq2seq_loss", "every label -100", lambda c: s2t_edu.seq2seq_loss(LOGITS, torch.full((2, 3), -100)), "every label is -100"),
    # ------------------------------------------------------------------ forward (and encode)
    Row("forward", "forward_step_by_step", "label outside the vocabulary", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=_labels_with(500)), r"labels contain ids outside the decoder vocabulary \[0, 99\)"),
    Row("forward", "forward_step_by_step", "negative label other than -100", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=_labels_with(-7)), "negative ids"),
    Row("forward", "forward_step_by_step", "labels for another batch size", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=LABELS[:1]), "disagree in batch size"),
    Row("forward", "forward_step_by_step", "labels longer than the position table", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=torch.full((2, 600), 5)), r"longer than the decoder's position table \(512 positions\)"),
    Row("forward", "forward_step_by_step", "attention_mask shorter than the audio", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=LABELS, attention_mask=MASK[:, :1200]), r"attention_mask and the audio disagree"),
    Row("forward", "forward_step_by_step", "attention_mask for another batch", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=LABELS, attention_mask=torch.ones(3, 1600)), r"attention_mask and the audio disagree"),
    Row("forward", "forward_step_by_step", "1-D attention_mask", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=LABELS, attention_mask=MASK[0]), r"attention_mask must have shape \(batch, samples\)"),
    Row("forward", "forward_step_by_step", "fractional attention_mask", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=LABELS, attention_mask=MASK * 0.3), "only 1 .* and 0"),
    Row("forward", "forward_step_by_step", "NaN audio", lambda c: s2t_edu.forward_step_by_step(c.model, torch.full((2, 1600), math.nan), labels=LABELS), "NaN or infinite"),
    Row("forward", "forward_step_by_step", "infinite audio", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO.index_fill(1, torch.tensor([3]), math.inf), labels=LABELS), "NaN or infinite"),
    Row("forward", "forward_step_by_step", "int16 audio", lambda c: s2t_edu.forward_step_by_step(c.model, (AUDIO * 1000).short(), labels=LABELS), "integer audio"),
    Row("forward", "forward_step_by_step", "float64 audio", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO.double(), labels=LABELS), "dtype differs from the encoder's weights"),
    Row("forward", "forward_step_by_step", "unbatched waveform", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO[0], labels=LABELS), "single unbatched waveform"),
    Row("forward", "forward_step_by_step", "stereo audio", lambda c: s2t_edu.forward_step_by_step(c.model, torch.stack([AUDIO, AUDIO], 1), labels=LABELS), "multi-channel"),
    Row("forward", "forward_step_by_step", "4-D audio", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO[None, None], labels=LABELS), r"shape \(batch, samples\)"),
    Row("forward", "forward_step_by_step", "empty batch", lambda c: s2t_edu.forward_step_by_step(c.model, torch.zeros(0, 1600), labels=LABELS), "the batch is empty"),
    Row("forward", "forward_step_by_step", "audio shorter than the receptive field", lambda c: s2t_edu.forward_step_by_step(c.model, torch.zeros(2, 10), labels=LABELS), "receptive field"),
    Row("forward", "forward_step_by_step", "a file name instead of audio", lambda c: s2t_edu.forward_step_by_step(c.model, "clip.wav", labels=LABELS), "tensor or numpy array"),
    Row("forward", "forward_step_by_step", "ragged list of clips", lambda c: s2t_edu.forward_step_by_step(c.model, [[0.1] * 1600, [0.2] * 800], labels=LABELS), "cannot be made into a tensor"),
    Row("forward", "forward_step_by_step", "neither labels nor decoder_input_ids", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO), "either labels .* or decoder_input_ids", seen=False),
    Row("forward", "forward_step_by_step", "decoder_input_ids outside the vocabulary", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, decoder_input_ids=torch.tensor([[1, 500]] * 2)), "decoder_input_ids contain ids outside"),
    Row("forward", "forward_step_by_step", "decoder_input_ids with -100", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, decoder_input_ids=torch.tensor([[1, -100]] * 2)), "decoder_input_ids contain ids outside"),
    Row("forward", "forward_step_by_step", "float decoder_input_ids", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, decoder_input_ids=torch.tensor([[1.0, 5.0]] * 2)), "integer token ids"),
    Row("forward", "forward_step_by_step", "decoder_input_ids for another batch", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, decoder_input_ids=torch.tensor([[1, 5]] * 3)), "disagree in batch size"),
    Row("forward", "forward_step_by_step", "1-D decoder_input_ids", lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, decoder_input_ids=torch.tensor([1, 5])), r"shape \(batch, length\)"),
    Row("forward", "forward_step_by_step", "start id outside the vocabulary", _with_ids(lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=LABELS), decoder_start_token_id=500), "decoder_input_ids contain ids outside"),
    Row("forward", "forward_step_by_step", "pad id not set", _with_ids(lambda c: s2t_edu.forward_step_by_step(c.model, AUDIO, labels=LABELS), pad_token_id=None), "pad_token_id is not set", seen=False),
    Row("forward", "forward_step_by_step", "None as model", lambda c: s2t_edu.forward_step_by_step(None, AUDIO, labels=LABELS), "expected a SpeechEncoderDecoderModel"),
    Row("forward", "forward_step_by_step", "the model's config as model", lambda c: s2t_edu.forward_step_by_step(c.model.config, AUDIO, labels=LABELS), "expected a SpeechEncoderDecoderModel"),
    Row("forward", "forward_step_by_step", "Whisper features with an attention_mask", lambda c: s2t_edu.forward_step_by_step(c.whisper, c.features, labels=LABELS, attention_mask=torch.ones(2, 40)), "Whisper's encoder takes no attention_mask"),
    Row("forward", "forward_step_by_step", "Whisper features of the wrong window", lambda c: s2t_edu.forward_step_by_step(c.whisper, c.features[..., :30], labels=LABELS), r"log-mel features of shape \(batch, 16, 40\)"),
    Row("forward", "forward_step_by_step", "NaN Whisper features", lambda c: s2t_edu.forward_step_by_step(c.whisper, c.features * math.nan, labels=LABELS), "NaN or infinite"),
    Row("forward", "encode", "attention_mask longer than the audio", lambda c: s2t_edu.encode(c.model, AUDIO, torch.ones(2, 2000, dtype=torch.long)), r"attention_mask \(2, 2000\) .*audio \(2, 1600\)"),
    Row("forward", "encode", "numpy float64 audio", lambda c: s2t_edu.encode(c.model, AUDIO.numpy().astype(np.float64)), "dtype differs"),
    # ------------------------------------------------------------------ inputs
    Row("inputs", "check_speech_inputs", "None", lambda c: check_speech_inputs(W2V2, None), "tensor or numpy array"),
    Row("inputs", "check_speech_inputs", "waveform for a Whisper encoder", lambda c: check_speech_inputs(c.whisper.config.encoder, AUDIO), "log-mel features of shape"),
    Row("inputs", "check_speech_inputs", "complex audio", lambda c: check_speech_inputs(W2V2, torch.zeros(2, 1600, dtype=torch.complex64)), "floating point"),
    # ------------------------------------------------------------------ model
    Row("model", "build_model", "None as encoder", lambda c: s2t_edu.build_model(None, BERT), "a model name must be a string"),
    Row("model", "build_model", "encoder and decoder swapped", lambda c: s2t_edu.build_model(BERT, W2V2), "not a speech encoder"),
    Row("model", "build_model", "unknown part in pretrained=", lambda c: s2t_edu.build_model(W2V2, BERT, pretrained=("weights",)), "names the parts"),
    Row("model", "build_model", "a config marked pretrained", lambda c: s2t_edu.build_model(W2V2, BERT, pretrained="encoder"), "which has no weights"),
    Row("model", "build_model", "a hub id offline", lambda c: s2t_edu.build_model("nobody/no-such-model", BERT), "cannot load the checkpoint"),
    Row("model", "build_model", "a directory that does not exist", lambda c: s2t_edu.build_model("/no/such/dir", BERT), "not a zoo name, an existing directory"),
    Row("model", "build_model", "a corrupt config.json", lambda c: s2t_edu.build_model(str(c.corrupt_config), BERT), "cannot load the checkpoint"),
    Row("model", "load_speech_encoder_decoder", "a directory that does not exist", lambda c: load_speech_encoder_decoder("/no/such/dir"), "not a zoo name, an existing directory"),
    Row("model", "load_speech_encoder_decoder", "an empty directory", lambda c: load_speech_encoder_decoder(c.empty_dir), "cannot load the checkpoint"),
    Row("model", "load_speech_encoder_decoder", "a corrupt config.json", lambda c: load_speech_encoder_decoder(c.corrupt_config), "cannot load the checkpoint"),
    Row("model", "load_speech_encoder_decoder", "corrupt weights", lambda c: load_speech_encoder_decoder(c.corrupt_weights), "cannot load the checkpoint"),
    # ------------------------------------------------------------------ metrics
    Row("metrics", "wer", "None as references", lambda c: wer(None, "the cat"), "references must be a string or a list"),
    Row("metrics", "wer", "one hypothesis for two references", lambda c: wer(["a b", "c"], ["a b"]), "one hypothesis per reference"),
    Row("metrics", "wer", "token ids instead of text", lambda c: wer(torch.tensor([5, 6]), ["a", "b"]), "references must be strings"),
    Row("metrics", "wer", "numbers in the hypotheses", lambda c: wer(["a"], [1]), "hypotheses must be strings"),
    Row("metrics", "cer", "None as hypotheses", lambda c: cer("the cat", None), "hypotheses must be a string or a list"),
    Row("metrics", "error_counts", "lists of different lengths", lambda c: error_counts(["a"], ["a", "b"]), "one hypothesis per reference"),
    Row("metrics", "align", "None as reference", lambda c: align(None, ["a"]), "reference must be a sequence of tokens"),
    Row("metrics", "edit_distance_table", "a number as hypothesis", lambda c: edit_distance_table(["a"], 5), "hypothesis must be a sequence of tokens"),
    # ------------------------------------------------------------------ show
    Row("show", "show", "a number", lambda c: s2t_edu.show(3), "needs a function, class or module"),
    Row("show", "show", "None", lambda c: s2t_edu.show(None), "needs a function, class or module"),
    Row("show", "show", "a builtin (no Python source)", lambda c: s2t_edu.show(len), "needs a function, class or module"),
    Row("show", "show", "a function's result instead of the function", lambda c: s2t_edu.show(s2t_edu.shift_tokens_right(LABELS, 0, 1)), "needs a function, class or module"),
    # ------------------------------------------------------------------ decoding: greedy, beam, sample
    Row("decoding", "greedy_decode", "max_new_tokens 0", lambda c: s2t_edu.greedy_decode(c.model, AUDIO, max_new_tokens=0), "max_new_tokens must be a positive int"),
    Row("decoding", "greedy_decode", "max_new_tokens as text", lambda c: s2t_edu.greedy_decode(c.model, AUDIO, max_new_tokens="5"), "max_new_tokens must be a positive int"),
    Row("decoding", "greedy_decode", "unknown setting", lambda c: s2t_edu.greedy_decode(c.model, AUDIO, top_k=5), "unknown decoding setting"),
    Row("decoding", "greedy_decode", "NaN audio", lambda c: s2t_edu.greedy_decode(c.model, AUDIO * math.nan), "NaN or infinite"),
    Row("decoding", "greedy_decode", "attention_mask shorter than the audio", lambda c: s2t_edu.greedy_decode(c.model, AUDIO, MASK[:, :1200]), "attention_mask and the audio disagree"),
    Row("decoding", "greedy_decode", "int audio", lambda c: s2t_edu.greedy_decode(c.model, (AUDIO * 100).long()), "integer audio"),
    Row("decoding", "greedy_decode", "repetition_penalty 0", lambda c: s2t_edu.greedy_decode(c.model, AUDIO, repetition_penalty=0), "repetition_penalty must be > 0"),
    Row("decoding", "greedy_decode", "negative no_repeat_ngram_size", lambda c: s2t_edu.greedy_decode(c.model, AUDIO, no_repeat_ngram_size=-1), "no_repeat_ngram_size must be a positive int"),
    Row("decoding", "greedy_decode", "fractional min_new_tokens", lambda c: s2t_edu.greedy_decode(c.model, AUDIO, min_new_tokens=2.5), "min_new_tokens must be a positive int"),
    Row("decoding", "greedy_decode", "None as model", lambda c: s2t_edu.greedy_decode(None, AUDIO), "expected a SpeechEncoderDecoderModel"),
    Row("decoding", "greedy_decode", "no start id anywhere", _with_ids(lambda c: s2t_edu.greedy_decode(c.model, AUDIO), decoder_start_token_id=None, bos_token_id=None), "decoder_start_token_id is not set", seen=False),
    Row("decoding", "greedy_decode", "start id outside the vocabulary", _with_ids(lambda c: s2t_edu.greedy_decode(c.model, AUDIO), decoder_start_token_id=500), r"special id lies outside the decoder vocabulary \[0, 99\)"),
    Row("decoding", "greedy_decode", "EOS id outside the vocabulary", _with_ids(lambda c: s2t_edu.greedy_decode(c.model, AUDIO), eos_token_id=[2, 1000]), "special id lies outside the decoder vocabulary"),
    Row("decoding", "greedy_decode", "negative pad id", _with_ids(lambda c: s2t_edu.greedy_decode(c.model, AUDIO), pad_token_id=-1), "pad_token_id must be one token id"),
    Row("decoding", "beam_search", "num_beams 0", lambda c: s2t_edu.beam_search(c.model, AUDIO, 0), "num_beams must be an int >= 1"),
    Row("decoding", "beam_search", "fractional num_beams", lambda c: s2t_edu.beam_search(c.model, AUDIO, 2.5), "num_beams must be an int >= 1"),
    Row("decoding", "beam_search", "more sequences than beams", lambda c: s2t_edu.beam_search(c.model, AUDIO, 2, num_return_sequences=3), "num_return_sequences must be between 1 and num_beams"),
    Row("decoding", "beam_search", "unknown early_stopping", lambda c: s2t_edu.beam_search(c.model, AUDIO, 2, early_stopping="sometimes"), "early_stopping must be True, False or 'never'"),
    Row("decoding", "beam_search", "NaN length_penalty", lambda c: s2t_edu.beam_search(c.model, AUDIO, 2, length_penalty=math.nan), "length_penalty must be a finite number"),
    Row("decoding", "beam_search", "length_penalty as text", lambda c: s2t_edu.beam_search(c.model, AUDIO, 2, length_penalty="long"), "length_penalty must be a finite number"),
    Row("decoding", "beam_search", "attention_mask for another batch", lambda c: s2t_edu.beam_search(c.model, AUDIO, 2, attention_mask=MASK[:1]), "attention_mask and the audio disagree"),
    Row("decoding", "beam_search", "infinite audio", lambda c: s2t_edu.beam_search(c.model, AUDIO / 0.0, 2), "NaN or infinite"),
    Row("decoding", "sample", "temperature 0", lambda c: s2t_edu.sample(c.model, AUDIO, temperature=0), "temperature must be > 0"),
    Row("decoding", "sample", "NaN temperature", lambda c: s2t_edu.sample(c.model, AUDIO, temperature=math.nan), "temperature must be > 0"),
    Row("decoding", "sample", "top_p 2", lambda c: s2t_edu.sample(c.model, AUDIO, top_p=2), r"top_p must be in \(0, 1\]"),
    Row("decoding", "sample", "negative top_k", lambda c: s2t_edu.sample(c.model, AUDIO, top_k=-1), "top_k must be an int >= 0"),
    Row("decoding", "sample", "negative max_new_tokens", lambda c: s2t_edu.sample(c.model, AUDIO, max_new_tokens=-3), "max_new_tokens must be a positive int"),
    Row("decoding", "sample", "float16 audio", lambda c: s2t_edu.sample(c.model, AUDIO.half()), "dtype differs"),
    # ------------------------------------------------------------------ decoding: processors
    Row("processors", "temperature", "0", lambda c: dec.temperature(SCORES, 0), "temperature must be a number > 0"),
    Row("processors", "temperature", "negative", lambda c: dec.temperature(SCORES, -1.0), "temperature must be a number > 0"),
    Row("processors", "top_k", "0", lambda c: dec.top_k(SCORES, 0), "k must be an int >= 1"),
    Row("processors", "top_k", "fractional k", lambda c: dec.top_k(SCORES, 2.5), "k must be an int >= 1"),
    Row("processors", "top_p", "p above 1", lambda c: dec.top_p(SCORES, 1.5), "p must be a number >= 0 and <= 1"),
    Row("processors", "top_p", "1-D scores", lambda c: dec.top_p(SCORES[0], 0.5), r"scores must be a float tensor \(rows, vocab\)"),
    Row("processors", "top_p", "integer scores", lambda c: dec.top_p(SCORES.long(), 0.5), "scores must be a float tensor"),
    Row("processors", "repetition_penalty", "penalty 0", lambda c: dec.repetition_penalty(TOKENS, SCORES, 0), "penalty must be a number > 0"),
    Row("processors", "repetition_penalty", "token ids outside the vocabulary", lambda c: dec.repetition_penalty(torch.tensor([[1, 500], [1, 2]]), SCORES, 1.2), r"outside the vocabulary \[0, 99\)"),
    Row("processors", "repetition_penalty", "tokens for another number of rows", lambda c: dec.repetition_penalty(TOKENS[:1], SCORES, 1.2), "one row per row of scores"),
    Row("processors", "repetition_penalty", "float tokens", lambda c: dec.repetition_penalty(TOKENS.float(), SCORES, 1.2), "tokens must be integer ids"),
    Row("processors", "no_repeat_ngram", "n 0", lambda c: dec.no_repeat_ngram(TOKENS, SCORES, 0), "n must be an int >= 1"),
    Row("processors", "no_repeat_ngram", "token ids outside the vocabulary", lambda c: dec.no_repeat_ngram(torch.tensor([[1, 500, 1, 500, 1]] * 2), SCORES, 2), "outside the vocabulary"),
    Row("processors", "min_new_tokens", "negative minimum", lambda c: dec.min_new_tokens(TOKENS, SCORES, -1, EOS), "minimum must be an int >= 0"),
    Row("processors", "min_new_tokens", "EOS ids as a list", lambda c: dec.min_new_tokens(TOKENS, SCORES, 5, [2]), "eos_ids must be an integer tensor"),
    # ------------------------------------------------------------------ data: load_audio
    Row("data", "load_audio", "a path that does not exist", lambda c: audio_module.load_audio("/no/such/clip.wav"), "audio file not found"),
    Row("data", "load_audio", "a directory", lambda c: audio_module.load_audio(c.empty_dir), "audio file not found"),
    Row("data", "load_audio", "a corrupt WAV file", lambda c: audio_module.load_audio(c.corrupt_wav), "cannot decode the audio file"),
    Row("data", "load_audio", "NaN samples", lambda c: audio_module.load_audio(np.full(100, np.nan, np.float32), orig_sampling_rate=16000), "NaN or infinite"),
    Row("data", "load_audio", "infinite samples", lambda c: audio_module.load_audio(np.full(100, np.inf, np.float32), orig_sampling_rate=16000), "NaN or infinite"),
    Row("data", "load_audio", "an array without its rate", lambda c: audio_module.load_audio(CLIP), "does not say its sampling rate"),
    Row("data", "load_audio", "rate 0", lambda c: audio_module.load_audio(CLIP, orig_sampling_rate=0), "orig_sampling_rate must be a positive whole number"),
    Row("data", "load_audio", "fractional rate", lambda c: audio_module.load_audio(CLIP, orig_sampling_rate=22050.5), "orig_sampling_rate must be a positive whole number"),
    Row("data", "load_audio", "negative target rate", lambda c: audio_module.load_audio(CLIP, sampling_rate=-1, orig_sampling_rate=16000), "sampling_rate must be a positive whole number"),
    Row("data", "load_audio", "a file rate contradicting orig_sampling_rate", lambda c: audio_module.load_audio(c.wav_16k, orig_sampling_rate=8000), "but the file says 16000 Hz"),
    Row("data", "load_audio", "empty audio", lambda c: audio_module.load_audio(np.zeros(0, np.float32), orig_sampling_rate=16000), "empty"),
    Row("data", "load_audio", "3-D array", lambda c: audio_module.load_audio(np.zeros((2, 2, 100), np.float32), orig_sampling_rate=16000), "1-D .mono. or 2-D"),
    Row("data", "load_audio", "strings", lambda c: audio_module.load_audio(np.array(["a", "b"]), orig_sampling_rate=16000), "array of numbers"),
    Row("data", "load_audio", "complex samples", lambda c: audio_module.load_audio(np.zeros(100, np.complex64), orig_sampling_rate=16000), "array of numbers"),
    Row("data", "load_audio", "a dict with neither array nor path", lambda c: audio_module.load_audio({"sampling_rate": 16000}), "neither 'array' nor 'path'"),
    Row("data", "check_sampling_rate", "8 kHz audio for a 16 kHz model", lambda c: audio_module.check_sampling_rate(8000), "expects 16000 Hz"),
    # ------------------------------------------------------------------ data: collator
    Row("collator", "SpeechSeq2SeqCollator", "no rows", lambda c: c.collator([]), "non-empty list of rows"),
    Row("collator", "SpeechSeq2SeqCollator", "one row instead of a list", lambda c: c.collator({"audio": CLIP, "text": "hi"}), "non-empty list of rows"),
    Row("collator", "SpeechSeq2SeqCollator", "row without audio", lambda c: c.collator([{"text": "hi"}]), r"row 0 has no \['audio'\] column"),
    Row("collator", "SpeechSeq2SeqCollator", "row without text", lambda c: c.collator([{"audio": CLIP}]), r"has no \['text'\] column"),
    Row("collator", "SpeechSeq2SeqCollator", "text None", lambda c: c.collator(_row_audio(CLIP, None)), "must hold strings"),
    Row("collator", "SpeechSeq2SeqCollator", "text as a number", lambda c: c.collator(_row_audio(CLIP, 5)), "must hold strings"),
    Row("collator", "SpeechSeq2SeqCollator", "characters the tokenizer lacks", lambda c: c.collator(_row_audio(CLIP, "the \u2603 sat")), "cannot represent"),
    Row("collator", "SpeechSeq2SeqCollator", "NaN audio", lambda c: c.collator(_row_audio(np.full(3200, np.nan, np.float32))), "NaN or infinite"),
    Row("collator", "SpeechSeq2SeqCollator", "empty audio", lambda c: c.collator(_row_audio(np.zeros(0, np.float32))), "empty"),
    Row("collator", "SpeechSeq2SeqCollator", "audio dict without its rate", lambda c: c.collator(_row_audio({"array": CLIP})), "does not say its sampling rate"),
    Row("collator", "SpeechSeq2SeqCollator", "audio path that does not exist", lambda c: c.collator(_row_audio("/no/such/clip.flac")), "audio file not found"),
    Row("collator", "SpeechSeq2SeqCollator", "a corrupt audio file", lambda c: c.collator(_row_audio(str(c.corrupt_wav))), "cannot decode the audio file"),
    Row("collator", "SpeechSeq2SeqCollator", "no feature extractor", lambda c: collator_module.SpeechSeq2SeqCollator(None, c.tokenizer), "feature_extractor is not a feature extractor"),
    Row("collator", "SpeechSeq2SeqCollator", "tokenizer and extractor swapped", lambda c: collator_module.SpeechSeq2SeqCollator(c.tokenizer, c.extractor), "feature_extractor is not a feature extractor"),
    Row("collator", "SpeechSeq2SeqCollator", "no tokenizer", lambda c: collator_module.SpeechSeq2SeqCollator(c.extractor, None), "tokenizer is not a tokenizer"),
    # ------------------------------------------------------------------ data: corpus
    Row("corpus", "load_corpus", "unknown size", lambda c: corpus.load_corpus("huge"), "unknown corpus size"),
    Row("corpus", "corpus_dir", "unknown size", lambda c: corpus.corpus_dir("medium"), "unknown corpus size"),
    Row("corpus", "load_corpus", "a text seed", lambda c: corpus.load_corpus("tiny", seed="a"), "the corpus seed must be a whole number"),
    Row("corpus", "corpus_plan", "a negative seed", lambda c: corpus.corpus_plan("tiny", seed=-1), "the corpus seed must be a whole number"),
    Row("corpus", "load_speech_dataset", "neither a size nor a hub name", lambda c: corpus.load_speech_dataset("librispeech"), "not a corpus size nor a hub dataset name"),
    Row("corpus", "load_speech_dataset", "a hub dataset while offline", lambda c: corpus.load_speech_dataset("someone/speech"), "needs the network, but offline mode is on"),
    # ------------------------------------------------------------------ zoo and pretrained
    Row("zoo", "resolve", "None", lambda c: resolve(None), "a model name must be a string"),
    Row("zoo", "resolve", "a number", lambda c: resolve(123), "a model name must be a string"),
    Row("zoo", "resolve", "a near miss of a zoo name", lambda c: resolve("whisper-tiny"), "did you mean 'whisper-tiny.en'"),
    Row("zoo", "resolve", "empty name", lambda c: resolve(""), "not a zoo name"),
    Row("zoo", "resolve", "a directory that does not exist", lambda c: resolve("/no/such/dir"), "not a zoo name, an existing directory"),
    Row("zoo", "shorten_whisper_window", "a wav2vec2 model", lambda c: shorten_whisper_window(c.model, 5), "needs a Whisper encoder"),
    Row("zoo", "shorten_whisper_window", "window 0", lambda c: shorten_whisper_window(c.whisper, 0), "the window must be a multiple of 0.02 s"),
    Row("zoo", "whisper_feature_extractor", "fractional seconds", lambda c: whisper_feature_extractor(WhisperFeatureExtractor(), 2.5), "whole number of seconds"),
    Row("zoo", "whisper_feature_extractor", "a window past Whisper's 30 s", lambda c: whisper_feature_extractor(WhisperFeatureExtractor(), 40), "from 1 to 30"),
    Row("zoo", "whisper_feature_extractor", "a directory that does not exist", lambda c: whisper_feature_extractor("/no/such/dir", 5), "not a zoo name, an existing directory"),
    Row("zoo", "whisper_feature_extractor", "a wav2vec2 checkpoint", lambda c: whisper_feature_extractor("w2v2-synth-ctc", 5), "not a WhisperFeatureExtractor"),
    Row("zoo", "whisper_feature_extractor", "None as the source", lambda c: whisper_feature_extractor(None, 5), "needs a WhisperFeatureExtractor or a checkpoint name"),
    Row("zoo", "shorten_whisper_window", "None as the model", lambda c: shorten_whisper_window(None, 5), "needs a Whisper encoder"),
    # ------------------------------------------------------------------ training CLI (python -m s2t_edu.finetune)
    Row("training", "finetune (CLI)", "--corpus huge", lambda c: finetune.run(finetune.parse_args(["--output-dir", str(c.tmp / "run"), "--steps", "1", "--corpus", "huge"])), "unknown corpus size"),
    Row("training", "finetune (CLI)", "--device tpu", lambda c: finetune.run(finetune.parse_args(["--output-dir", str(c.tmp / "run"), "--steps", "1", "--device", "tpu"])), "unknown --device"),
    Row("training", "finetune (CLI)", "no --steps nor --minutes", lambda c: finetune.run(finetune.parse_args(["--output-dir", str(c.tmp / "run")])), "no budget", seen=False),
    Row("training", "finetune (CLI)", "--output-dir of a run with other settings", lambda c: finetune.check_resume_settings(c.other_run, finetune.parse_args(["--output-dir", str(c.other_run), "--lr", "5e-4"])), "holds a run with different settings"),
    Row("training", "build_model_and_processors", "unknown init", lambda c: finetune.build_model_and_processors("w2v2-synth-ctc", "minilm-l6", init="magic"), "unknown --init"),
    Row("training", "resolved_precision", "fp8", lambda c: loop.resolved_precision("cpu", "fp8"), "unknown precision"),
    # ------------------------------------------------------------------ training CLI: every option checked once, before any model loads
    Row("training", "finetune (CLI)", "--lr -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--lr", "-1"]), "--lr must be a number > 0"),
    Row("training", "finetune (CLI)", "--lr 0", lambda c: finetune.parse_args(["--output-dir", "unused", "--lr", "0"]), "--lr must be a number > 0"),
    Row("training", "finetune (CLI)", "--lr nan", lambda c: finetune.parse_args(["--output-dir", "unused", "--lr", "nan"]), "--lr must be a number > 0"),
    Row("training", "finetune (CLI)", "--workers -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--workers", "-1"]), "--workers must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "--eval-clips -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--eval-clips", "-1", "--eval-every", "1"]), "--eval-clips must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "--eval-batch-size 0", lambda c: finetune.parse_args(["--output-dir", "unused", "--eval-batch-size", "0"]), "--eval-batch-size must be a whole number >= 1"),
    Row("training", "finetune (CLI)", "--eval-every -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--eval-every", "-1"]), "--eval-every must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "--steps -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--steps", "-1"]), "--steps must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "--minutes -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--minutes", "-1"]), "--minutes must be a number >= 0"),
    Row("training", "finetune (CLI)", "--minutes nan", lambda c: finetune.parse_args(["--output-dir", "unused", "--minutes", "nan"]), "--minutes must be a number >= 0"),
    Row("training", "finetune (CLI)", "--minutes inf", lambda c: finetune.parse_args(["--output-dir", "unused", "--minutes", "inf"]), "--minutes must be a number >= 0"),
    Row("training", "finetune (CLI)", "--window 0", lambda c: finetune.parse_args(["--output-dir", "unused", "--encoder", "whisper-tiny.en", "--window", "0"]), "--window must be whole seconds from 1 to 30"),
    Row("training", "finetune (CLI)", "--window 2.5", lambda c: finetune.parse_args(["--output-dir", "unused", "--window", "2.5"]), "--window must be whole seconds"),
    Row("training", "finetune (CLI)", "--window 60", lambda c: finetune.parse_args(["--output-dir", "unused", "--window", "60"]), "--window must be whole seconds from 1 to 30"),
    Row("training", "finetune (CLI)", "--max-clips -3", lambda c: finetune.parse_args(["--output-dir", "unused", "--max-clips", "-3"]), "--max-clips must be a whole number >= 1"),
    Row("training", "finetune (CLI)", "--max-clips 0", lambda c: finetune.parse_args(["--output-dir", "unused", "--max-clips", "0"]), "--max-clips must be a whole number >= 1"),
    Row("training", "finetune (CLI)", "--batch-size 0", lambda c: finetune.parse_args(["--output-dir", "unused", "--batch-size", "0"]), "--batch-size must be a whole number >= 1"),
    Row("training", "finetune (CLI)", "--warmup-steps -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--warmup-steps", "-1"]), "--warmup-steps must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "--max-grad-norm -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--max-grad-norm", "-1"]), "--max-grad-norm must be a number >= 0"),
    Row("training", "finetune (CLI)", "--max-grad-norm nan", lambda c: finetune.parse_args(["--output-dir", "unused", "--max-grad-norm", "nan"]), "--max-grad-norm must be a number >= 0"),
    Row("training", "finetune (CLI)", "--save-every -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--save-every", "-1"]), "--save-every must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "--seed -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--seed", "-1"]), "--seed must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "--corpus-seed -1", lambda c: finetune.parse_args(["--output-dir", "unused", "--corpus-seed", "-1"]), "--corpus-seed must be a whole number >= 0"),
    Row("training", "finetune (CLI)", "empty --output-dir", lambda c: finetune.parse_args(["--output-dir", ""]), "--output-dir is empty"),
    Row("training", "finetune (CLI)", "empty --target-column", lambda c: finetune.parse_args(["--output-dir", "unused", "--target-column", " "]), "--target-column is empty"),
    Row("training", "finetune (CLI)", "--output-dir inside a file", lambda c: finetune.run(finetune.parse_args(["--output-dir", str(c.wav_16k / "run"), "--steps", "1"])), "--output-dir is a file, or lies inside one"),
    Row("training", "finetune (CLI)", "--output-dir an existing file", lambda c: finetune.run(finetune.parse_args(["--output-dir", str(c.wav_16k), "--steps", "1"])), "--output-dir is a file, or lies inside one"),
    Row("training", "finetune (CLI)", "--encoder a near miss of a zoo name", lambda c: finetune.run(finetune.parse_args(["--output-dir", str(c.tmp / "run"), "--steps", "1", "--encoder", "whisper-tiny"])), "did you mean 'whisper-tiny.en'"),
    Row("training", "finetune (CLI)", "--decoder a directory that does not exist", lambda c: finetune.run(finetune.parse_args(["--output-dir", str(c.tmp / "run"), "--steps", "1", "--decoder", "/no/such/dir"])), "not a zoo name, an existing directory"),
    Row("training", "Settings", "unknown init", lambda c: finetune.Settings("unused", init="magic"), "unknown --init"),
    Row("training", "Settings", "steps as text", lambda c: finetune.Settings("unused", steps="10"), "--steps must be a whole number"),
    Row("training", "Settings", "fractional batch size", lambda c: finetune.Settings("unused", batch_size=2.5), "--batch-size must be a whole number"),
    Row("training", "check_batch_size", "an empty training split", lambda c: finetune.check_batch_size(4, 1, 0), "the training split holds no clip"),
    # ------------------------------------------------------------------ training loop: compute_loss checks the batch before the forward pass
    Row("training", "compute_loss", "label outside the vocabulary", lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "attention_mask": MASK, "labels": _labels_with(500)}), r"labels contain ids outside the decoder vocabulary \[0, 99\)"),
    Row("training", "compute_loss", "negative label other than -100", lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "labels": _labels_with(-7)}), "negative ids"),
    Row("training", "compute_loss", "float labels", lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "labels": LABELS.float()}), "integer token ids"),
    Row("training", "compute_loss", "labels for another batch size", lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "labels": LABELS[:1]}), "disagree in batch size"),
    Row("training", "compute_loss", "attention_mask shorter than the audio", lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "attention_mask": MASK[:, :1200], "labels": LABELS}), r"attention_mask and the audio disagree"),
    Row("training", "compute_loss", "NaN audio", lambda c: loop.compute_loss(c.model, {"input_values": AUDIO * math.nan, "labels": LABELS}), "NaN or infinite"),
    Row("training", "compute_loss", "int16 audio", lambda c: loop.compute_loss(c.model, {"input_values": (AUDIO * 1000).short(), "labels": LABELS}), "integer audio"),
    Row("training", "compute_loss", "a batch without labels", lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "attention_mask": MASK}), "a training batch needs labels"),
    Row("training", "compute_loss", "a list instead of a batch dict", lambda c: loop.compute_loss(c.model, [AUDIO, LABELS]), "a training batch needs labels"),
    Row("training", "compute_loss", "a batch without audio", lambda c: loop.compute_loss(c.model, {"audio": AUDIO, "labels": LABELS}), "the batch holds no audio"),
    Row("training", "compute_loss", "start id outside the vocabulary", _with_ids(lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "labels": LABELS}), decoder_start_token_id=500), "decoder_input_ids contain ids outside"),
    Row("training", "compute_loss", "pad id not set", _with_ids(lambda c: loop.compute_loss(c.model, {"input_values": AUDIO, "labels": LABELS}), pad_token_id=None), "pad_token_id is not set", seen=False),
    Row("training", "compute_loss", "Whisper features with an attention_mask", lambda c: loop.compute_loss(c.whisper, {"input_features": c.features, "attention_mask": torch.ones(2, 40), "labels": LABELS}), "Whisper's encoder takes no attention_mask"),
    Row("training", "compute_loss", "Whisper features of the wrong window", lambda c: loop.compute_loss(c.whisper, {"input_features": c.features[..., :30], "labels": LABELS}), r"log-mel features of shape \(batch, 16, 40\)"),
    Row("training", "compute_loss", "NaN cached encoder frames", lambda c: loop.compute_loss(c.model, {"encoder_outputs": (torch.full((2, 5, W2V2.hidden_size), math.nan),), "labels": LABELS}), "cached encoder frames contain NaN"),
    Row("training", "compute_loss", "cached frames of another width", lambda c: loop.compute_loss(c.model, {"encoder_outputs": (torch.zeros(2, 5, W2V2.hidden_size + 1),), "labels": LABELS}), "encoder_outputs must hold the encoder's frames"),
    Row("training", "compute_loss", "cached frames for another batch size", lambda c: loop.compute_loss(c.model, {"encoder_outputs": (torch.zeros(3, 5, W2V2.hidden_size),), "labels": LABELS}), "disagree in batch size"),
    Row("training", "evaluate", "an empty evaluation set", lambda c: loop.evaluate(c.model, [], c.collator, c.tokenizer), "the evaluation set is empty"),
    Row("training", "evaluate", "batch_size 0", lambda c: loop.evaluate(c.model, [_row_audio(CLIP)[0]], c.collator, c.tokenizer, batch_size=0), "batch_size must be a whole number >= 1"),
    Row("training", "make_optimizer", "negative learning rate", lambda c: loop.make_optimizer(c.model, lr=-1.0), "the learning rate must be a number > 0"),
    Row("training", "make_schedule", "0 steps", lambda c: loop.make_schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 0, 0), "the number of steps must be a whole number >= 1"),
    Row("training", "make_schedule", "negative warm-up", lambda c: loop.make_schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), -5, 10), "warmup_steps must be a whole number >= 0"),
    Row("training", "train", "steps -1", lambda c: loop.train(c.model, [], c.collator, c.tokenizer, steps=-1), "the number of steps must be a whole number >= 1"),
    Row("training", "train", "lr NaN", lambda c: loop.train(c.model, [], c.collator, c.tokenizer, steps=2, lr=math.nan), "the learning rate must be a number > 0"),
    # ------------------------------------------------------------------ attention (by hand)
    Row("attention", "cross_attention", "decoder states of another width", lambda c: cross_attention(cross_attention_modules(c.model)[0], torch.randn(1, 2, BERT.hidden_size - 1), torch.randn(1, 5, BERT.hidden_size)), "decoder_states must be a"),
    Row("attention", "cross_attention", "a frame mask of the wrong length", lambda c: cross_attention(cross_attention_modules(c.model)[0], torch.randn(1, 2, BERT.hidden_size), torch.randn(1, 5, BERT.hidden_size), torch.ones(1, 4, dtype=torch.long)), "one entry per encoder frame"),
    Row("attention", "projections", "a module that is not attention", lambda c: projections(torch.nn.Linear(2, 2)), "not a cross-attention module"),
    Row("attention", "recorded_cross_attention", "a layer the decoder does not have", lambda c: recorded_cross_attention(c.model, 7, input_values=AUDIO, decoder_input_ids=LABELS.clamp(min=0)), "cross-attention layers"),
    # ------------------------------------------------------------------ exercises
    Row("exercises", "check_concept", "a key no question has", lambda c: check_concept("nope", "a"), "no concept question has this key"),
    Row("exercises", "check_concept", "None as the key", lambda c: check_concept(None, "a"), "no concept question has this key"),
    Row("exercises", "judge_concept", "a key no question has", lambda c: judge_concept("nope", None), "no concept question has this key"),
]  # fmt: skip

AREAS = (
    "config", "frames", "projection", "labels", "loss", "forward", "inputs", "model", "metrics",
    "show", "decoding", "processors", "data", "collator", "corpus", "zoo", "training",
    "attention", "exercises",
)  # fmt: skip


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """The tiny models, processors and damaged files the rows call with (built once)."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    model = set_special_tokens(s2t_edu.build_model(W2V2, BERT))
    whisper = set_special_tokens(s2t_edu.build_model(encoder_configs()["whisper-encoder"], BERT))
    features = torch.randn(2, 16, 40, generator=torch.Generator().manual_seed(1))

    corrupt_wav = tmp / "corrupt.wav"
    corrupt_wav.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio")
    wav_16k = tmp / "clip.wav"
    soundfile.write(wav_16k, CLIP, 16000)
    empty_dir = tmp / "empty"
    empty_dir.mkdir()
    corrupt_config = tmp / "corrupt_config"
    corrupt_config.mkdir()
    (corrupt_config / "config.json").write_text("{ this is not json")
    corrupt_weights = tmp / "corrupt_weights"
    model.save_pretrained(corrupt_weights)
    (corrupt_weights / "model.safetensors").write_bytes(b"\x00\x01 damaged")
    other_run = tmp / "other_run"
    other_run.mkdir()
    saved = {key: getattr(finetune.Settings(str(other_run)), key) for key in finetune.RESUME_KEYS}
    (other_run / "run_config.json").write_text(json.dumps({**saved, "lr": 1e-3}))

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm-l6"))
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    return SimpleNamespace(
        tmp=tmp,
        model=model,
        whisper=whisper,
        features=features,
        corrupt_wav=corrupt_wav,
        wav_16k=wav_16k,
        empty_dir=empty_dir,
        corrupt_config=corrupt_config,
        corrupt_weights=corrupt_weights,
        other_run=other_run,
        tokenizer=tokenizer,
        extractor=extractor,
        collator=collator_module.SpeechSeq2SeqCollator(extractor, tokenizer),
    )


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_bad_input_is_explained(ctx, row):
    with pytest.raises(S2TEduError) as error:
        row.call(ctx)
    message = str(error.value)
    assert re.search(row.match, message), message
    assert "\nFix: " in message and error.value.fix.strip()
    if row.seen:
        assert error.value.seen is not None, f"the error shows no value seen: {message}"
        assert "(got: " in message


def test_the_table_covers_every_area():
    """Every area of the brief has rows, and the table stays large (its size is reported)."""
    by_area = {area: [r for r in TABLE if r.area == area] for area in AREAS}
    assert {r.area for r in TABLE} == set(AREAS)
    assert all(len(rows) >= 3 for rows in by_area.values()), {a: len(r) for a, r in by_area.items()}
    assert len({row.id for row in TABLE}) == len(TABLE)  # each row tests something else
    assert len(TABLE) >= 200


def test_the_issue_cases_name_what_disagrees(ctx):
    """Issue 19's three cases: the vocabulary, both lengths, the negative length."""
    with pytest.raises(S2TEduError) as error:
        s2t_edu.forward_step_by_step(ctx.model, AUDIO, labels=_labels_with(VOCAB + 1))
    assert error.value.seen == [VOCAB + 1] and f"[0, {VOCAB})" in str(error.value)
    with pytest.raises(S2TEduError) as error:
        s2t_edu.forward_step_by_step(ctx.model, AUDIO, labels=LABELS, attention_mask=MASK[:, :1200])
    assert "1200" in str(error.value.seen) and "1600" in str(error.value.seen)
    with pytest.raises(S2TEduError) as error:
        s2t_edu.encoder_output_lengths(W2V2, torch.tensor([1600, -1]))
    assert error.value.seen == [-1]


def test_good_inputs_next_to_the_bad_ones_still_work(ctx):
    """The checks do not refuse what the rows' good twins are: same shapes, right values."""
    trace = s2t_edu.forward_step_by_step(ctx.model, AUDIO, labels=LABELS, attention_mask=MASK)
    assert torch.isfinite(trace.loss)
    numpy_mask = s2t_edu.encode(ctx.model, AUDIO.numpy(), MASK.numpy()).attention_mask
    assert numpy_mask.shape[0] == 2
    assert s2t_edu.encoder_output_lengths(W2V2, [1600.0]).tolist() == [
        int(s2t_edu.encoder_output_lengths(W2V2, 1600))
    ]
    assert dec.top_p(SCORES, 0.0).isfinite().sum(-1).tolist() == [1, 1]  # generate allows p=0
    assert dec.min_new_tokens(TOKENS, SCORES, 0, EOS).equal(SCORES)
    assert s2t_edu.greedy_decode(ctx.model, AUDIO, MASK, max_new_tokens=2).shape[0] == 2
    assert s2t_edu.shift_tokens_right(LABELS, np.int64(0), torch.tensor(1))[0, 0] == 1
    assert wer(("a b",), ["a c"]) == 0.5
    assert Path(resolve(str(ctx.empty_dir))) == ctx.empty_dir
