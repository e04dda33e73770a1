"""The exercise checks: references pass, classic mistakes are named with the right hint.

Two kinds of wrong solutions are tested. The registered mistakes of mistakes.py must each be
recognised as themselves (so no two are indistinguishable on the hidden cases). And, for every
exercise, at least two wrong solutions written the way a student would write them -- different
code, same mistake -- must be recognised: that is what proves recognition works by behaviour,
not by matching our own code.
"""

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import SpeechEncoderDecoderConfig

from s2t_edu.metrics import cer
from s2t_edu.teaching.exercises import (
    EXERCISES,
    QUESTIONS,
    ExerciseFailed,
    check,
    check_beam_step,
    check_compose_config,
    check_concept,
    check_encoder_output_lengths,
    check_greedy_decode,
    check_make_labels,
    check_projection,
    check_seq2seq_loss,
    check_shift_tokens_right,
    check_top_p,
    check_wer,
)

# ---------------------------------------------------------------------------------------------
# References and registered mistakes


@pytest.mark.parametrize("name", EXERCISES)
def test_reference_scores_100_percent(name):
    result = check(EXERCISES[name], EXERCISES[name].reference)
    assert result.passed and result.cases_passed == result.cases_total > 0, str(result)
    assert result.score == 1.0
    assert result.require() is result


@pytest.mark.parametrize(
    "name, mistake",
    [(name, m) for name, ex in EXERCISES.items() for m in ex.mistakes],
    ids=lambda x: x if isinstance(x, str) else x.key,
)
def test_every_registered_mistake_is_recognised_as_itself(name, mistake):
    result = check(EXERCISES[name], mistake.wrong)
    assert not result.passed
    assert result.mistake == mistake.key, str(result)
    assert result.hint == mistake.hint


def test_every_exercise_knows_at_least_two_mistakes():
    assert all(len(ex.mistakes) >= 2 for ex in EXERCISES.values())


def test_hidden_cases_are_the_same_every_time():
    for exercise in EXERCISES.values():
        first, second = exercise.cases(), exercise.cases()
        assert repr(first) == repr(second)


# ---------------------------------------------------------------------------------------------
# Student-style solutions, right and wrong, one block per exercise


def assert_mistake(result, key, hint_words):
    assert not result.passed, "a wrong solution passed"
    assert result.mistake == key, str(result)
    for word in hint_words:
        assert word in result.hint, result.hint


def student_compose(encoder_config, decoder_config, cross=True, causal=True):
    decoder = decoder_config.__class__.from_dict(decoder_config.to_dict())
    decoder.is_decoder = causal
    decoder.add_cross_attention = cross
    return SpeechEncoderDecoderConfig(encoder=encoder_config.to_dict(), decoder=decoder.to_dict())


def test_compose_config():
    assert check_compose_config(student_compose).passed
    assert_mistake(
        check_compose_config(lambda e, d: student_compose(e, d, cross=False)),
        "no cross-attention",
        ["add_cross_attention"],
    )
    assert_mistake(
        check_compose_config(lambda e, d: student_compose(e, d, causal=False)),
        "not causal",
        ["is_decoder"],
    )

    def in_place(encoder_config, decoder_config):
        decoder_config.is_decoder = decoder_config.add_cross_attention = True
        return SpeechEncoderDecoderConfig.from_encoder_decoder_configs(
            encoder_config, decoder_config
        )

    assert_mistake(check_compose_config(in_place), "changes its input", ["deepcopy"])


def student_lengths(encoder_config, input_lengths, plus_one=True, adapter=True):
    out = []
    for length in torch.as_tensor(input_lengths).tolist():
        for k, s in zip(encoder_config.conv_kernel, encoder_config.conv_stride, strict=True):
            length = (length - k) // s + (1 if plus_one else 0)
        if adapter and encoder_config.add_adapter:
            for _ in range(encoder_config.num_adapter_layers):
                length = (length + 2 - encoder_config.adapter_kernel_size) // (
                    encoder_config.adapter_stride
                ) + 1
        out.append(max(length, 0))
    return torch.tensor(out)


