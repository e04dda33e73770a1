"""``doctor``: the misconfigurations people hit most, found before they cost a training run.

Each check mirrors a recurring report in transformers' issue tracker; each finding says what
is wrong and the one-line fix. ``doctor`` never changes the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from s2t_edu.labels import IGNORE_INDEX, SPECIAL_ID_FIX, SPECIAL_TOKEN_SOURCES, check_labels


@dataclass(frozen=True)
class Finding:
    """One problem: a short code, what is wrong, and how to fix it."""

    code: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.problem}\n    fix: {self.fix}"


def _special_token_findings(model) -> list[Finding]:
    findings = []
    for name, source in SPECIAL_TOKEN_SOURCES.items():
        if getattr(model.config, name, None) is None:
            findings.append(
                Finding(
                    f"missing-{name.removesuffix('_token_id').replace('_', '-')}",
                    f"model.config.{name} is not set: training (labels) or generate() will fail "
                    "(transformers#18343)",
                    f"{SPECIAL_ID_FIX}  # {name} = {source}",
                )
            )
    return findings


def _train_vs_generate_findings(model) -> list[Finding]:
    """#14439: training shifts labels with config.decoder_start_token_id, generate starts with
    generation_config's -- if they differ, the model is asked to continue a prefix it never saw."""
    generation = getattr(model, "generation_config", None)
    if generation is None:
        return []
    findings = []
    for name in ("decoder_start_token_id", "eos_token_id", "pad_token_id"):
        trained, generated = getattr(model.config, name, None), getattr(generation, name, None)
        if trained is not None and generated is not None and trained != generated:
            findings.append(
                Finding(
                    f"{name.removesuffix('_token_id').replace('_', '-')}-differs",
                    f"{name} is {trained} for training but {generated} for generate() (transformers#14439)",
                    f"model.generation_config.{name} = model.config.{name}  # or {SPECIAL_ID_FIX}",
                )
            )
    return findings


def _label_findings(model, labels) -> list[Finding]:
    labels = check_labels(labels)
    pad, eos = (
        getattr(model.config, "pad_token_id", None),
        getattr(model.config, "eos_token_id", None),
    )
    findings = []
    if pad is not None and pad != eos and bool((labels == pad).any()):
        findings.append(
            Finding(
                "pad-in-labels",
                f"labels contain the pad id {pad}: the loss trains the model to predict padding, and it "
                "learns to repeat tokens instead of stopping (transformers#7896)",
                "labels = labels.masked_fill(attention_mask == 0, -100)  # s2t_edu.labels.pad_to_ignore_index",
            )
        )
    if eos is not None:
        last_real = _last_real_label(labels)
        if bool((last_real != eos).any()):
            rows = (last_real != eos).nonzero().flatten().tolist()
            findings.append(
                Finding(
                    "labels-without-eos",
                    f"label rows {rows[:5]} do not end with eos_token_id={eos}: the model never learns to "
                    "stop and generation runs to max_new_tokens (GPT-2 tokenizers add no EOS)",
                    "append tokenizer.eos_token_id to each target before padding (s2t_edu's collator does)",
                )
            )
    return findings


def _last_real_label(labels: torch.Tensor) -> torch.Tensor:
    """The last non -100 label of each row."""
    counted = labels != IGNORE_INDEX
    # cumsum stops growing after the last counted label; argmax returns its first (= that) position
    last_index = counted.long().cumsum(-1).argmax(-1)
    return labels.gather(1, last_index[:, None]).squeeze(1)


def _architecture_findings(model, attention_mask) -> list[Finding]:
    findings = []
    decoder_config = model.config.decoder
    has_cross = any(
        "crossattention" in n or "encoder_attn" in n for n, _ in model.decoder.named_modules()
    )
    if not getattr(decoder_config, "add_cross_attention", False) or not has_cross:
        findings.append(
            Finding(
                "no-cross-attention",
                "the decoder has no cross-attention layers, so it cannot read the audio: "
                "transformers builds the model, but its first forward pass raises ValueError "
                "('... has to be instantiated with cross-attention layers by setting "
                "`config.add_cross_attention=True`')",
                "compose with s2t_edu.compose_config / from_encoder_decoder_pretrained, which set "
                "is_decoder=True and add_cross_attention=True before the decoder is built",
            )
        )
    return findings + _group_norm_findings(model, attention_mask)


def _group_norm_findings(model, attention_mask) -> list[Finding]:
    findings = []
    encoder_config = model.config.encoder
    if getattr(encoder_config, "feat_extract_norm", None) == "group" and attention_mask is not None:
        findings.append(
            Finding(
                "group-norm-attention-mask",
                "this wav2vec2-style encoder uses group norm in its feature extractor (like "
                "wav2vec2-base), which was trained on zero-padded audio without an attention mask; "
                "passing one changes its outputs (transformers PR #10117)",
                "Wav2Vec2FeatureExtractor(..., return_attention_mask=False) and call the model "
                "without attention_mask",
            )
        )
    return findings


def _tokenizer_findings(model, tokenizer) -> list[Finding]:
    findings = []
    vocab_size = model.config.decoder.vocab_size
    if len(tokenizer) > vocab_size:
        findings.append(
            Finding(
                "vocab-mismatch",
                f"the tokenizer has {len(tokenizer)} tokens but the decoder's vocabulary has {vocab_size}: "
                "ids past the end crash the embedding lookup",
                "use the decoder's own tokenizer, or model.decoder.resize_token_embeddings(len(tokenizer))",
            )
        )
    if tokenizer.pad_token_id is None:
        findings.append(
            Finding(
                "tokenizer-without-pad",
                "the tokenizer has no pad token, so batches of different lengths cannot be padded",
                "tokenizer.pad_token = tokenizer.eos_token  # GPT-2 style",
            )
        )
    elif getattr(model.config, "pad_token_id", None) not in (None, tokenizer.pad_token_id):
        findings.append(
            Finding(
                "pad-id-mismatch",
                f"model.config.pad_token_id={model.config.pad_token_id} but the tokenizer pads with "
                f"{tokenizer.pad_token_id}",
                SPECIAL_ID_FIX,
            )
        )
    return findings


def doctor(model, tokenizer=None, labels=None, *, attention_mask=None) -> list[Finding]:
    """Check a ``SpeechEncoderDecoderModel`` (and optionally its tokenizer, a batch of labels and
    the attention mask you plan to pass) for the classic misconfigurations. Empty list = healthy."""
    findings = _special_token_findings(model) + _train_vs_generate_findings(model)
    findings += _architecture_findings(model, attention_mask)
    if tokenizer is not None:
        findings += _tokenizer_findings(model, tokenizer)
    if labels is not None:
        findings += _label_findings(model, labels)
    return findings
