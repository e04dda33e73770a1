"""The training loss: mean cross-entropy of the next token over non-ignored positions.

For each position with a real label y, the model pays ``-log p(y)``; positions labelled -100
cost nothing and do not count in the mean. With label smoothing eps the target is a mixture:
``(1-eps) * one_hot(y) + eps * uniform``, so the cost becomes
``(1-eps) * -log p(y) + eps * mean_over_vocab(-log p(v))`` (PyTorch's definition).

Computed in float32 whatever the logits' dtype: log-softmax in half precision over a 30k-word
vocabulary loses the small probabilities and can produce inf/NaN (speechbrain#1803).
"""

from __future__ import annotations

import torch

from s2t_edu.errors import S2TEduError
from s2t_edu.labels import IGNORE_INDEX, check_labels


def seq2seq_loss(logits: torch.Tensor, labels, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean token cross-entropy, equal to the loss ``SpeechEncoderDecoderModel`` returns."""
    labels = check_loss_inputs(logits, labels, label_smoothing)
    counted = labels != IGNORE_INDEX
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (batch, length, vocab)
    # Pick -log p(label) at every position first and drop the ignored ones after: selecting
    # rows of the (positions, vocab) table first would copy it, and its gradient, for nothing.
    safe_labels = labels.clamp(min=0)  # -100 is no index; those positions are dropped below
    nll = -log_probs.gather(-1, safe_labels[..., None]).squeeze(-1)  # (batch, length)
    if label_smoothing == 0.0:
        return nll[counted].mean()
    uniform_cost = -log_probs.mean(dim=-1)  # cross-entropy against the uniform distribution
    return ((1.0 - label_smoothing) * nll + label_smoothing * uniform_cost)[counted].mean()


def check_loss_inputs(logits: torch.Tensor, labels, label_smoothing: float) -> torch.LongTensor:
    """Return ``labels`` as a LongTensor on the logits' device, or say how to fix the inputs."""
    is_scores = isinstance(logits, torch.Tensor) and logits.is_floating_point()
    if not is_scores or logits.dim() != 3:
        # A classic slip: passing the predicted ids (argmax) instead of the scores.
        raise S2TEduError(
            "logits must be a float tensor (batch, length, vocab): one score per vocabulary entry",
            "pass the decoder's output .logits, not the argmax ids or probabilities of one step",
            seen=f"{type(logits).__name__} {getattr(logits, 'dtype', '')} "
            f"{tuple(getattr(logits, 'shape', ()))}",
        )
    labels = check_labels(labels).to(logits.device)
    if logits.shape[:2] != labels.shape:
        raise S2TEduError(
            "logits (batch, length, vocab) and labels (batch, length) disagree in batch or length",
            "compute the logits from decoder_input_ids = shift_tokens_right(labels, ...), "
            "which has the labels' shape",
            seen=(tuple(logits.shape), tuple(labels.shape)),
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise S2TEduError("label_smoothing must be in [0, 1)", "use e.g. 0.1", seen=label_smoothing)
    vocab_size = logits.shape[-1]
    counted = labels != IGNORE_INDEX
    if not counted.any():
        raise S2TEduError(
            "every label is -100, so there is no token to learn from (the loss would be NaN)",
            "check the collator: only padding positions should be replaced by -100",
            seen=f"labels of shape {tuple(labels.shape)}",
        )
    bad = labels[counted & ((labels < 0) | (labels >= vocab_size))]
    if bad.numel():
        raise S2TEduError(
            f"labels contain ids outside the decoder vocabulary [0, {vocab_size})",
            "use the decoder's own tokenizer, and -100 (not another negative number) for padding",
            seen=bad.unique()[:5].tolist(),
        )
    return labels