def test_encoder_output_lengths():
    assert check_encoder_output_lengths(student_lengths).passed
    assert_mistake(
        check_encoder_output_lengths(lambda c, n: student_lengths(c, n, adapter=False)),
        "forgot the adapter",
        ["adapter"],
    )
    assert_mistake(
        check_encoder_output_lengths(lambda c, n: student_lengths(c, n, plus_one=False)),
        "off by one (no +1)",
        ["+ 1"],
    )


def student_projection(config, check_width="output"):
    enc = config.encoder
    width = (getattr(enc, "output_hidden_size", None) or enc.hidden_size) if check_width else 0
    if check_width == "hidden":
        width = enc.hidden_size
    if getattr(config.decoder, "cross_attention_hidden_size", None) is not None:
        return None
    if width == config.decoder.hidden_size:
        return None
    return nn.Linear(enc.hidden_size, config.decoder.hidden_size)


def test_projection():
    assert check_projection(student_projection).passed
    assert_mistake(
        check_projection(lambda c: student_projection(c, check_width="hidden")),
        "ignored the adapter's output width",
        ["output_hidden_size"],
    )
    assert_mistake(
        check_projection(lambda c: nn.Linear(c.encoder.hidden_size, c.decoder.hidden_size)),
        "always projects",
        ["None"],
    )


