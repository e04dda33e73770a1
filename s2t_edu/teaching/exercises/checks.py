"""One ``check_<exercise>(student_fn)`` per exercise: hidden cases, reference, classic mistakes.

    from s2t_edu.teaching.exercises import check_shift_tokens_right
    check_shift_tokens_right(my_shift_tokens_right)   # shows ✓, or ✗ + the mistake + a hint

Each returns a ``CheckResult`` (``.passed``, ``.mistake``, ``.hint``); ``.require()`` raises when
it failed, which is what the graded cells of the exercise notebooks call.
"""

from __future__ import annotations

import torch
from torch import nn

from s2t_edu.config import compose_config
from s2t_edu.decoding.processors import top_p
from s2t_edu.frames import encoder_output_lengths
from s2t_edu.labels import shift_tokens_right
from s2t_edu.loss import seq2seq_loss
from s2t_edu.metrics import wer
from s2t_edu.projection import build_projection
from s2t_edu.teaching.exercises import cases, mistakes, references
from s2t_edu.teaching.exercises.result import CheckResult
from s2t_edu.teaching.exercises.runner import Exercise, check


def _as_list(output):
    return torch.as_tensor(output).tolist()


def _as_float(output) -> float:
    if isinstance(output, int | float):
        return float(output)
    return float(torch.as_tensor(output).reshape(()))


def _config_summary(config) -> dict:
    """What composition decides, as plain values (a config object does not compare usefully)."""
    return {
        "class": type(config).__name__,
        "encoder": config.encoder.model_type,
        "decoder": config.decoder.model_type,
        **{
            f"{part}.{flag}": bool(getattr(getattr(config, part), flag, False))
            for part in ("encoder", "decoder")
            for flag in ("is_decoder", "add_cross_attention")
        },
    }


def _projection_summary(layer):
    if layer is None:
        return None
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"expected an nn.Linear or None, got {type(layer).__name__}")
    return {"in_features": layer.in_features, "out_features": layer.out_features}


def _beam_summary(output):
    beams, scores = output
    return {"beams": [list(map(int, b)) for b in beams], "scores": _as_list(scores)}


EXERCISES = {
    "compose_config": Exercise(
        "compose_config",
        compose_config,
        cases.config_cases,
        mistakes.CONFIG_MISTAKES,
        _config_summary,
        mutation_hint="you changed the decoder config you were given (transformers' "
        "from_encoder_decoder_configs does too, which surprises anyone who reuses it): set the "
        "flags on copy.deepcopy(decoder_config)",
    ),
    "encoder_output_lengths": Exercise(
        "encoder_output_lengths",
        encoder_output_lengths,
        cases.length_cases,
        mistakes.LENGTH_MISTAKES,
        _as_list,
    ),
    "projection": Exercise(
        "projection",
        build_projection,
        cases.projection_cases,
        mistakes.PROJECTION_MISTAKES,
        _projection_summary,
    ),
    "make_labels": Exercise(
        "make_labels",
        references.make_labels,
        cases.labels_cases,
        mistakes.LABELS_MISTAKES,
        _as_list,
    ),
    "shift_tokens_right": Exercise(
        "shift_tokens_right",
        shift_tokens_right,
        cases.shift_cases,
        mistakes.SHIFT_MISTAKES,
        _as_list,
        mutation_hint=mistakes.SHIFT_MUTATION_HINT,
    ),
    "seq2seq_loss": Exercise(
        "seq2seq_loss",
        seq2seq_loss,
        cases.loss_cases,
        mistakes.LOSS_MISTAKES,
        _as_float,
    ),
    "greedy_decode": Exercise(
        "greedy_decode",
        references.greedy_loop,
        cases.greedy_cases,
        mistakes.GREEDY_MISTAKES,
        lambda out: [int(t) for t in torch.as_tensor(out).reshape(-1).tolist()],
        timeout_hint=mistakes.GREEDY_TIMEOUT_HINT,
    ),
    "beam_step": Exercise(
        "beam_step",
        references.beam_step,
        cases.beam_cases,
        mistakes.BEAM_MISTAKES,
        _beam_summary,
    ),
    "top_p": Exercise(
        "top_p",
        lambda logits, p: top_p(torch.as_tensor(logits).float(), p),
        cases.top_p_cases,
        mistakes.TOP_P_MISTAKES,
        _as_list,
    ),
    "wer": Exercise(
        "wer",
        lambda reference, hypothesis: wer(reference, hypothesis),
        cases.wer_cases,
        mistakes.WER_MISTAKES,
        _as_float,
    ),
}


def check_compose_config(fn) -> CheckResult:
    """``fn(encoder_config, decoder_config) -> SpeechEncoderDecoderConfig``."""
    return check(EXERCISES["compose_config"], fn)


def check_encoder_output_lengths(fn) -> CheckResult:
    """``fn(encoder_config, input_lengths) -> LongTensor`` of frame counts (wav2vec2 family)."""
    return check(EXERCISES["encoder_output_lengths"], fn)


def check_projection(fn) -> CheckResult:
    """``fn(config) -> nn.Linear | None``: the enc_to_dec_proj transformers would build."""
    return check(EXERCISES["projection"], fn)


def check_make_labels(fn) -> CheckResult:
    """``fn(token_lists, pad_token_id, eos_token_id, decoder_start_token_id) -> LongTensor``."""
    return check(EXERCISES["make_labels"], fn)


def check_shift_tokens_right(fn) -> CheckResult:
    """``fn(labels, pad_token_id, decoder_start_token_id) -> LongTensor`` (decoder inputs)."""
    return check(EXERCISES["shift_tokens_right"], fn)


def check_seq2seq_loss(fn) -> CheckResult:
    """``fn(logits, labels) -> scalar tensor``: mean cross-entropy ignoring -100."""
    return check(EXERCISES["seq2seq_loss"], fn)


def check_greedy_decode(fn) -> CheckResult:
    """``fn(next_token_logits, start_id, eos_id, max_new_tokens) -> list[int]``."""
    return check(EXERCISES["greedy_decode"], fn)


def check_beam_step(fn) -> CheckResult:
    """``fn(beam_tokens, beam_scores, logits, num_beams) -> (new_beam_tokens, new_scores)``."""
    return check(EXERCISES["beam_step"], fn)


def check_top_p(fn) -> CheckResult:
    """``fn(logits, p) -> logits`` with the tokens outside the nucleus set to -inf."""
    return check(EXERCISES["top_p"], fn)


def check_wer(fn) -> CheckResult:
    """``fn(reference, hypothesis) -> float``: the word error rate of one sentence pair."""
    return check(EXERCISES["wer"], fn)
