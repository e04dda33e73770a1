"""One ``check_<exercise>(student_fn)`` per exercise: cases, reference, contract, mistakes.

    from s2t_edu.teaching.exercises import check_shift_tokens_right
    check_shift_tokens_right(my_shift_tokens_right)   # shows ✓, or ✗ + the mistake + a hint

Each returns a ``CheckResult`` (``.passed``, ``.mistake``, ``.hint``) for the practice cases
(``seed=PRACTICE_SEED``; pass another seed for other cases). Grading does not call these: it
runs the student's cells in a process of their own (grading.py) on cases of a secret seed.
"""

from __future__ import annotations

import torch
import transformers
from transformers import SpeechEncoderDecoderConfig, SpeechEncoderDecoderModel

from s2t_edu.config import compose_config
from s2t_edu.decoding.processors import top_p
from s2t_edu.frames import encoder_output_lengths, minimum_input_length
from s2t_edu.labels import shift_tokens_right
from s2t_edu.loss import seq2seq_loss
from s2t_edu.metrics import wer
from s2t_edu.model import speech_encoder_from_config
from s2t_edu.projection import build_projection
from s2t_edu.teaching.exercises import contracts, mistakes, references
from s2t_edu.teaching.exercises.cases import CASES, PRACTICE_SEED
from s2t_edu.teaching.exercises.result import CheckResult
from s2t_edu.teaching.exercises.runner import Exercise, check
from s2t_edu.teaching.exercises.values import plain

MAX_PROBE_PARAMETERS = 5_000_000  # the cases' configs are tiny; a far bigger model is not built


def model_runs(got: dict, case: dict) -> str | None:
    """:func:`build_and_run`, with transformers' warnings about odd configs kept quiet."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return build_and_run(got)
    finally:
        transformers.logging.set_verbosity(verbosity)


def build_and_run(got: dict) -> str | None:
    """Build ``SpeechEncoderDecoderModel`` from a described config and run one forward pass.

    Returns what went wrong, or None. The model is counted on the meta device first, so a config
    with the library's default sizes (100M+ parameters) is reported, not allocated.
    """
    try:
        config = SpeechEncoderDecoderConfig.from_dict(plain(got["dict"]))
        with torch.device("meta"):
            size = sum(p.numel() for p in _model(config).parameters())
    except Exception as error:
        return f"transformers cannot build a model from your config: {_first_line(error)}"
    if size > MAX_PROBE_PARAMETERS:
        return (
            f"a model built from your config would have {size:,} parameters, far more than the "
            "configs you were given describe"
        )
    try:
        torch.manual_seed(0)
        model = _model(config).eval()
        batch, name = 2, model.encoder.main_input_name
        if name == "input_features":
            frames = 2 * config.encoder.max_source_positions
            audio = torch.randn(batch, config.encoder.num_mel_bins, frames)
        else:
            strides = 1
            for stride in config.encoder.conv_stride:
                strides *= stride
            audio = torch.randn(batch, minimum_input_length(config.encoder) + 8 * strides)
        vocab = config.decoder.vocab_size
        tokens = torch.randint(0, vocab, (batch, 5))
        with torch.no_grad():
            logits = model(**{name: audio}, decoder_input_ids=tokens).logits
    except Exception as error:
        return (
            f"a model built from your config fails in its first forward pass: {_first_line(error)}"
        )
    if tuple(logits.shape) != (batch, 5, vocab):
        return f"a model built from your config gives logits of shape {tuple(logits.shape)}"
    return None


def _model(config) -> SpeechEncoderDecoderModel:
    # Whisper's AutoModel is encoder *and* decoder; the speech model uses the encoder alone.
    return SpeechEncoderDecoderModel(
        config=config, encoder=speech_encoder_from_config(config.encoder)
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}"


def explain_config(got: dict, expected: dict) -> str:
    """Which settings differ from the composed config -- with the student's values only."""
    if got.get("type") != "config":
        return ""
    differences = contracts.config_differences(got, expected)
    shown = []
    for key in differences[:8]:
        value = got["dict"]
        for part in key.split("."):
            value = value.get(part, "<missing>") if isinstance(value, dict) else "<missing>"
        shown.append(f"{key} (yours: {str(value)[:60]})")
    more = f" and {len(differences) - 8} more" if len(differences) > 8 else ""
    return "  your config differs from the composed one in: " + ", ".join(shown) + more