def student_labels(token_lists, pad_token_id, eos_token_id, decoder_start_token_id, how="right"):
    width = max(map(len, token_lists)) + 1
    labels = torch.full((len(token_lists), width), pad_token_id)
    mask = torch.zeros_like(labels)
    for row, tokens in enumerate(token_lists):
        ids = tokens + ([] if how == "no eos" else [eos_token_id])
        labels[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
    if how == "pad left":
        return labels[:, : width - (how == "no eos")]
    if how == "by id":
        return labels.masked_fill(labels == pad_token_id, -100)
    return labels.masked_fill(mask == 0, -100)


def test_make_labels():
    assert check_make_labels(student_labels).passed
    assert_mistake(
        check_make_labels(lambda *a: student_labels(*a, how="pad left")),
        "pad ids left in labels",
        ["-100"],
    )
    assert_mistake(
        check_make_labels(lambda *a: student_labels(*a, how="by id")),
        "EOS masked as padding",
        ["EOS"],
    )

    def no_eos(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
        width = max(map(len, token_lists))
        return torch.tensor([t + [-100] * (width - len(t)) for t in token_lists])

    assert_mistake(check_make_labels(no_eos), "labels without EOS", ["never learns to stop"])


def test_shift_tokens_right():
    def right(labels, pad_token_id, decoder_start_token_id):
        out = labels.new_zeros(labels.shape)
        out[:, 1:] = labels[:, :-1].clone()
        out[:, 0] = decoder_start_token_id
        out[out == -100] = pad_token_id
        return out

    assert check_shift_tokens_right(right).passed

    def keeps_minus_100(labels, pad_token_id, decoder_start_token_id):
        start = torch.full((labels.shape[0], 1), decoder_start_token_id)
        return torch.cat([start, labels[:, :-1]], dim=1)

    assert_mistake(
        check_shift_tokens_right(keeps_minus_100), "-100 left in decoder inputs", ["pad_token_id"]
    )

    def starts_with_pad(labels, pad_token_id, decoder_start_token_id):
        return right(labels, pad_token_id, pad_token_id)

    assert_mistake(
        check_shift_tokens_right(starts_with_pad),
        "wrong decoder start token",
        ["decoder_start_token_id"],
    )

    def in_place(labels, pad_token_id, decoder_start_token_id):
        labels[labels == -100] = pad_token_id
        start = torch.full((labels.shape[0], 1), decoder_start_token_id)
        return torch.cat([start, labels[:, :-1]], dim=1)

    assert_mistake(check_shift_tokens_right(in_place), "changes its input", ["in place"])


def test_seq2seq_loss():
    def right(logits, labels):
        return F.cross_entropy(logits.transpose(1, 2), labels)

    assert check_seq2seq_loss(right).passed

    def counts_padding(logits, labels):
        losses = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
        return losses.mean()  # ignored positions are 0 but still counted

    assert_mistake(check_seq2seq_loss(counts_padding), "-100 positions counted", ["-100"])

    def with_softmax(logits, labels):
        probs = logits.softmax(-1)
        return F.nll_loss(probs.flatten(0, 1), labels.flatten())

    assert_mistake(check_seq2seq_loss(with_softmax), "softmax instead of log-softmax", ["log"])

    def causal_lm_habit(logits, labels):
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())

    assert_mistake(check_seq2seq_loss(causal_lm_habit), "shifted twice", ["shift"])


def test_greedy_decode():
    def right(next_token_logits, start_id, eos_id, max_new_tokens):
        out = [start_id]
        while len(out) <= max_new_tokens:
            out.append(next_token_logits(out).argmax().item())
            if out[-1] == eos_id:
                return out
        return out

    assert check_greedy_decode(right).passed

    def no_eos_check(next_token_logits, start_id, eos_id, max_new_tokens):
        out = [start_id]
        for _ in range(max_new_tokens):
            out.append(int(next_token_logits(out).argmax()))
        return out

    assert_mistake(check_greedy_decode(no_eos_check), "never stops at EOS", ["eos_id"])

    def eos_dropped(next_token_logits, start_id, eos_id, max_new_tokens):
        out = [start_id]
        for _ in range(max_new_tokens):
            token = int(next_token_logits(out).argmax())
            if token == eos_id:
                break
            out.append(token)
        return out

    assert_mistake(check_greedy_decode(eos_dropped), "EOS not kept", ["append"])


def test_an_endless_loop_is_stopped_and_explained():
    def endless(next_token_logits, start_id, eos_id, max_new_tokens):
        out = [start_id]
        while out[-1] != -1:  # EOS of a model that never says it, and no max
            out.append(int(next_token_logits(out).argmax()))
        return out

    started = time.perf_counter()
    result = check_greedy_decode(endless)
    assert time.perf_counter() - started < 10
    assert_mistake(result, "never returns", ["never ended", "max_new_tokens"])


def test_beam_step():
    def right(beam_tokens, beam_scores, logits, num_beams):
        scores = (beam_scores.unsqueeze(1) + F.log_softmax(logits, dim=1)).flatten()
        best = scores.argsort(descending=True)[:num_beams]
        vocab = logits.shape[1]
        beams = [beam_tokens[i // vocab] + [i % vocab] for i in best.tolist()]
        return beams, scores[best]

    assert check_beam_step(right).passed

    def with_softmax(beam_tokens, beam_scores, logits, num_beams):
        scores = (beam_scores.unsqueeze(1) + logits.softmax(dim=1)).flatten()
        best = scores.argsort(descending=True)[:num_beams]
        vocab = logits.shape[1]
        return [beam_tokens[i // vocab] + [i % vocab] for i in best.tolist()], scores[best]

    assert_mistake(check_beam_step(with_softmax), "softmax instead of log-softmax", ["log"])

    def per_beam(beam_tokens, beam_scores, logits, num_beams):
        totals = beam_scores[:, None] + logits.log_softmax(-1)
        candidates = [
            (totals[b].max().item(), b, totals[b].argmax().item()) for b in range(num_beams)
        ]
        candidates.sort(reverse=True)
        return [beam_tokens[b] + [t] for _, b, t in candidates], torch.tensor(
            [s for s, _, _ in candidates]
        )

    assert_mistake(check_beam_step(per_beam), "best token per beam", ["flatten"])


def test_top_p():
    def right(logits, p):
        sorted_logits, order = logits.sort(descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove = cumulative > p
        remove[..., 1:] = remove[..., :-1].clone()  # keep the token that crosses p
        remove[..., 0] = False
        return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))

    assert check_top_p(right).passed

    def wrong_side(logits, p):
        sorted_logits, order = logits.sort(descending=True)
        remove = sorted_logits.softmax(-1).cumsum(-1) < p
        return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))

    assert_mistake(check_top_p(wrong_side), "kept the wrong side", ["tail"])

    def zeroed(logits, p):
        return right(logits, p).nan_to_num(neginf=0.0)

    assert_mistake(check_top_p(zeroed), "dropped tokens set to 0", ["-inf"])


def test_wer():
    def edit_distance(a, b):
        row = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            prev, row[0] = row[0], i
            for j, y in enumerate(b, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
        return row[-1]

    def right(reference, hypothesis):  # an empty reference divides by 1 (the exercise says so)
        return edit_distance(reference.split(), hypothesis.split()) / max(len(reference.split()), 1)

    assert check_wer(right).passed

    def by_hypothesis(reference, hypothesis):
        return edit_distance(reference.split(), hypothesis.split()) / max(
            len(hypothesis.split()), 1
        )

    assert_mistake(check_wer(by_hypothesis), "normalised by the hypothesis length", ["reference"])

    def zipped(reference, hypothesis):
        r, h = reference.split(), hypothesis.split()
        errors = sum(a != b for a, b in zip(r, h, strict=False)) + abs(len(r) - len(h))
        return errors / max(len(r), 1)

    assert_mistake(check_wer(zipped), "word-by-word comparison", ["align"])


# ---------------------------------------------------------------------------------------------
# What every check does with bad submissions


def test_a_crash_is_a_failed_check_with_the_exception_shown():
    def crashes(reference, hypothesis):
        return 1 / 0

    result = check_wer(crashes)
    assert not result.passed and result.mistake == "crashes"
    assert "ZeroDivisionError" in result.hint and "1 / 0" in result.hint


def test_not_implemented_yet_says_so():
    def todo(reference, hypothesis):
        raise NotImplementedError()

    result = check_wer(todo)
    assert result.mistake == "not implemented"
    assert result.cases_total == len(EXERCISES["wer"].hidden()[0]) and result.cases_passed == 0


def test_passing_a_call_instead_of_the_function():
    result = check_wer(0.5)
    assert not result.passed and "without calling it" in result.hint


def test_require_raises_with_the_hint():
    with pytest.raises(ExerciseFailed, match="Hint: WER counts"):
        check_wer(cer).require()


def test_result_shows_in_jupyter():
    html = check_wer(lambda reference, hypothesis: 1.0)._repr_html_()
    assert "✗ wer" in html and "Hint:" in html


def test_an_unknown_wrong_answer_gets_the_failing_case():
    result = check_wer(lambda reference, hypothesis: math.pi)
    assert result.mistake == "" and "First failing case" in result.detail


@pytest.mark.parametrize("key", QUESTIONS)
def test_concept_questions(key):
    question = QUESTIONS[key]
    assert check_concept(key, question.answer).passed
    for option in question.options:
        if option != question.answer:
            result = check_concept(key, option.upper())
            assert not result.passed and result.hint == question.why[option]
    assert "one of" in check_concept(key, "").hint


@pytest.mark.parametrize("key", QUESTIONS)
def test_concept_answers_in_every_obvious_spelling(key):
    letter = QUESTIONS[key].answer
    for spelling in (letter, f"({letter})", letter.upper(), f" {letter.upper()}) ", f"{letter}."):
        assert check_concept(key, spelling).passed, spelling
    wrong = next(option for option in QUESTIONS[key].options if option != letter)
    for spelling in (f"({wrong})", wrong.upper()):
        result = check_concept(key, spelling)
        assert not result.passed and result.mistake == f"chose ({wrong})"
    for not_an_answer in (f"{letter}{letter}", "e", 3, None):
        assert check_concept(key, not_an_answer).mistake == "no answer"
