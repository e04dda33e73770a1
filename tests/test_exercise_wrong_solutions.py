"""Plausible wrong solutions fail; independently written right solutions pass -- on any seed.

Issue 18's adversarial student: for every exercise, wrong solutions written the way a student
would write them (the wrong type or dtype, an edge case missed, the notebook's toy ids
hard-coded, an approximate algorithm) must fail, and at least two right solutions written
differently (a loop, a vectorised version) must pass. Grading draws its hidden cases from a
seed the student never sees, so each solution is tried on the practice seed *and* on other
seeds: a wrong solution that slips through one draw of cases would pass for some students.
"""

from __future__ import annotations

import copy
import difflib
import fractions
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, SpeechEncoderDecoderConfig

from s2t_edu.teaching.exercises import EXERCISES, PRACTICE_SEED, check

SEEDS = (PRACTICE_SEED, 1, 2, 31337, 2**62 + 5)

# --- compose_config ---------------------------------------------------------------------------


def compose_deepcopy(encoder_config, decoder_config):
    decoder = copy.deepcopy(decoder_config)
    decoder.is_decoder = True
    decoder.add_cross_attention = True
    return SpeechEncoderDecoderConfig(encoder=encoder_config.to_dict(), decoder=decoder.to_dict())


def compose_from_dicts(encoder_config, decoder_config):
    settings = decoder_config.to_dict() | {"is_decoder": True, "add_cross_attention": True}
    return SpeechEncoderDecoderConfig.from_encoder_decoder_configs(
        type(encoder_config).from_dict(encoder_config.to_dict()),
        type(decoder_config).from_dict(settings),
    )


def compose_rebuilt(encoder_config, decoder_config):  # the decoder's sizes are lost
    decoder = type(decoder_config)(is_decoder=True, add_cross_attention=True)
    return SpeechEncoderDecoderConfig(encoder=encoder_config.to_dict(), decoder=decoder.to_dict())


def compose_bert_copy(encoder_config, decoder_config):  # copies two sizes into a BERT config
    decoder = BertConfig(
        hidden_size=decoder_config.hidden_size,
        vocab_size=decoder_config.vocab_size,
        is_decoder=True,
        add_cross_attention=True,
    )
    return SpeechEncoderDecoderConfig(encoder=encoder_config.to_dict(), decoder=decoder.to_dict())


def compose_cross_width(encoder_config, decoder_config):  # no projection gets built
    decoder = copy.deepcopy(decoder_config)
    decoder.is_decoder = decoder.add_cross_attention = True
    decoder.cross_attention_hidden_size = encoder_config.hidden_size
    return SpeechEncoderDecoderConfig(encoder=encoder_config.to_dict(), decoder=decoder.to_dict())


def compose_as_dict(encoder_config, decoder_config):
    return {"encoder": encoder_config, "decoder": compose_deepcopy(encoder_config, decoder_config)}


def compose_adapter_on(encoder_config, decoder_config):  # "the adapter connects them"
    encoder = copy.deepcopy(encoder_config)
    encoder.add_adapter = True
    return compose_deepcopy(encoder, decoder_config)


def compose_encoder_decoder_flag(encoder_config, decoder_config):
    decoder = copy.deepcopy(decoder_config)
    decoder.is_decoder = decoder.add_cross_attention = decoder.is_encoder_decoder = True
    return SpeechEncoderDecoderConfig(encoder=encoder_config.to_dict(), decoder=decoder.to_dict())


# --- encoder_output_lengths -------------------------------------------------------------------


def layers_of(config):
    layers = [(k, s, 0) for k, s in zip(config.conv_kernel, config.conv_stride, strict=True)]
    if config.add_adapter:
        layers += [(config.adapter_kernel_size, config.adapter_stride, 1)] * (
            config.num_adapter_layers
        )
    return layers


def lengths_vectorised(encoder_config, input_lengths):
    lengths = input_lengths.clone()
    for kernel, stride, padding in layers_of(encoder_config):
        lengths = (lengths + 2 * padding - kernel) // stride + 1
    return lengths.clamp(min=0)


def lengths_loop_ceil(encoder_config, input_lengths):
    out = []
    for length in input_lengths.tolist():
        for kernel, stride, padding in layers_of(encoder_config):
            length = max(math.ceil((length + 2 * padding - kernel + 1) / stride), 0)
        out.append(length)
    return torch.tensor(out, dtype=torch.long)


