"""``doctor``: the failure modes people hit most, found before they cost a training run.

``FAILURE_MODES`` is chapter 7's gallery in one table: each entry is a problem users really
reported (with the threads), numbered as in the chapter. Most of them can be seen before the
first training step, from the model, its tokenizer, a batch, the audio's sampling rate or the
``Seq2SeqTrainingArguments``: :func:`doctor` looks for exactly those, and each
:class:`Finding` names its entry, the threads, what is wrong and the one-line fix. Entries
that only show during or after training (a model not yet trained, a ``compute_metrics`` bug)
have no check; the chapter shows them live. ``doctor`` never changes what it is given.

Findings are values (a :class:`Kind` and the numbers seen); the English sentences are made from
them only when printed (``str(finding)``, ``finding.problem``, ``finding.fix``).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

import torch

from s2t_edu.data.audio import SAMPLING_RATE
from s2t_edu.frames import (
    conv_layers,
    encoder_output_lengths,
    has_adapter,
    minimum_input_length,
)
from s2t_edu.inputs import decoder_max_length
from s2t_edu.labels import IGNORE_INDEX, SPECIAL_ID_FIX, SPECIAL_TOKEN_SOURCES, check_labels


class FailureMode(NamedTuple):
    """One entry of the gallery: what the user sees, and the threads where it was reported."""

    symptom: str
    issues: tuple[str, ...]


# transformers issue/PR numbers are bare ("#18343"); other repositories are named.
FAILURE_MODES: dict[int, FailureMode] = {
    1: FailureMode(
        "ValueError at the first forward pass: the decoder has no cross-attention",
        ("#4293", "#6377"),
    ),
    2: FailureMode(
        "the same transcript for every clip; the load report lists cross-attention as MISSING",
        ("#10831", "#18343"),
    ),
    3: FailureMode(
        "generation settings in model.config: save_pretrained and generate raise; "
        "from_encoder_decoder_pretrained drops them or raises TypeError",
        ("#41695", "#32659"),
    ),
    4: FailureMode(
        "AttributeError: no pad_token_id / ValueError: decoder_start_token_id has to be defined, "
        "even after setting model.config",
        ("#18343", "#7063", "#8218", "#14439"),
    ),
    5: FailureMode(
        "IndexError: index out of range in self / ValueError: Asking to pad but the tokenizer "
        "does not have a padding token",
        ("#3859", "#12594"),
    ),
    6: FailureMode(
        "a HuBERT encoder with add_adapter=True is as long as without: the setting is ignored",
        ("#14392", "#15409"),
    ),
    7: FailureMode(
        "encoder output twice as long at random training steps; half the clip masked",
        ("#20451", "#20505"),
    ),
    8: FailureMode(
        "warning about sampling_rate, then a transcript of gibberish (44.1/48 kHz audio)",
        ("facebookresearch/fairseq#1931",),
    ),
    9: FailureMode(
        "RuntimeError: Kernel size can't be greater than actual input size / ValueError: "
        "`mask_length` has to be smaller than `sequence_length`",
        ("#15366", "#15423"),
    ),
    10: FailureMode(
        "a clip transcribed alone and in a padded batch gives different results",
        ("#10117", "#21534", "facebookresearch/fairseq#3227"),
    ),
    11: FailureMode(
        "AttributeError: no _get_feature_vector_attention_mask / ValueError: Whisper expects "
        "the mel input features to be of length 3000",
        ("#30740",),
    ),
    12: FailureMode(
        "the loss looks low, yet every clip gets the same transcript: padding is being learned",
        ("#7896", "#9909"),
    ),
    13: FailureMode(
        "generation never stops: the model was never shown an EOS (pad == EOS masked by id)",
        ("#19166", "#4122", "huggingface/blog#641"),
    ),
    14: FailureMode(
        "every transcript starts with the start token twice", ("#29973", "huggingface/blog#1949")
    ),
    15: FailureMode(
        "RuntimeError: The expanded size of the tensor (600) must match the existing size "
        "(512) / IndexError: index out of range in self",
        ("#33196",),
    ),
    16: FailureMode(
        "training loss collapses, transcripts are the start token repeated", ("#11977", "#14139")
    ),
    17: FailureMode(
        "ValueError: No columns in the dataset match the model's forward method signature",
        ("#19599",),
    ),
    18: FailureMode(
        "AttributeError: 'WhisperEncoder' object has no attribute 'freeze_feature_encoder'",
        ("#19519",),
    ),
    19: FailureMode(
        "RuntimeError: Expected to have finished reduction in the prior iteration (DDP + "
        "LayerDrop)",
        ("#11452", "#30113"),
    ),
    20: FailureMode(
        "generation runs to the length limit: no eos_token_id in generation_config",
        ("#14905",),
    ),
    21: FailureMode(
        "every transcript cut at 20 tokens (UserWarning: model-agnostic default `max_length`)",
        ("#13424", "#31110"),
    ),
    22: FailureMode(
        "OverflowError in compute_metrics when decoding predictions or labels holding -100",
        ("#22634", "#10046"),
    ),
}


class Kind(Enum):
    """What ``doctor`` can find; the value is the short code printed in brackets."""

    NO_CROSS_ATTENTION = "no-cross-attention"
    GENERATION_SETTINGS_IN_CONFIG = "generation-settings-in-config"
    MISSING_DECODER_START = "missing-decoder-start"
    MISSING_PAD = "missing-pad"
    MISSING_EOS = "missing-eos"
    GENERATE_HAS_NO_START = "generate-start-missing"
    DECODER_START_DIFFERS = "decoder-start-differs"
    PAD_DIFFERS = "pad-differs"
    VOCAB_MISMATCH = "vocab-mismatch"
    TOKENIZER_WITHOUT_PAD = "tokenizer-without-pad"
    PAD_ID_MISMATCH = "pad-id-mismatch"
    ADAPTER_IGNORED = "adapter-ignored"
    ADAPTER_LAYERDROP = "adapter-layerdrop"
    SAMPLING_RATE = "sampling-rate"
    CLIP_SHORTER_THAN_RECEPTIVE_FIELD = "clip-too-short"
    CLIP_TOO_SHORT_FOR_MASKING = "clip-too-short-for-masking"
    GROUP_NORM_ATTENTION_MASK = "group-norm-attention-mask"
    WHISPER_ATTENTION_MASK = "whisper-attention-mask"
    WHISPER_WINDOW = "whisper-window"
    PAD_IN_LABELS = "pad-in-labels"
    LABELS_WITHOUT_EOS = "labels-without-eos"
    START_IN_LABELS = "start-token-in-labels"
    LABELS_TOO_LONG = "labels-too-long"
    LABELS_NOT_SHIFTED = "labels-not-shifted"
    COLUMNS_REMOVED = "remove-unused-columns"
    LAYERDROP_DDP = "layerdrop-ddp"
    GENERATE_HAS_NO_EOS = "generate-eos-missing"
    EOS_DIFFERS = "eos-differs"
    TRANSCRIPTS_CUT = "transcripts-cut"


class Advice(NamedTuple):
    """The gallery entry of a kind and its two sentences (``str.format`` templates)."""

    entry: int
    problem: str
    fix: str


ADVICE: dict[Kind, Advice] = {
    Kind.NO_CROSS_ATTENTION: Advice(
        1,
        "the decoder has no cross-attention layers, so it cannot read the audio: transformers "
        "builds the model, but its first forward pass raises ValueError ('... has to be "
        "instantiated with cross-attention layers by setting `config.add_cross_attention=True`')",
        "compose with s2t_edu.compose_config / from_encoder_decoder_pretrained, which set "
        "is_decoder=True and add_cross_attention=True before the decoder is built",
    ),
    Kind.GENERATION_SETTINGS_IN_CONFIG: Advice(
        3,
        "generation settings {settings} sit in model.config: transformers 5 refuses them there "
        "(save_pretrained and generate raise ValueError)",
        "move them: model.generation_config.<name> = value, and delete them from model.config",
    ),
    Kind.MISSING_DECODER_START: Advice(
        4,
        "model.config.decoder_start_token_id is not set: training (labels) or generate() will fail",
        "{SPECIAL_ID_FIX}  # decoder_start_token_id = {source}",
    ),
    Kind.MISSING_PAD: Advice(
        4,
        "model.config.pad_token_id is not set: training (labels) or generate() will fail",
        "{SPECIAL_ID_FIX}  # pad_token_id = {source}",
    ),
    Kind.MISSING_EOS: Advice(
        4,
        "model.config.eos_token_id is not set: training (labels) or generate() will fail",
        "{SPECIAL_ID_FIX}  # eos_token_id = {source}",
    ),
    Kind.GENERATE_HAS_NO_START: Advice(
        4,
        "model.config.decoder_start_token_id is {trained} but model.generation_config has no "
        "start token (neither decoder_start_token_id nor bos_token_id): generate() reads only "
        "generation_config and raises ValueError",
        "model.generation_config.decoder_start_token_id = {trained}  # or {SPECIAL_ID_FIX}",
    ),
    Kind.DECODER_START_DIFFERS: Advice(
        4,
        "training starts the decoder with {trained} but generate() with {generated}: the model "
        "is asked to continue a prefix it never saw",
        "model.generation_config.decoder_start_token_id = model.config.decoder_start_token_id"
        "  # or {SPECIAL_ID_FIX}",
    ),
    Kind.PAD_DIFFERS: Advice(
        4,
        "pad_token_id is {trained} for training but {generated} for generate()",
        "model.generation_config.pad_token_id = model.config.pad_token_id  # or {SPECIAL_ID_FIX}",
    ),
    Kind.VOCAB_MISMATCH: Advice(
        5,
        "the tokenizer has {tokens} tokens but the decoder's vocabulary has {vocab}: ids past "
        "the end crash the embedding lookup (IndexError: index out of range in self)",
        "use the decoder's own tokenizer, or model.decoder.resize_token_embeddings(len(tokenizer))",
    ),
    Kind.TOKENIZER_WITHOUT_PAD: Advice(
        5,
        "the tokenizer has no pad token, so batches of different lengths cannot be padded",
        "tokenizer.pad_token = tokenizer.eos_token  # GPT-2 style; labels mask padding with -100",
    ),
    Kind.PAD_ID_MISMATCH: Advice(
        5,
        "model.config.pad_token_id={model_pad} but the tokenizer pads with {tokenizer_pad}",
        SPECIAL_ID_FIX,
    ),
    Kind.ADAPTER_IGNORED: Advice(
        6,
        "the encoder config says add_adapter=True but a {model_type} encoder has no adapter: "
        "the setting is silently ignored and the encoder output is as long as without it",
        "drop add_adapter, or use an encoder that has one (wav2vec2, data2vec-audio, WavLM)",
    ),
    Kind.ADAPTER_LAYERDROP: Advice(
        7,
        "the adapter's layers are skipped at random in training (LayerDrop {layerdrop}): the "
        "encoder output is then longer than the audio mask transformers builds for it, so the "
        "decoder sees only part of each clip at those steps, silently",
        "model.config.encoder.layerdrop = 0.0 (before training; the adapter reads it too)",
    ),
    Kind.SAMPLING_RATE: Advice(
        8,
        "the audio is at {rate} Hz but the encoder was trained on {expected} Hz: it hears "
        "speech {factor:.2f}x too slow and writes gibberish; feature extractors only warn",
        "resample first: s2t_edu.data.load_audio(audio, sampling_rate={expected}, "
        "orig_sampling_rate={rate})",
    ),
    Kind.CLIP_SHORTER_THAN_RECEPTIVE_FIELD: Advice(
        9,
        "clip(s) {rows} hold fewer than {minimum} samples, the encoder's receptive field: the "
        "convolutions raise RuntimeError (Kernel size can't be greater than actual input size)",
        "drop or pad clips shorter than s2t_edu.minimum_input_length(model.config.encoder) samples",
    ),
    Kind.CLIP_TOO_SHORT_FOR_MASKING: Advice(
        9,
        "clip(s) {rows} give fewer than mask_time_length={span} encoder frames: in training, "
        "SpecAugment masking raises ValueError (`mask_length` has to be smaller than "
        "`sequence_length`)",
        "drop clips shorter than {samples} samples, or model.config.encoder.mask_time_prob = 0.0",
    ),
    Kind.GROUP_NORM_ATTENTION_MASK: Advice(
        10,
        "this wav2vec2-style encoder uses group norm in its feature extractor (like "
        "wav2vec2-base), which was trained on zero-padded audio without an attention mask; "
        "passing one changes its outputs",
        "Wav2Vec2FeatureExtractor(..., return_attention_mask=False) and call the model without "
        "attention_mask",
    ),
    Kind.WHISPER_ATTENTION_MASK: Advice(
        11,
        "Whisper's encoder takes no attention_mask: SpeechEncoderDecoderModel then raises "
        "AttributeError ('WhisperEncoder' object has no attribute "
        "'_get_feature_vector_attention_mask')",
        "drop attention_mask: every clip is padded to the full window and Whisper learned to "
        "ignore the silence",
    ),
    Kind.WHISPER_WINDOW: Advice(
        11,
        "Whisper's encoder reads exactly {window} mel frames but the batch has {frames}: its "
        "forward pass raises ValueError",
        "let WhisperFeatureExtractor pad every clip to its window (its default padding)",
    ),
    Kind.PAD_IN_LABELS: Advice(
        12,
        "labels contain the pad id {pad}: the loss trains the model to predict padding, which "
        "is easy and swamps the real tokens",
        "labels = labels.masked_fill(attention_mask == 0, -100)  # s2t_edu.pad_to_ignore_index",
    ),
    Kind.LABELS_WITHOUT_EOS: Advice(
        13,
        "label rows {rows} do not end with eos_token_id={eos}: the model never learns to stop "
        "and generation runs to the length limit (GPT-2 tokenizers add no EOS; masking pad == EOS "
        "by id removes it)",
        "append the EOS to each target and mask padding by the attention mask, not by id "
        "(s2t_edu.pad_to_ignore_index; s2t_edu's collator does both)",
    ),
    Kind.START_IN_LABELS: Advice(
        14,
        "every label row starts with decoder_start_token_id={start}: the model prepends it again "
        "when it shifts labels right, so the decoder learns to emit the start token twice",
        "labels = labels[:, 1:] when the tokenizer added it (s2t_edu's collator drops it)",
    ),
    Kind.LABELS_TOO_LONG: Advice(
        15,
        "labels are {length} tokens long but the decoder's position table holds {limit}: the "
        "forward pass fails (BERT: RuntimeError on the expanded size; GPT-2: IndexError)",
        "tokenizer(text, truncation=True, max_length={limit}) or drop the longest targets",
    ),
    Kind.LABELS_NOT_SHIFTED: Advice(
        16,
        "decoder_input_ids equal the labels: each position sees the very token it must predict, "
        "so the loss collapses and generate() produces garbage",
        "pass labels only: the model builds decoder_input_ids by shifting them right "
        "(s2t_edu.shift_tokens_right)",
    ),
    Kind.COLUMNS_REMOVED: Advice(
        17,
        "remove_unused_columns=True: the Trainer drops {columns} before your collator sees them, "
        "since model.forward does not name them",
        "Seq2SeqTrainingArguments(..., remove_unused_columns=False)",
    ),
    Kind.LAYERDROP_DDP: Advice(
        19,
        "LayerDrop {layerdrop} skips layers at random while training on {processes} processes: "
        "DDP raises RuntimeError (Expected to have finished reduction in the prior iteration)",
        "set layerdrop to 0.0 in the encoder (and decoder) config, or "
        "Seq2SeqTrainingArguments(..., ddp_find_unused_parameters=True)",
    ),
    Kind.GENERATE_HAS_NO_EOS: Advice(
        20,
        "model.generation_config has no eos_token_id (model.config has {trained}): generate() "
        "never stops before the length limit",
        "model.generation_config.eos_token_id = {trained}  # or {SPECIAL_ID_FIX}",
    ),
    Kind.EOS_DIFFERS: Advice(
        20,
        "eos_token_id is {trained} for training but {generated} for generate(): generation "
        "stops on a token the model never learned to end with",
        "model.generation_config.eos_token_id = model.config.eos_token_id  # or {SPECIAL_ID_FIX}",
    ),
    Kind.TRANSCRIPTS_CUT: Advice(
        21,
        "{where} generates at most {limit} tokens but targets run to {needed}: transcripts are cut",
        "{setting}",
    ),
}


@dataclass(frozen=True)
class Finding:
    """One problem: its :class:`Kind` and the values seen. Sentences are made when read."""

    kind: Kind
    seen: dict = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.kind.value

    @property
    def entry(self) -> int:
        """The chapter-7 gallery entry that shows this problem live."""
        return ADVICE[self.kind].entry

    @property
    def issues(self) -> tuple[str, ...]:
        return FAILURE_MODES[self.entry].issues

    @property
    def problem(self) -> str:
        return ADVICE[self.kind].problem.format(SPECIAL_ID_FIX=SPECIAL_ID_FIX, **self.seen)

    @property
    def fix(self) -> str:
        return ADVICE[self.kind].fix.format(SPECIAL_ID_FIX=SPECIAL_ID_FIX, **self.seen)

    def __str__(self) -> str:
        threads = ", ".join(f"transformers{i}" if i.startswith("#") else i for i in self.issues)
        return (
            f"[{self.code}] {self.problem} (chapter 7, entry {self.entry}; {threads})\n"
            f"    fix: {self.fix}"
        )


# --- the model and its configs ------------------------------------------------------------


def _architecture_findings(model) -> list[Finding]:
    findings = []
    has_cross = any(
        "crossattention" in name or "encoder_attn" in name
        for name, _ in model.decoder.named_modules()
    )
    if not getattr(model.config.decoder, "add_cross_attention", False) or not has_cross:
        findings.append(Finding(Kind.NO_CROSS_ATTENTION))
    # The same check save_pretrained runs before it refuses (PreTrainedConfig.save_pretrained).
    settings = getattr(model.config, "_get_generation_parameters", dict)()
    if settings:
        findings.append(Finding(Kind.GENERATION_SETTINGS_IN_CONFIG, {"settings": settings}))
    return findings


def _special_token_findings(model) -> list[Finding]:
    missing = {
        "decoder_start_token_id": Kind.MISSING_DECODER_START,
        "pad_token_id": Kind.MISSING_PAD,
        "eos_token_id": Kind.MISSING_EOS,
    }
    return [
        Finding(kind, {"source": SPECIAL_TOKEN_SOURCES[name]})
        for name, kind in missing.items()
        if getattr(model.config, name, None) is None
    ]


def _train_vs_generate_findings(model) -> list[Finding]:
    """Training reads model.config; generate() reads only model.generation_config (#14439).
    Setting the first after the model was built does not reach the second."""
    generation = getattr(model, "generation_config", None)
    if generation is None:
        return []
    findings = []
    start = getattr(model.config, "decoder_start_token_id", None)
    # generate() starts from decoder_start_token_id, else bos_token_id
    generated_start = generation.decoder_start_token_id
    if generated_start is None:
        generated_start = generation.bos_token_id
    if start is not None and generated_start is None:
        findings.append(Finding(Kind.GENERATE_HAS_NO_START, {"trained": start}))
    elif start is not None and generated_start != start:
        seen = {"trained": start, "generated": generated_start}
        findings.append(Finding(Kind.DECODER_START_DIFFERS, seen))
    eos, pad = (
        getattr(model.config, "eos_token_id", None),
        getattr(model.config, "pad_token_id", None),
    )
    if eos is not None and generation.eos_token_id is None:
        findings.append(Finding(Kind.GENERATE_HAS_NO_EOS, {"trained": eos}))
    elif eos is not None and generation.eos_token_id != eos:
        seen = {"trained": eos, "generated": generation.eos_token_id}
        findings.append(Finding(Kind.EOS_DIFFERS, seen))
    if pad is not None and generation.pad_token_id not in (None, pad):
        findings.append(
            Finding(Kind.PAD_DIFFERS, {"trained": pad, "generated": generation.pad_token_id})
        )
    return findings


def _encoder_findings(model) -> list[Finding]:
    encoder_config = model.config.encoder
    if not getattr(encoder_config, "add_adapter", False):
        return []
    if not has_adapter(encoder_config):
        return [Finding(Kind.ADAPTER_IGNORED, {"model_type": encoder_config.model_type})]
    if getattr(encoder_config, "layerdrop", 0.0) > 0:
        return [Finding(Kind.ADAPTER_LAYERDROP, {"layerdrop": encoder_config.layerdrop})]
    return []


def _tokenizer_findings(model, tokenizer) -> list[Finding]:
    findings = []
    vocab_size = model.config.decoder.vocab_size
    if len(tokenizer) > vocab_size:
        seen = {"tokens": len(tokenizer), "vocab": vocab_size}
        findings.append(Finding(Kind.VOCAB_MISMATCH, seen))
    if tokenizer.pad_token_id is None:
        findings.append(Finding(Kind.TOKENIZER_WITHOUT_PAD))
    elif getattr(model.config, "pad_token_id", None) not in (None, tokenizer.pad_token_id):
        seen = {"model_pad": model.config.pad_token_id, "tokenizer_pad": tokenizer.pad_token_id}
        findings.append(Finding(Kind.PAD_ID_MISMATCH, seen))
    return findings


# --- the audio ---------------------------------------------------------------------------------


def _sampling_rate_findings(sampling_rate) -> list[Finding]:
    if sampling_rate is None or int(sampling_rate) == SAMPLING_RATE:
        return []
    seen = {"rate": int(sampling_rate), "expected": SAMPLING_RATE}
    return [Finding(Kind.SAMPLING_RATE, {**seen, "factor": int(sampling_rate) / SAMPLING_RATE})]


def _attention_mask_findings(model, attention_mask) -> list[Finding]:
    if attention_mask is None:
        return []
    encoder_config = model.config.encoder
    if encoder_config.model_type == "whisper":
        return [Finding(Kind.WHISPER_ATTENTION_MASK)]
    if getattr(encoder_config, "feat_extract_norm", None) == "group":
        return [Finding(Kind.GROUP_NORM_ATTENTION_MASK)]
    return []


def _clip_length_findings(model, batch, attention_mask) -> list[Finding]:
    encoder_config = model.config.encoder
    if encoder_config.model_type == "whisper":
        features = batch.get("input_features")
        window = 2 * encoder_config.max_source_positions
        if features is not None and features.shape[-1] != window:
            return [Finding(Kind.WHISPER_WINDOW, {"window": window, "frames": features.shape[-1]})]
        return []
    audio = batch.get("input_values")
    if audio is None:
        return []
    if attention_mask is not None:
        lengths = torch.as_tensor(attention_mask).sum(-1)
    else:  # without a mask (group norm) every row counts as the full padded length
        lengths = torch.full((audio.shape[0],), audio.shape[-1])
    minimum = minimum_input_length(encoder_config)
    too_short = (lengths < minimum).nonzero().flatten().tolist()
    if too_short:
        seen = {"rows": too_short[:5], "minimum": minimum}
        return [Finding(Kind.CLIP_SHORTER_THAN_RECEPTIVE_FIELD, seen)]
    span = getattr(encoder_config, "mask_time_length", 0)
    if getattr(encoder_config, "mask_time_prob", 0.0) > 0 and span:
        # SpecAugment masks the conv frames, before the transformer layers and any adapter
        conv_only = copy.copy(encoder_config)
        conv_only.add_adapter = False
        rows = (encoder_output_lengths(conv_only, lengths) < span).nonzero().flatten().tolist()
        if rows:
            seen = {"rows": rows[:5], "span": span, "samples": _samples_for(conv_only, span)}
            return [Finding(Kind.CLIP_TOO_SHORT_FOR_MASKING, seen)]
    return []


def _samples_for(encoder_config, frames: int) -> int:
    """The shortest input (samples) that yields ``frames`` encoder frames (each conv inverted,
    as in s2t_edu.frames.minimum_input_length)."""
    length = frames
    for kernel, stride, padding in reversed(conv_layers(encoder_config)):
        length = (length - 1) * stride + kernel - 2 * padding
    return length


# --- the labels --------------------------------------------------------------------------------


def _label_findings(model, labels) -> list[Finding]:
    labels = check_labels(labels)
    config = model.config
    pad, eos = getattr(config, "pad_token_id", None), getattr(config, "eos_token_id", None)
    start = getattr(config, "decoder_start_token_id", None)
    findings = []
    counted = labels != IGNORE_INDEX  # the positions the loss counts ...
    if pad is not None and pad != eos and bool((labels == pad).any()):
        findings.append(Finding(Kind.PAD_IN_LABELS, {"pad": pad}))
        counted &= labels != pad  # ... less padding the loss should not count (entry 12)
    if eos is not None:
        last_real = _last_real_label(labels, counted)
        if bool((last_real != eos).any()):
            rows = (last_real != eos).nonzero().flatten().tolist()
            findings.append(Finding(Kind.LABELS_WITHOUT_EOS, {"rows": rows[:5], "eos": eos}))
    if start is not None and bool((labels[:, 0] == start).all()):
        findings.append(Finding(Kind.START_IN_LABELS, {"start": start}))
    limit = decoder_max_length(config.decoder)
    if limit is not None and labels.shape[1] > limit:
        findings.append(Finding(Kind.LABELS_TOO_LONG, {"length": labels.shape[1], "limit": limit}))
    return findings + _generation_length_findings(model, counted)


def _last_real_label(labels: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """The last ``counted`` label of each row."""
    # cumsum stops growing after the last counted label; argmax returns its first (= that) position
    last_index = counted.long().cumsum(-1).argmax(-1)
    return labels.gather(1, last_index[:, None]).squeeze(1)


DEFAULT_NEW_TOKENS = 20  # generate()'s model-agnostic default max_length, counted in new tokens


def generated_token_limit(generation_config) -> tuple[int, str]:
    """How many tokens ``generate()`` may write with this config, and which setting says so.

    ``max_new_tokens`` wins; else ``max_length`` counts the decoder's start token too; else
    transformers falls back to 20 new tokens (and warns).
    """
    if generation_config.max_new_tokens is not None:
        return generation_config.max_new_tokens, "max_new_tokens"
    if generation_config.max_length is not None:
        return generation_config.max_length - 1, "max_length"
    return DEFAULT_NEW_TOKENS, "the model-agnostic default max_length"


def _generation_length_findings(model, counted: torch.Tensor) -> list[Finding]:
    generation = getattr(model, "generation_config", None)
    if generation is None:
        return []
    needed = int(counted.sum(-1).max())  # the longest target, EOS included
    limit, source = generated_token_limit(generation)
    if needed <= limit:
        return []
    seen = {
        "where": f"generate() ({source})",
        "limit": limit,
        "needed": needed,
        "setting": f"model.generation_config.max_new_tokens = {needed}  # or more",
    }
    return [Finding(Kind.TRANSCRIPTS_CUT, seen)]


def _batch_findings(batch) -> list[Finding]:
    decoder_inputs, labels = batch.get("decoder_input_ids"), batch.get("labels")
    if decoder_inputs is None or labels is None:
        return []
    decoder_inputs, labels = torch.as_tensor(decoder_inputs), torch.as_tensor(labels)
    if decoder_inputs.shape != labels.shape:
        return []
    counted = labels != IGNORE_INDEX
    if bool((decoder_inputs[counted] == labels[counted]).all()):
        return [Finding(Kind.LABELS_NOT_SHIFTED)]
    return []


# --- the training arguments --------------------------------------------------------------------


def _training_args_findings(model, training_args, dataset_columns) -> list[Finding]:
    findings = []
    if getattr(training_args, "remove_unused_columns", False) and dataset_columns is not None:
        # Trainer._remove_unused_columns keeps forward's parameters and the label names
        kept = set(inspect.signature(model.forward).parameters) | {"label", "label_ids", "labels"}
        dropped = [column for column in dataset_columns if column not in kept]
        if dropped:
            findings.append(Finding(Kind.COLUMNS_REMOVED, {"columns": dropped}))
    layerdrop = max(
        getattr(model.config.encoder, "layerdrop", 0.0) or 0.0,
        getattr(model.config.decoder, "decoder_layerdrop", 0.0) or 0.0,
        getattr(model.config.decoder, "layerdrop", 0.0) or 0.0,
    )
    processes = getattr(training_args, "world_size", 1)
    if (
        processes > 1
        and layerdrop > 0
        and not getattr(training_args, "ddp_find_unused_parameters", None)
    ):
        findings.append(
            Finding(Kind.LAYERDROP_DDP, {"layerdrop": layerdrop, "processes": processes})
        )
    if (
        getattr(training_args, "predict_with_generate", False)
        and training_args.generation_max_length is None
    ):
        generation = model.generation_config
        if generation.max_new_tokens is None and generation.max_length is None:
            seen = {
                "where": "Seq2SeqTrainer's evaluation (predict_with_generate)",
                "limit": DEFAULT_NEW_TOKENS,
                "needed": "any length",
                "setting": "Seq2SeqTrainingArguments(..., generation_max_length=<longest target + 1>)",
            }
            findings.append(Finding(Kind.TRANSCRIPTS_CUT, seen))
    return findings


def doctor(
    model,
    tokenizer=None,
    labels=None,
    *,
    attention_mask=None,
    batch=None,
    sampling_rate=None,
    training_args=None,
    dataset_columns=None,
) -> list[Finding]:
    """Check a ``SpeechEncoderDecoderModel`` for the failure modes of chapter 7 that show before
    training. An empty list means none of them was found.

    Optional evidence, each enabling more checks: the ``tokenizer``; a batch of ``labels`` (or
    a whole collated ``batch``: labels, decoder_input_ids, input_values / input_features,
    attention_mask); the ``attention_mask`` you plan to pass; the audio's ``sampling_rate``;
    the ``Seq2SeqTrainingArguments`` and the training dataset's ``dataset_columns``.
    """
    batch = dict(batch or {})
    labels = labels if labels is not None else batch.get("labels")
    attention_mask = attention_mask if attention_mask is not None else batch.get("attention_mask")
    findings = _architecture_findings(model) + _special_token_findings(model)
    findings += _train_vs_generate_findings(model) + _encoder_findings(model)
    if tokenizer is not None:
        findings += _tokenizer_findings(model, tokenizer)
    findings += _sampling_rate_findings(sampling_rate)
    findings += _attention_mask_findings(model, attention_mask)
    findings += _clip_length_findings(model, batch, attention_mask)
    if labels is not None:
        findings += _label_findings(model, labels)
    findings += _batch_findings(batch)
    if training_args is not None:
        findings += _training_args_findings(model, training_args, dataset_columns)
    return findings


def caught_entries() -> list[int]:
    """The gallery entries ``doctor`` has a check for, in order."""
    return sorted({advice.entry for advice in ADVICE.values()})