EXERCISES = {
    "compose_config": Exercise(
        "compose_config",
        compose_config,
        CASES["compose_config"],
        contracts.speech_config(),
        mistakes.CONFIG_MISTAKES,
        signature="my_compose_config(encoder_config, decoder_config) -> SpeechEncoderDecoderConfig",
        probe=model_runs,
        explain=explain_config,
        mutation_hint="you changed the decoder config you were given (transformers' "
        "from_encoder_decoder_configs does too, which surprises anyone who reuses it): set the "
        "flags on copy.deepcopy(decoder_config)",
    ),
    "encoder_output_lengths": Exercise(
        "encoder_output_lengths",
        encoder_output_lengths,
        CASES["encoder_output_lengths"],
        contracts.tensor("a LongTensor (torch.int64) of shape (batch,)", "one count per input"),
        mistakes.LENGTH_MISTAKES,
        signature="my_encoder_output_lengths(encoder_config, input_lengths) -> LongTensor",
    ),
    "projection": Exercise(
        "projection",
        build_projection,
        CASES["projection"],
        contracts.linear_or_none(),
        mistakes.PROJECTION_MISTAKES,
        signature="my_projection(config) -> nn.Linear | None",
    ),
    "make_labels": Exercise(
        "make_labels",
        references.make_labels,
        CASES["make_labels"],
        contracts.tensor(
            "a LongTensor (torch.int64) of shape (batch, longest + 1)",
            "one row per sentence, the longest sentence plus its EOS wide",
        ),
        mistakes.LABELS_MISTAKES,
        signature="my_make_labels(token_lists, pad_token_id, eos_token_id, "
        "decoder_start_token_id) -> LongTensor",
    ),
    "shift_tokens_right": Exercise(
        "shift_tokens_right",
        shift_tokens_right,
        CASES["shift_tokens_right"],
        contracts.tensor("a LongTensor (torch.int64) of the labels' shape", "the labels' shape"),
        mistakes.SHIFT_MISTAKES,
        signature="my_shift_tokens_right(labels, pad_token_id, decoder_start_token_id) "
        "-> LongTensor",
        mutation_hint=mistakes.SHIFT_MUTATION_HINT,
    ),
    "seq2seq_loss": Exercise(
        "seq2seq_loss",
        seq2seq_loss,
        CASES["seq2seq_loss"],
        contracts.tensor(
            "a scalar float32 tensor (shape ()) computed from the logits",
            "one number: the mean over every real token of the batch",
            needs_grad=True,
        ),
        mistakes.LOSS_MISTAKES,
        signature="my_seq2seq_loss(logits, labels) -> scalar tensor",
    ),
    "greedy_decode": Exercise(
        "greedy_decode",
        references.greedy_loop,
        CASES["greedy_decode"],
        contracts.int_list(),
        mistakes.GREEDY_MISTAKES,
        signature="my_greedy_decode(next_token_logits, start_id, eos_id, max_new_tokens) "
        "-> list[int]",
        timeout_hint=mistakes.GREEDY_TIMEOUT_HINT,
    ),
    "beam_step": Exercise(
        "beam_step",
        references.beam_step,
        CASES["beam_step"],
        contracts.beam_pair(),
        mistakes.BEAM_MISTAKES,
        signature="my_beam_step(beam_tokens, beam_scores, logits, num_beams) -> (beams, scores)",
    ),
    "top_p": Exercise(
        "top_p",
        lambda logits, p: top_p(logits, p),
        CASES["top_p"],
        contracts.tensor("a float32 tensor of the logits' shape", "the logits' shape"),
        mistakes.TOP_P_MISTAKES,
        signature="my_top_p(logits, p) -> tensor",
    ),
    "wer": Exercise(
        "wer",
        lambda reference, hypothesis: wer(reference, hypothesis),
        CASES["wer"],
        contracts.python_float(),
        mistakes.WER_MISTAKES,
        signature="my_wer(reference, hypothesis) -> float",
    ),
}
# Which check function grades which exercise (the graded cells call these by name).
CHECKS = {f"check_{name}": name for name in EXERCISES}


def check_compose_config(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(encoder_config, decoder_config) -> SpeechEncoderDecoderConfig``."""
    return check(EXERCISES["compose_config"], fn, seed)


def check_encoder_output_lengths(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(encoder_config, input_lengths) -> LongTensor`` of frame counts (wav2vec2 family)."""
    return check(EXERCISES["encoder_output_lengths"], fn, seed)


def check_projection(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(config) -> nn.Linear | None``: the enc_to_dec_proj transformers would build."""
    return check(EXERCISES["projection"], fn, seed)


def check_make_labels(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(token_lists, pad_token_id, eos_token_id, decoder_start_token_id) -> LongTensor``."""
    return check(EXERCISES["make_labels"], fn, seed)


def check_shift_tokens_right(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(labels, pad_token_id, decoder_start_token_id) -> LongTensor`` (decoder inputs)."""
    return check(EXERCISES["shift_tokens_right"], fn, seed)


def check_seq2seq_loss(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(logits, labels) -> scalar tensor``: mean cross-entropy ignoring -100."""
    return check(EXERCISES["seq2seq_loss"], fn, seed)


def check_greedy_decode(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(next_token_logits, start_id, eos_id, max_new_tokens) -> list[int]``."""
    return check(EXERCISES["greedy_decode"], fn, seed)


def check_beam_step(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(beam_tokens, beam_scores, logits, num_beams) -> (new_beam_tokens, new_scores)``."""
    return check(EXERCISES["beam_step"], fn, seed)


def check_top_p(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(logits, p) -> logits`` with the tokens outside the nucleus set to -inf."""
    return check(EXERCISES["top_p"], fn, seed)


def check_wer(fn, seed: int = PRACTICE_SEED) -> CheckResult:
    """``fn(reference, hypothesis) -> float``: the word error rate of one sentence pair."""
    return check(EXERCISES["wer"], fn, seed)