def lengths_float(encoder_config, input_lengths):
    lengths = input_lengths.float()
    for kernel, stride, padding in layers_of(encoder_config):
        lengths = torch.floor((lengths + 2 * padding - kernel) / stride) + 1
    return lengths.clamp(min=0)


def lengths_list(encoder_config, input_lengths):
    return lengths_vectorised(encoder_config, input_lengths).tolist()


def lengths_adapter_kernel_3(encoder_config, input_lengths):  # transformers' own formula
    lengths = input_lengths.clone()
    for kernel, stride, padding in layers_of(encoder_config):
        if padding:
            lengths = (lengths - 1) // stride + 1
        else:
            lengths = (lengths - kernel) // stride + 1
    return lengths.clamp(min=0)


def lengths_int_truncation(encoder_config, input_lengths):
    out = []
    for length in input_lengths.tolist():
        for kernel, stride, padding in layers_of(encoder_config):
            length = int((length + 2 * padding - kernel) / stride) + 1
        out.append(max(length, 0))
    return torch.tensor(out)


def lengths_one_adapter_layer(encoder_config, input_lengths):
    lengths = input_lengths.clone()
    for kernel, stride, padding in set(layers_of(encoder_config)):
        lengths = (lengths + 2 * padding - kernel) // stride + 1
    return lengths.clamp(min=0)


def lengths_adapter_always(encoder_config, input_lengths):  # add_adapter=False not read
    config = copy.deepcopy(encoder_config)
    config.add_adapter = config.num_adapter_layers > 0 and hasattr(config, "adapter_stride")
    return lengths_vectorised(config, input_lengths)


def lengths_int32(encoder_config, input_lengths):
    return lengths_vectorised(encoder_config, input_lengths).int()


# --- projection -------------------------------------------------------------------------------


def projection_if(config):
    encoder_width = getattr(config.encoder, "output_hidden_size", None) or (
        config.encoder.hidden_size
    )
    if getattr(config.decoder, "cross_attention_hidden_size", None) is not None:
        return None
    if encoder_width == config.decoder.hidden_size:
        return None
    return nn.Linear(config.encoder.hidden_size, config.decoder.hidden_size)


def projection_rules(config):
    needed = (
        config.decoder.to_dict().get("cross_attention_hidden_size") is None
        and (config.encoder.output_hidden_size if config.encoder.add_adapter else None)
        not in (config.decoder.hidden_size,)
        and config.encoder.hidden_size != config.decoder.hidden_size
    ) or (
        config.encoder.add_adapter
        and config.encoder.output_hidden_size != config.decoder.hidden_size
        and config.decoder.to_dict().get("cross_attention_hidden_size") is None
    )
    width_in, width_out = config.encoder.hidden_size, config.decoder.hidden_size
    return nn.Linear(width_in, width_out, bias=True) if needed else None


def projection_no_bias(config):
    linear = projection_if(config)
    return None if linear is None else nn.Linear(*linear.weight.shape[::-1], bias=False)


def projection_double(config):
    linear = projection_if(config)
    return None if linear is None else linear.double()


def projection_weight(config):
    linear = projection_if(config)
    return None if linear is None else linear.weight


def projection_identity(config):
    return projection_if(config) or nn.Identity()


def projection_sequential(config):
    linear = projection_if(config)
    return None if linear is None else nn.Sequential(linear)


def projection_hard_coded(config):  # the sizes of the notebook's question
    return None if projection_if(config) is None else nn.Linear(768, 384)


# --- make_labels ------------------------------------------------------------------------------


