"""Labels and decoder inputs: teacher forcing in one shift.

During training the decoder reads the *correct* previous tokens (teacher forcing). So its input
at step t is the label at step t-1, and its first input is a start token:

    labels            =  [  the   cat   sat  </s>  -100  -100 ]
    decoder_input_ids =  [ <s>    the   cat   sat  </s>   pad ]

``-100`` marks positions the loss must ignore (padding). It is PyTorch's
``CrossEntropyLoss(ignore_index=-100)`` default; it is not a token, so it must become the pad
id before it reaches the embedding table.
"""

from __future__ import annotations

import operator

import torch

from s2t_edu.errors import S2TEduError

IGNORE_INDEX = -100  # torch.nn.CrossEntropyLoss's default ignore_index


def check_labels(labels) -> torch.LongTensor:
    """Return ``labels`` as a 2-D LongTensor, or raise an error that says how to fix them."""
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):  # ragged rows, text, None
            raise S2TEduError(
                "labels must be a rectangular table of token ids",
                "tokenize with padding=True and return_tensors='pt', then replace the padding by "
                "-100 (s2t_edu.pad_to_ignore_index)",
                seen=repr(labels)[:80],
            ) from None
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise S2TEduError(
            "labels must be integer token ids",
            "build them with the tokenizer (return_tensors='pt') or call labels.long()",
            seen=labels.dtype,
        )
    if labels.dim() != 2:
        raise S2TEduError(
            "labels must have shape (batch, target_length)",
            "for a single sentence use labels[None] (or unsqueeze(0))",
            seen=tuple(labels.shape),
        )
    if labels.shape[0] == 0 or labels.shape[1] == 0:
        raise S2TEduError(
            "labels hold no token (an empty batch, or rows of length 0)",
            "pass at least one sentence; every target ends with EOS, so it has at least one token",
            seen=tuple(labels.shape),
        )
    negative = (labels < 0) & (labels != IGNORE_INDEX)
    if bool(negative.any()):
        raise S2TEduError(
            f"labels contain negative ids; the only negative label allowed is {IGNORE_INDEX} "
            "(ignored by the loss)",
            f"mark padding with {IGNORE_INDEX} (s2t_edu.pad_to_ignore_index) and take every other "
            "id from the tokenizer",
            seen=labels[negative].unique()[:5].tolist(),
        )
    return labels.long()


# The one rule for the three special ids, for every decoder family the course covers:
#   start = [CLS] (BERT) or BOS (GPT-2, RoBERTa, BART: <s> / <|endoftext|>)
#   end   = EOS if the tokenizer has one (GPT-2, RoBERTa, BART), else [SEP] (BERT)
#   pad   = the pad token; GPT-2 has none, so EOS pads (labels mask padding with -100 anyway)
SPECIAL_TOKEN_SOURCES = {
    "decoder_start_token_id": "tokenizer.cls_token_id, else tokenizer.bos_token_id",
    "eos_token_id": "tokenizer.eos_token_id, else tokenizer.sep_token_id",
    "pad_token_id": "tokenizer.pad_token_id, else tokenizer.eos_token_id",
}
SPECIAL_ID_FIX = "s2t_edu.set_special_ids(model, tokenizer)"


def special_token_ids(tokenizer) -> dict[str, int]:
    """The decoder's start, EOS and pad ids from its tokenizer, by the rule above."""

    def first(*ids):
        return next((i for i in ids if i is not None), None)

    ids = {
        "decoder_start_token_id": first(tokenizer.cls_token_id, tokenizer.bos_token_id),
        "eos_token_id": first(tokenizer.eos_token_id, tokenizer.sep_token_id),
        "pad_token_id": first(tokenizer.pad_token_id, tokenizer.eos_token_id),
    }
    missing = [name for name, value in ids.items() if value is None]
    if missing:
        raise S2TEduError(
            f"the tokenizer has no token for {missing}",
            "set them by hand on model.config and model.generation_config "
            f"({'; '.join(SPECIAL_TOKEN_SOURCES[name] for name in missing)})",
            type(tokenizer).__name__,
        )
    return ids


def set_special_ids(model, tokenizer):
    """Write start, EOS and pad ids on ``model.config`` (read by training) and
    ``model.generation_config`` (read by ``generate``); returns ``model``.

    Both, because transformers keeps them apart: training reads ``model.config``, ``generate``
    reads ``model.generation_config``, and a value there wins over ``model.config`` — set only
    one of them and training and generation can start from different tokens (#14439).
    """
    for name, value in special_token_ids(tokenizer).items():
        setattr(model.config, name, value)
        setattr(model.generation_config, name, value)
    return model


def check_special_token_id(name: str, value) -> int:
    """Special ids are read from the config; None there is the #1 cause of confusing crashes."""
    source = SPECIAL_TOKEN_SOURCES.get(name, "the id from your decoder's tokenizer")
    if value is None:
        raise S2TEduError(
            f"{name} is not set",
            f"call {SPECIAL_ID_FIX} before training or generating (it uses {source})",
        )
    try:
        token_id = operator.index(value)  # ints, numpy ints, one-element integer tensors
    except TypeError:
        token_id = None
    if isinstance(value, bool) or token_id is None or token_id < 0:
        raise S2TEduError(
            f"{name} must be one token id: an int >= 0",
            f"use {SPECIAL_ID_FIX} (it uses {source})",
            seen=repr(value),
        )
    return token_id


def shift_tokens_right(labels, pad_token_id: int, decoder_start_token_id: int) -> torch.LongTensor:
    """``decoder_input_ids`` for teacher forcing: prepend the start token, drop the last label,
    and turn every ``-100`` into ``pad_token_id``."""
    labels = check_labels(labels)
    pad_token_id = check_special_token_id("pad_token_id", pad_token_id)
    decoder_start_token_id = check_special_token_id(
        "decoder_start_token_id", decoder_start_token_id
    )
    start = torch.full_like(labels[:, :1], decoder_start_token_id)
    shifted = torch.cat([start, labels[:, :-1]], dim=1)
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


def pad_to_ignore_index(token_ids, attention_mask) -> torch.LongTensor:
    """Labels from padded tokenizer output: every padded position becomes ``-100``.

    Use the attention mask, not ``== pad_token_id``: for GPT-2-style tokenizers pad and EOS are
    the same id, and the EOS we want the model to learn must stay.
    """
    token_ids, attention_mask = check_padded_tokens(token_ids, attention_mask)
    return token_ids.masked_fill(attention_mask == 0, IGNORE_INDEX).long()


def check_padded_tokens(token_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenizer output as two tensors of one shape: integer ids and a 0/1 mask."""
    token_ids, attention_mask = torch.as_tensor(token_ids), torch.as_tensor(attention_mask)
    if token_ids.is_floating_point() or token_ids.dtype == torch.bool:
        raise S2TEduError(
            "token_ids must be integer token ids",
            "pass tokenizer(texts, padding=True, return_tensors='pt').input_ids",
            seen=token_ids.dtype,
        )
    if token_ids.shape != attention_mask.shape:
        raise S2TEduError(
            "token_ids and attention_mask must have the same shape (batch, length)",
            "pass input_ids and attention_mask from the same tokenizer call",
            seen=f"token_ids {tuple(token_ids.shape)}, attention_mask {tuple(attention_mask.shape)}",
        )
    return token_ids, attention_mask