def labels_loop(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    width = 1 + max(len(tokens) for tokens in token_lists)
    labels = torch.full((len(token_lists), width), -100, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        for column, token in enumerate([*tokens, eos_token_id]):
            labels[row, column] = token
    return labels


def labels_pad_sequence(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    rows = [torch.tensor([*tokens, eos_token_id], dtype=torch.long) for tokens in token_lists]
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=-100)


def labels_float(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    return labels_loop(token_lists, pad_token_id, eos_token_id, decoder_start_token_id).float()


def labels_nested_list(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    return labels_loop(token_lists, pad_token_id, eos_token_id, decoder_start_token_id).tolist()


def labels_zero_is_padding(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    width = 1 + max(len(tokens) for tokens in token_lists)
    rows = [[*tokens, eos_token_id] + [0] * (width - len(tokens) - 1) for tokens in token_lists]
    labels = torch.tensor(rows)
    return labels.masked_fill(labels == 0, -100)  # "mask = labels > 0"


def labels_eos_after_padding(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    width = max(len(tokens) for tokens in token_lists)
    rows = [[*tokens] + [-100] * (width - len(tokens)) + [eos_token_id] for tokens in token_lists]
    return torch.tensor(rows)


def labels_toy_ids(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    return labels_loop(token_lists, 0, 2, 1)  # the ids of a BERT-style toy vocabulary


def labels_cat_per_row(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    rows = [
        torch.cat([torch.tensor(tokens), torch.tensor([eos_token_id])]) for tokens in token_lists
    ]
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=-100)


def labels_first_row_width(token_lists, pad_token_id, eos_token_id, decoder_start_token_id):
    width = len(token_lists[0]) + 1
    rows = [([*tokens, eos_token_id] + [-100] * width)[:width] for tokens in token_lists]
    return torch.tensor(rows)


# --- shift_tokens_right -----------------------------------------------------------------------


def shift_roll(labels, pad_token_id, decoder_start_token_id):
    shifted = labels.roll(1, dims=1)
    shifted[:, 0] = decoder_start_token_id
    return torch.where(shifted == -100, torch.full_like(shifted, pad_token_id), shifted)


def shift_loop(labels, pad_token_id, decoder_start_token_id):
    rows = []
    for row in labels.tolist():
        inputs = [decoder_start_token_id, *row[:-1]]
        rows.append([pad_token_id if token == -100 else token for token in inputs])
    return torch.tensor(rows, dtype=torch.long)


def shift_float(labels, pad_token_id, decoder_start_token_id):
    shifted = torch.zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def shift_positive_is_token(labels, pad_token_id, decoder_start_token_id):
    shifted = shift_roll(labels.masked_fill(labels == -100, 0), 0, decoder_start_token_id)
    return torch.where(shifted > 0, shifted, pad_token_id).masked_fill(
        torch.arange(labels.shape[1]) == 0, decoder_start_token_id
    )


def shift_list(labels, pad_token_id, decoder_start_token_id):
    return shift_roll(labels, pad_token_id, decoder_start_token_id).tolist()


def shift_pad_zero(labels, pad_token_id, decoder_start_token_id):  # BERT's pad id hard-coded
    return shift_roll(labels, 0, decoder_start_token_id)


def shift_int32(labels, pad_token_id, decoder_start_token_id):
    return shift_roll(labels, pad_token_id, decoder_start_token_id).to(torch.int32)


def shift_toy_start(labels, pad_token_id, decoder_start_token_id):
    return shift_roll(labels, pad_token_id, 1)


# --- seq2seq_loss -----------------------------------------------------------------------------


def loss_cross_entropy(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def loss_by_hand(logits, labels):
    log_probs = logits.log_softmax(-1)
    total, count = logits.new_zeros(()), 0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if labels[b, t] != -100:
                total = total - log_probs[b, t, labels[b, t]]
                count += 1
    return total / count


def loss_per_token(logits, labels):
    return F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")


def loss_item(logits, labels):
    return loss_cross_entropy(logits, labels).item()


def loss_rewrapped(logits, labels):
    return torch.tensor(loss_cross_entropy(logits, labels).item())


def loss_padding_as_class_0(logits, labels):
    return F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0))


def loss_double(logits, labels):
    return loss_cross_entropy(logits.double(), labels)


def loss_per_batch_row(logits, labels):
    losses = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    return losses.sum() / labels.shape[0]


def loss_label_smoothing(logits, labels):
    return F.cross_entropy(logits.transpose(1, 2), labels, label_smoothing=0.1)


# --- greedy_decode ----------------------------------------------------------------------------


def greedy_for(next_token_logits, start_id, eos_id, max_new_tokens):
    tokens = [start_id]
    for _ in range(max_new_tokens):
        tokens.append(int(next_token_logits(tokens).argmax()))
        if tokens[-1] == eos_id:
            break
    return tokens


def greedy_while(next_token_logits, start_id, eos_id, max_new_tokens):
    tokens, new = [start_id], 0
    while new < max_new_tokens:
        scores = next_token_logits(list(tokens))
        token = max(range(len(scores)), key=lambda i: scores[i].item())
        tokens, new = tokens + [token], new + 1
        if token == eos_id:
            return tokens
    return tokens


def greedy_toy_ids(next_token_logits, start_id, eos_id, max_new_tokens):
    return greedy_for(next_token_logits, 1, 2, max_new_tokens)  # the notebook's toy ids


def greedy_until_last_is_eos(next_token_logits, start_id, eos_id, max_new_tokens):
    tokens = [start_id]
    while tokens[-1] != eos_id and len(tokens) <= max_new_tokens:
        tokens.append(int(next_token_logits(tokens).argmax()))
    return tokens


def greedy_tensor(next_token_logits, start_id, eos_id, max_new_tokens):
    return torch.tensor(greedy_for(next_token_logits, start_id, eos_id, max_new_tokens))


def greedy_tensor_items(next_token_logits, start_id, eos_id, max_new_tokens):
    tokens = [start_id]
    for _ in range(max_new_tokens):
        tokens.append(next_token_logits(tokens).argmax())
        if tokens[-1] == eos_id:
            break
    return tokens


def greedy_total_length(next_token_logits, start_id, eos_id, max_new_tokens):
    tokens = [start_id]
    while len(tokens) < max_new_tokens:  # max_new_tokens read as the total length
        tokens.append(int(next_token_logits(tokens).argmax()))
        if tokens[-1] == eos_id:
            break
    return tokens


def greedy_at_least_one(next_token_logits, start_id, eos_id, max_new_tokens):
    tokens = [start_id]
    while True:  # do ... while: one token even when max_new_tokens is 0
        tokens.append(int(next_token_logits(tokens).argmax()))
        if tokens[-1] == eos_id or len(tokens) > max_new_tokens:
            return tokens


def greedy_without_start(next_token_logits, start_id, eos_id, max_new_tokens):
    return greedy_for(next_token_logits, start_id, eos_id, max_new_tokens)[1:]


# --- beam_step --------------------------------------------------------------------------------


def beam_topk(beam_tokens, beam_scores, logits, num_beams):
    vocab = logits.shape[-1]
    totals = beam_scores[:, None] + torch.log_softmax(logits, dim=-1)
    scores, flat = torch.topk(totals.flatten(), num_beams)
    return [beam_tokens[i // vocab] + [i % vocab] for i in flat.tolist()], scores


def beam_sorted_candidates(beam_tokens, beam_scores, logits, num_beams):
    log_probs = logits - logits.logsumexp(-1, keepdim=True)
    candidates = []
    for b in range(len(beam_tokens)):
        for t in range(logits.shape[1]):
            candidates.append((beam_scores[b] + log_probs[b, t], b, t))
    candidates.sort(key=lambda c: -c[0].item())
    best = candidates[:num_beams]
    return [beam_tokens[b] + [t] for _, b, t in best], torch.stack([s for s, _, _ in best])


def beam_scores_list(beam_tokens, beam_scores, logits, num_beams):
    beams, scores = beam_topk(beam_tokens, beam_scores, logits, num_beams)
    return beams, scores.tolist()


def beam_double(beam_tokens, beam_scores, logits, num_beams):
    beams, scores = beam_topk(beam_tokens, beam_scores, logits, num_beams)
    return beams, scores.double()


def beam_tensor_beams(beam_tokens, beam_scores, logits, num_beams):
    beams, scores = beam_topk(beam_tokens, beam_scores, logits, num_beams)
    return torch.tensor(beams), scores


def beam_swapped(beam_tokens, beam_scores, logits, num_beams):
    beams, scores = beam_topk(beam_tokens, beam_scores, logits, num_beams)
    return scores, beams


def beam_unsorted(beam_tokens, beam_scores, logits, num_beams):
    vocab = logits.shape[-1]
    totals = beam_scores[:, None] + torch.log_softmax(logits, dim=-1)
    scores, flat = torch.topk(totals.flatten(), num_beams)
    order = flat.argsort()  # "in vocabulary order"
    flat, scores = flat[order], scores[order]
    return [beam_tokens[i // vocab] + [i % vocab] for i in flat.tolist()], scores


def beam_first_beam_only(beam_tokens, beam_scores, logits, num_beams):
    scores, tokens = torch.topk(beam_scores[0] + logits[0].log_softmax(-1), num_beams)
    return [beam_tokens[0] + [t] for t in tokens.tolist()], scores


# --- top_p ------------------------------------------------------------------------------------


def top_p_sorted(logits, p):
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = sorted_logits.softmax(dim=-1)
    drop_sorted = probs.cumsum(dim=-1) - probs >= p
    return logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))


def top_p_loop(logits, p):
    out = logits.clone()
    for row in range(logits.shape[0]):
        probs = logits[row].softmax(-1).tolist()
        kept, mass = set(), 0.0
        for index in sorted(range(len(probs)), key=lambda i: -probs[i]):
            if mass >= p:
                break
            kept.add(index)
            mass += probs[index]
        for index in range(len(probs)):
            if index not in kept:
                out[row, index] = float("-inf")
    return out


def top_p_probabilities(logits, p):
    probs = logits.softmax(-1)
    return top_p_sorted(logits, p).softmax(-1).where(top_p_sorted(logits, p) > -math.inf, probs * 0)


def top_p_double(logits, p):
    return top_p_sorted(logits.double(), p)


def top_p_large_negative(logits, p):
    return top_p_sorted(logits, p).clamp(min=-1e9)


def top_p_in_place(logits, p):
    mask = top_p_sorted(logits, p) == -math.inf
    logits[mask] = float("-inf")
    return logits


def top_p_flattened(logits, p):
    return top_p_sorted(logits.reshape(1, -1), p).reshape(logits.shape)


def top_p_first_row(logits, p):
    return top_p_sorted(logits[:1], p).expand_as(logits).clone()


# --- wer --------------------------------------------------------------------------------------


def edit_distance(a, b, substitution=1):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (x != y) * substitution),
            )
    return row[-1]


def wer_rows(reference, hypothesis):
    ref, hyp = reference.split(), hypothesis.split()
    return edit_distance(ref, hyp) / max(len(ref), 1)


def wer_recursive(reference, hypothesis):
    ref, hyp = tuple(reference.split()), tuple(hypothesis.split())
    memo = {}

    def distance(i, j):
        if (i, j) not in memo:
            if i == 0 or j == 0:
                memo[i, j] = i + j
            else:
                memo[i, j] = min(
                    distance(i - 1, j) + 1,
                    distance(i, j - 1) + 1,
                    distance(i - 1, j - 1) + (ref[i - 1] != hyp[j - 1]),
                )
        return memo[i, j]

    return float(distance(len(ref), len(hyp))) / (len(ref) or 1)


def wer_single_spaces(reference, hypothesis):
    ref, hyp = reference.split(" "), hypothesis.split(" ")
    return edit_distance(ref, hyp) / max(len(ref), 1)


def wer_lowercase(reference, hypothesis):
    return wer_rows(reference.lower(), hypothesis.lower())


def wer_difflib(reference, hypothesis):
    ref, hyp = reference.split(), hypothesis.split()
    errors = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=ref, b=hyp).get_opcodes():
        if tag != "equal":
            errors += max(i2 - i1, j2 - j1)
    return errors / max(len(ref), 1)


def wer_fraction(reference, hypothesis):
    ref, hyp = reference.split(), hypothesis.split()
    return fractions.Fraction(edit_distance(ref, hyp), max(len(ref), 1))


def wer_int_when_exact(reference, hypothesis):
    distance = edit_distance(reference.split(), hypothesis.split())
    return 0 if distance == 0 else distance / max(len(reference.split()), 1)


def wer_divides_by_n(reference, hypothesis):  # no rule for an empty reference
    return edit_distance(reference.split(), hypothesis.split()) / len(reference.split())


def wer_substitution_costs_2(reference, hypothesis):
    ref, hyp = reference.split(), hypothesis.split()
    return edit_distance(ref, hyp, substitution=2) / max(len(ref), 1)


def wer_percent(reference, hypothesis):
    return 100 * wer_rows(reference, hypothesis)


def wer_bag_of_words(reference, hypothesis):
    ref, hyp = reference.split(), hypothesis.split()
    return len(set(ref) ^ set(hyp)) / max(len(ref), 1)


RIGHT = {
    "compose_config": [compose_deepcopy, compose_from_dicts],
    "encoder_output_lengths": [lengths_vectorised, lengths_loop_ceil],
    "projection": [projection_if, projection_rules],
    "make_labels": [labels_loop, labels_pad_sequence],
    "shift_tokens_right": [shift_roll, shift_loop],
    "seq2seq_loss": [loss_cross_entropy, loss_by_hand],
    "greedy_decode": [greedy_for, greedy_while],
    "beam_step": [beam_topk, beam_sorted_candidates],
    "top_p": [top_p_sorted, top_p_loop],
    "wer": [wer_rows, wer_recursive],
}
WRONG = {
    "compose_config": [
        compose_rebuilt,
        compose_bert_copy,
        compose_cross_width,
        compose_as_dict,
        compose_adapter_on,
        compose_encoder_decoder_flag,
    ],
    "encoder_output_lengths": [
        lengths_float,
        lengths_list,
        lengths_adapter_kernel_3,
        lengths_int_truncation,
        lengths_one_adapter_layer,
        lengths_adapter_always,
        lengths_int32,
    ],
    "projection": [
        projection_no_bias,
        projection_double,
        projection_weight,
        projection_identity,
        projection_sequential,
        projection_hard_coded,
    ],
    "make_labels": [
        labels_float,
        labels_nested_list,
        labels_zero_is_padding,
        labels_eos_after_padding,
        labels_toy_ids,
        labels_cat_per_row,
        labels_first_row_width,
    ],
    "shift_tokens_right": [
        shift_float,
        shift_positive_is_token,
        shift_list,
        shift_pad_zero,
        shift_int32,
        shift_toy_start,
    ],
    "seq2seq_loss": [
        loss_per_token,
        loss_item,
        loss_rewrapped,
        loss_padding_as_class_0,
        loss_double,
        loss_per_batch_row,
        loss_label_smoothing,
    ],
    "greedy_decode": [
        greedy_toy_ids,
        greedy_until_last_is_eos,
        greedy_tensor,
        greedy_tensor_items,
        greedy_total_length,
        greedy_at_least_one,
        greedy_without_start,
    ],
    "beam_step": [
        beam_scores_list,
        beam_double,
        beam_tensor_beams,
        beam_swapped,
        beam_unsorted,
        beam_first_beam_only,
    ],
    "top_p": [
        top_p_probabilities,
        top_p_double,
        top_p_large_negative,
        top_p_in_place,
        top_p_flattened,
        top_p_first_row,
    ],
    "wer": [
        wer_single_spaces,
        wer_lowercase,
        wer_difflib,
        wer_fraction,
        wer_int_when_exact,
        wer_divides_by_n,
        wer_substitution_costs_2,
        wer_percent,
        wer_bag_of_words,
    ],
}


def test_every_exercise_has_two_right_and_five_wrong_solutions():
    assert set(RIGHT) == set(WRONG) == set(EXERCISES)
    assert all(len(RIGHT[name]) >= 2 and len(WRONG[name]) >= 5 for name in EXERCISES)


@pytest.mark.parametrize(
    "name, solution",
    [(name, fn) for name, fns in RIGHT.items() for fn in fns],
    ids=lambda x: x if isinstance(x, str) else x.__name__,
)
def test_right_solution_passes_on_every_seed(name, solution):
    for seed in SEEDS:
        result = check(EXERCISES[name], solution, seed)
        assert result.passed, f"seed {seed}: {result}"


@pytest.mark.parametrize(
    "name, solution",
    [(name, fn) for name, fns in WRONG.items() for fn in fns],
    ids=lambda x: x if isinstance(x, str) else x.__name__,
)
def test_wrong_solution_fails_on_every_seed(name, solution):
    for seed in SEEDS:
        result = check(EXERCISES[name], solution, seed)
        assert not result.passed, f"{solution.__name__} passed with seed {seed}"
        text = str(result)
        assert "Traceback" not in text
        assert "/s2t_edu/teaching/exercises/" not in text, text  # never the checker's own lines
