"""The classic mistakes, each written as the wrong solution a student would write, plus its hint.

A student's answer is recognised as mistake X when it gives the same outputs (or the same
exception) as X's wrong solution on every hidden case it gets wrong (runner.diagnose). The
order of each list matters only when two mistakes give the same outputs; the cases are chosen
so that they do not (tests/test_exercises.py checks each is recognised as itself).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import SpeechEncoderDecoderConfig

from s2t_edu.frames import conv_layers
from s2t_edu.labels import IGNORE_INDEX
from s2t_edu.metrics import cer, error_counts, words
from s2t_edu.projection import encoder_output_size
from s2t_edu.teaching.exercises.references import greedy_loop
from s2t_edu.teaching.exercises.runner import Mistake


def _variant(impl, names: tuple[str, ...], **wrong):
    """``impl`` with the mistake switched on, callable by position or keyword like a student's."""

    def wrong_solution(*args, **kwargs):
        kwargs.update(zip(names, args, strict=False))
        return impl(**kwargs, **wrong)

    return wrong_solution


# --- composing the config -------------------------------------------------------------------


def _compose(
    encoder_config,
    decoder_config,
    decoder_flags=(),
    encoder_flags=(),
    swap=False,
    cross_width=None,
):
    encoder_config, decoder_config = copy.deepcopy(encoder_config), copy.deepcopy(decoder_config)
    for flag in decoder_flags:
        setattr(decoder_config, flag, True)
    if cross_width is not None:
        decoder_config.cross_attention_hidden_size = cross_width
    for flag in encoder_flags:
        setattr(encoder_config, flag, True)
    if swap:
        encoder_config, decoder_config = decoder_config, encoder_config
    return SpeechEncoderDecoderConfig(
        encoder=encoder_config.to_dict(), decoder=decoder_config.to_dict()
    )


CONFIG_MISTAKES = [
    Mistake(
        "swapped encoder and decoder",
        lambda encoder_config, decoder_config: _compose(
            encoder_config, decoder_config, ("is_decoder", "add_cross_attention"), swap=True
        ),
        "the speech config is the encoder and the text config the decoder: "
        "SpeechEncoderDecoderConfig(encoder=speech.to_dict(), decoder=text.to_dict())",
    ),
    Mistake(
        "flags set on the encoder",
        lambda encoder_config, decoder_config: _compose(
            encoder_config, decoder_config, encoder_flags=("is_decoder", "add_cross_attention")
        ),
        "is_decoder and add_cross_attention belong on the *decoder* config: the decoder is the "
        "part that must be causal and read the audio",
    ),
    Mistake(
        "no cross-attention",
        lambda encoder_config, decoder_config: _compose(
            encoder_config, decoder_config, ("is_decoder",)
        ),
        "set decoder_config.add_cross_attention = True: without it the decoder has no "
        "cross-attention block and never looks at the audio",
    ),
    Mistake(
        "not causal",
        lambda encoder_config, decoder_config: _compose(
            encoder_config, decoder_config, ("add_cross_attention",)
        ),
        "set decoder_config.is_decoder = True: without it self-attention is bidirectional, so "
        "in training every position can see the token it must predict",
    ),
    Mistake(
        "flags forgotten",
        lambda encoder_config, decoder_config: _compose(encoder_config, decoder_config),
        "composition is exactly two flags on the decoder: is_decoder=True (causal) and "
        "add_cross_attention=True (reads the audio)",
    ),
    Mistake(
        "decoder config rebuilt from scratch",
        lambda encoder_config, decoder_config: SpeechEncoderDecoderConfig(
            encoder=encoder_config.to_dict(),
            decoder=type(decoder_config)(is_decoder=True, add_cross_attention=True).to_dict(),
        ),
        "a new config has the library's default sizes, not the decoder's: keep every setting of "
        "the decoder config you were given -- change a copy (copy.deepcopy) of it",
    ),
    Mistake(
        "cross_attention_hidden_size set",
        lambda encoder_config, decoder_config: _compose(
            encoder_config,
            decoder_config,
            ("is_decoder", "add_cross_attention"),
            cross_width=encoder_config.hidden_size,
        ),
        "leave cross_attention_hidden_size alone: composition sets only is_decoder and "
        "add_cross_attention; a cross_attention_hidden_size changes which layers the model "
        "builds (no enc_to_dec_proj)",
    ),
]

# --- encoder output lengths -----------------------------------------------------------------


def _lengths(
    encoder_config,
    input_lengths,
    plus=1,
    adapter=True,
    adapter_padding=True,
    clamp=True,
    adapter_plus=None,
    adapter_kernel=None,
    rounding="floor",
):
    lengths = torch.as_tensor(input_lengths, dtype=torch.long)
    for kernel, stride, padding in conv_layers(encoder_config):
        if padding and not adapter:
            continue
        one = plus if not padding or adapter_plus is None else adapter_plus
        if padding and adapter_kernel is not None:  # transformers' formula: kernel 1, padding 0
            kernel, padding = adapter_kernel, 0
        padding = padding if adapter_padding else 0
        lengths = torch.div(lengths + 2 * padding - kernel, stride, rounding_mode=rounding) + one
    return lengths.clamp(min=0) if clamp else lengths


def _total_stride(encoder_config, input_lengths):
    stride = math.prod(s for _, s, _ in conv_layers(encoder_config))
    return torch.as_tensor(input_lengths) // stride


LENGTH_MISTAKES = [
    Mistake(
        "forgot the adapter",
        lambda encoder_config, input_lengths: _lengths(
            encoder_config, input_lengths, adapter=False
        ),
        "with add_adapter=True, num_adapter_layers more strided convs (kernel "
        "adapter_kernel_size, stride adapter_stride, padding 1) shorten the sequence after the "
        "feature encoder (transformers PR #16728): apply the formula to them too",
    ),
    Mistake(
        "adapter without padding",
        lambda encoder_config, input_lengths: _lengths(
            encoder_config, input_lengths, adapter_padding=False
        ),
        "the adapter's convs use padding=1: L -> floor((L + 2*1 - kernel) / stride) + 1",
    ),
    Mistake(
        "off by one (no +1)",
        lambda encoder_config, input_lengths: _lengths(encoder_config, input_lengths, plus=0),
        "a conv with no padding maps L to floor((L - kernel) / stride) + 1: the +1 counts the "
        "first window, which starts at position 0",
        also=(  # the +1 forgotten in the feature encoder only, the adapter written separately
            lambda encoder_config, input_lengths: _lengths(
                encoder_config, input_lengths, plus=0, adapter_plus=1
            ),
        ),
    ),
    Mistake(
        "divided by the total stride",
        _total_stride,
        "dividing by the product of the strides ignores the kernels: apply "
        "floor((L - kernel) / stride) + 1 layer by layer, in order",
    ),
    Mistake(
        "negative lengths",
        lambda encoder_config, input_lengths: _lengths(encoder_config, input_lengths, clamp=False),
        "an input shorter than the receptive field gives 0 frames, not a negative number: "
        "clamp the result at 0",
    ),
    Mistake(
        "adapter kernel taken as 3",
        lambda encoder_config, input_lengths: _lengths(
            encoder_config, input_lengths, adapter_kernel=1
        ),
        "use the adapter's own adapter_kernel_size with padding 1: floor((L + 2 - kernel) / "
        "stride) + 1. transformers' _get_feat_extract_output_lengths computes floor((L - 1) / "
        "stride) + 1, which is right only for the default kernel 3",
    ),
    Mistake(
        "rounded toward zero",
        lambda encoder_config, input_lengths: _lengths(
            encoder_config, input_lengths, rounding="trunc"
        ),
        "use floor division (// or rounding_mode='floor'): int() and rounding_mode='trunc' round "
        "a negative (L - kernel) / stride up to 0, so a too-short input gets a frame",
    ),
]

# --- the projection -------------------------------------------------------------------------


def _projection(
    config, always=False, never=False, reverse=False, cross=True, adapter=True, bias=True
):
    encoder_width = encoder_output_size(config.encoder) if adapter else config.encoder.hidden_size
    decoder_width = config.decoder.hidden_size
    cross_width = getattr(config.decoder, "cross_attention_hidden_size", None) if cross else None
    needed = encoder_width != decoder_width and cross_width is None
    if never or not (needed or always):
        return None
    if reverse:
        return nn.Linear(decoder_width, config.encoder.hidden_size)
    return nn.Linear(config.encoder.hidden_size, decoder_width, bias=bias)


PROJECTION_MISTAKES = [
    Mistake(
        "always projects",
        lambda config: _projection(config, always=True),
        "a projection is only added when the encoder's output width differs from the decoder's "
        "hidden_size; with equal widths return None",
    ),
    Mistake(
        "never projects",
        lambda config: _projection(config, never=True),
        "cross-attention computes keys/values with the decoder's weights, sized for "
        "decoder.hidden_size: encoder frames of another width need nn.Linear(encoder width, "
        "decoder width) first",
    ),
    Mistake(
        "projection the wrong way round",
        lambda config: _projection(config, reverse=True),
        "the projection maps encoder frames to the decoder's width: "
        "nn.Linear(in_features=encoder hidden_size, out_features=decoder hidden_size)",
    ),
    Mistake(
        "ignored cross_attention_hidden_size",
        lambda config: _projection(config, cross=False),
        "a decoder whose config sets cross_attention_hidden_size (e.g. TrOCR) builds "
        "cross-attention that reads the encoder width directly: then no projection",
    ),
    Mistake(
        "ignored the adapter's output width",
        lambda config: _projection(config, adapter=False),
        "with an adapter the encoder emits output_hidden_size-wide frames, not hidden_size: "
        "compare that width (getattr(encoder, 'output_hidden_size', None) or hidden_size) "
        "with the decoder's",
    ),
    Mistake(
        "projection without bias",
        lambda config: _projection(config, bias=False),
        "enc_to_dec_proj is nn.Linear with its default bias=True: weight and bias, both trained",
    ),
]

# --- labels ---------------------------------------------------------------------------------


LABELS_ARGS = ("token_lists", "pad_token_id", "eos_token_id", "decoder_start_token_id")


def _labels(token_lists, pad_token_id, eos_token_id, decoder_start_token_id, **wrong):
    rows = [
        ([decoder_start_token_id] if wrong.get("start") else [])
        + list(tokens)
        + ([] if wrong.get("no_eos") else [eos_token_id])
        for tokens in token_lists
    ]
    width = max(len(row) for row in rows)
    fill = pad_token_id if wrong.get("pad") or wrong.get("mask_by_pad") else IGNORE_INDEX
    labels = torch.tensor([row + [fill] * (width - len(row)) for row in rows])
    if wrong.get("mask_by_pad"):
        labels = labels.masked_fill(labels == pad_token_id, IGNORE_INDEX)
    return labels


LABELS_MISTAKES = [
    Mistake(
        "labels without EOS",
        _variant(_labels, LABELS_ARGS, no_eos=True),
        "end every label sequence with eos_token_id: a model that never sees EOS in its labels "
        "never learns to stop and babbles until max_new_tokens (GPT-2's tokenizer adds no EOS)",
    ),
    Mistake(
        "pad ids left in labels",
        _variant(_labels, LABELS_ARGS, pad=True),
        "pad the labels with -100, not pad_token_id: the loss ignores -100 only, so pad ids teach "
        "the model to predict padding (transformers #7896)",
    ),
    Mistake(
        "EOS masked as padding",
        _variant(_labels, LABELS_ARGS, mask_by_pad=True),
        "you replaced every id equal to pad_token_id by -100; when pad == EOS (GPT-2) that also "
        "hides the EOS the model must learn. Pad by position (the attention mask), not by id",
    ),
    Mistake(
        "start token in the labels",
        _variant(_labels, LABELS_ARGS, start=True),
        "the decoder start token goes into decoder_input_ids (shift_tokens_right adds it), not "
        "into the labels: the model is never asked to predict it",
    ),
]

# --- shifting labels into decoder inputs ----------------------------------------------------


SHIFT_ARGS = ("labels", "pad_token_id", "decoder_start_token_id")


def _shift(labels, pad_token_id, decoder_start_token_id, **wrong):
    labels = torch.as_tensor(labels)
    start = torch.full_like(labels[:, :1], pad_token_id if wrong.get("pad_start") else 0)
    if not wrong.get("pad_start"):
        start.fill_(decoder_start_token_id)
    if wrong.get("left"):
        shifted = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], pad_token_id)], dim=1)
    elif wrong.get("keep_last"):
        shifted = torch.cat([start, labels], dim=1)
    else:
        shifted = torch.cat([start, labels[:, :-1]], dim=1)
    if wrong.get("keep_minus_100"):
        return shifted
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


SHIFT_MISTAKES = [
    Mistake(
        "-100 left in decoder inputs",
        _variant(_shift, SHIFT_ARGS, keep_minus_100=True),
        "-100 is not a token: replace it by pad_token_id in decoder_input_ids, or the embedding "
        "lookup fails (index out of range) -- the labels keep their -100s",
    ),
    Mistake(
        "wrong decoder start token",
        _variant(_shift, SHIFT_ARGS, pad_start=True),
        "the first decoder input is decoder_start_token_id (BERT: [CLS], GPT-2: BOS), not the pad "
        "id; training and generate must start from the same token (transformers #14439)",
    ),
    Mistake(
        "shifted left",
        _variant(_shift, SHIFT_ARGS, left=True),
        "shift right: decoder input t is label t-1, so prepend the start token and drop the "
        "*last* label",
    ),
    Mistake(
        "last label kept",
        _variant(_shift, SHIFT_ARGS, keep_last=True),
        "decoder_input_ids must have the labels' length: after prepending the start token, drop "
        "the last label (labels[:, :-1])",
    ),
]
SHIFT_MUTATION_HINT = (
    "you changed `labels` in place (e.g. labels[labels == -100] = pad_token_id): the loss reads "
    "the same labels afterwards and would now learn the padding. Build a new tensor "
    "(torch.cat, then masked_fill)"
)

# --- the loss -------------------------------------------------------------------------------


def _nll(logits, labels, probabilities=False, log_of_softmax=False):
    scores = logits.float().softmax(-1) if probabilities else logits.float().log_softmax(-1)
    if log_of_softmax:
        scores = torch.log(logits.float().softmax(-1))
    counted = labels != IGNORE_INDEX
    picked = scores.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    return -picked, counted


def _loss(logits, labels, how):
    nll, counted = _nll(
        logits, labels, probabilities=how == "probabilities", log_of_softmax=how == "log(softmax)"
    )
    if how == "all positions":
        return (nll * counted).sum() / counted.numel()
    if how == "sum":
        return (nll * counted).sum()
    if how == "per sentence":
        return ((nll * counted).sum(1) / counted.sum(1)).mean()
    if how == "double shift":
        return _loss(logits[:, :-1], labels[:, 1:], "mean")
    return (nll * counted).sum() / counted.sum()


LOSS_MISTAKES = [
    Mistake(
        "-100 positions counted",
        lambda logits, labels: _loss(logits, labels, "all positions"),
        "divide by the number of real labels (labels != -100), not by every position: "
        "padding must neither cost nor count",
    ),
    Mistake(
        "summed, not averaged",
        lambda logits, labels: _loss(logits, labels, "sum"),
        "the loss is the *mean* cross-entropy over the non-ignored tokens",
    ),
    Mistake(
        "averaged per sentence",
        lambda logits, labels: _loss(logits, labels, "per sentence"),
        "average over all real tokens of the batch at once (as CrossEntropyLoss does), not per "
        "sentence then per batch: that weighs short sentences' tokens more",
    ),
    Mistake(
        "softmax instead of log-softmax",
        lambda logits, labels: _loss(logits, labels, "probabilities"),
        "cross-entropy is -log p(correct token): use log_softmax (or F.cross_entropy on the "
        "logits), not softmax",
    ),
    Mistake(
        "shifted twice",
        lambda logits, labels: _loss(logits, labels, "double shift"),
        "in an encoder-decoder the labels are already aligned with the logits (the shift happened "
        "in decoder_input_ids): do not shift again as for a decoder-only LM",
    ),
    Mistake(
        "log of softmax",
        lambda logits, labels: _loss(logits, labels, "log(softmax)"),
        "torch.log(softmax(x)) underflows to log(0) = -inf for large logits: use "
        "torch.log_softmax (or F.cross_entropy), which computes it stably",
    ),
    Mistake(
        "pad id used as ignore_index",
        lambda logits, labels: F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=0
        ),
        "the labels mark padding with -100: keep ignore_index=-100 (CrossEntropyLoss's default); "
        "any other ignore_index sees -100 as a class id",
    ),
]

# --- greedy decoding ------------------------------------------------------------------------


GREEDY_ARGS = ("next_token_logits", "start_id", "eos_id", "max_new_tokens")


def _greedy(next_token_logits, start_id, eos_id, max_new_tokens, **wrong):
    tokens = [start_id]
    steps = max_new_tokens + wrong.get("extra_steps", 0)
    for _ in range(steps):
        if wrong.get("checks_last") and tokens[-1] == eos_id:
            break
        prefix = tokens[-1:] if wrong.get("last_only") else list(tokens)
        token = int(torch.as_tensor(next_token_logits(prefix)).argmax())
        if token == eos_id and wrong.get("drop_eos"):
            break
        tokens.append(token)
        if token == eos_id and not wrong.get("never_stop"):
            break
    return tokens[1:] if wrong.get("no_start") else tokens


GREEDY_MISTAKES = [
    Mistake(
        "never stops at EOS",
        _variant(_greedy, GREEDY_ARGS, never_stop=True),
        "stop as soon as the chosen token is eos_id (after appending it): otherwise decoding "
        "always runs to max_new_tokens, and what follows EOS is noise",
    ),
    Mistake(
        "EOS not kept",
        _variant(_greedy, GREEDY_ARGS, drop_eos=True),
        "append the EOS token before stopping: generate returns it, and it tells the reader the "
        "model chose to stop (not ran out of max_new_tokens)",
    ),
    Mistake(
        "start token missing",
        _variant(_greedy, GREEDY_ARGS, no_start=True),
        "the sequence starts with the start token, and the result keeps it (as generate does)",
    ),
    Mistake(
        "only the last token fed",
        _variant(_greedy, GREEDY_ARGS, last_only=True),
        "without a cache the decoder must see the whole prefix (start token included) at every "
        "step, not only the last token",
    ),
    Mistake(
        "stopped on the start token",
        _variant(_greedy, GREEDY_ARGS, checks_last=True),
        "stop when the token you just *chose* is eos_id, not when the sequence's last token is: "
        "GPT-2 starts with <|endoftext|>, its EOS, and must still decode",
    ),
    Mistake(
        "one step too many",
        _variant(_greedy, GREEDY_ARGS, extra_steps=1),
        "max_new_tokens counts the new tokens: at most max_new_tokens steps",
    ),
    Mistake(
        "one step too few",
        _variant(_greedy, GREEDY_ARGS, extra_steps=-1),
        "max_new_tokens counts the new tokens: the loop may run max_new_tokens times",
    ),
]
GREEDY_TIMEOUT_HINT = (
    "your loop never ended: stop when the chosen token is eos_id *and* after max_new_tokens "
    "tokens -- a model that never emits EOS (trained on labels without EOS) would run forever"
)
assert greedy_loop  # the reference lives in references.py

# --- one beam-search step -------------------------------------------------------------------


BEAM_ARGS = ("beam_tokens", "beam_scores", "logits", "num_beams")


def _beam(beam_tokens, beam_scores, logits, num_beams, how):
    vocab = logits.shape[-1]
    if how == "softmax":
        step = logits.float().softmax(-1)
    elif how == "raw":
        step = logits.float()
    else:
        step = logits.float().log_softmax(-1)
    totals = step if how == "no previous" else beam_scores[:, None] + step
    if how == "per beam":
        scores, tokens = totals.max(dim=-1)
        order = scores.argsort(descending=True)[:num_beams]
        return [beam_tokens[b] + [int(tokens[b])] for b in order.tolist()], scores[order]
    scores, flat = torch.topk(totals.reshape(-1), num_beams)
    parents, tokens = flat // vocab, flat % vocab
    if how == "swapped":
        parents, tokens = flat % num_beams, flat // num_beams
    beams = [beam_tokens[p] + [t] for p, t in zip(parents.tolist(), tokens.tolist(), strict=True)]
    return beams, scores


BEAM_MISTAKES = [
    Mistake(
        "softmax instead of log-softmax",
        _variant(_beam, BEAM_ARGS, how="softmax"),
        "a sequence's score is a *sum of log-probabilities*: use log_softmax. Adding "
        "probabilities means nothing (the product of probabilities is the sum of their logs)",
    ),
    Mistake(
        "raw logits as scores",
        _variant(_beam, BEAM_ARGS, how="raw"),
        "turn logits into log-probabilities (log_softmax) first: raw logits of different beams "
        "are on different scales and cannot be compared",
    ),
    Mistake(
        "previous score forgotten",
        _variant(_beam, BEAM_ARGS, how="no previous"),
        "add each beam's score so far to its tokens' log-probabilities: candidates are ranked by "
        "the score of the whole sequence",
    ),
    Mistake(
        "best token per beam",
        _variant(_beam, BEAM_ARGS, how="per beam"),
        "rank all beams x vocab candidates together (flatten, then topk): two children of the "
        "same beam may both be among the best, and a weak beam may get none",
    ),
    Mistake(
        "parent and token decoded wrongly",
        _variant(_beam, BEAM_ARGS, how="swapped"),
        "after flattening (beams, vocab), index i is parent i // vocab_size and token "
        "i % vocab_size",
    ),
]

# --- top-p filtering ------------------------------------------------------------------------


def _top_p(logits, p, how):
    logits = torch.as_tensor(logits).float()
    if how == "unsorted":
        sorted_logits, order = logits, torch.arange(logits.shape[-1]).expand_as(logits)
    else:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    mass = sorted_logits.cumsum(-1) if how == "logits" else sorted_logits.softmax(-1).cumsum(-1)
    before = mass - (sorted_logits if how == "logits" else sorted_logits.softmax(-1))
    if how == "tail":
        drop = mass < p  # the comparison turned round: keeps the tail, drops the nucleus
    elif how == "without crossing token":
        drop = mass > p
        drop[..., 0] = False
    else:
        drop = before >= p
        drop[..., 0] = False
    drop = drop.scatter(-1, order, drop)
    fill = 0.0 if how == "zero" else -float("inf")
    return logits.masked_fill(drop, fill)


TOP_P_MISTAKES = [
    Mistake(
        "kept the wrong side",
        lambda logits, p: _top_p(logits, p, "tail"),
        "keep the *most likely* tokens whose probabilities add up to p (the nucleus) and set "
        "the rest to -inf; your comparison is turned round, so the unlikely tail survives",
    ),
    Mistake(
        "token that crosses p dropped",
        lambda logits, p: _top_p(logits, p, "without crossing token"),
        "keep the smallest set whose mass *reaches* p: the token that takes the running sum past "
        "p stays (drop a token only when the tokens before it already hold >= p)",
    ),
    Mistake(
        "not sorted",
        lambda logits, p: _top_p(logits, p, "unsorted"),
        "sort the tokens by probability (descending) before the running sum, then map the "
        "decision back to the original positions",
    ),
    Mistake(
        "summed logits, not probabilities",
        lambda logits, p: _top_p(logits, p, "logits"),
        "p is a probability mass: softmax the (sorted) logits before the running sum",
    ),
    Mistake(
        "dropped tokens set to 0",
        lambda logits, p: _top_p(logits, p, "zero"),
        "set dropped tokens to -inf: a logit of 0 still has probability > 0 after softmax",
    ),
]

# --- WER ------------------------------------------------------------------------------------


def _wer_by(reference, hypothesis, denominator):
    counts = error_counts(reference, hypothesis)
    errors = counts.substitutions + counts.deletions + counts.insertions
    return errors / max(denominator, 1)


def _word_by_word(reference, hypothesis):
    ref, hyp = words(reference), words(hypothesis)
    errors = sum(r != h for r, h in zip(ref, hyp, strict=False)) + abs(len(ref) - len(hyp))
    return errors / max(len(ref), 1)


WER_MISTAKES = [
    Mistake(
        "normalised by the hypothesis length",
        lambda reference, hypothesis: _wer_by(reference, hypothesis, len(words(hypothesis))),
        "WER = (S + D + I) / N with N the number of *reference* words; dividing by the "
        "hypothesis length rewards a model that babbles",
    ),
    Mistake(
        "word-by-word comparison",
        _word_by_word,
        "comparing position by position makes one inserted word shift every later word into an "
        "error: align the sentences first (Levenshtein distance on words)",
    ),
    Mistake(
        "normalised by the longer sentence",
        lambda reference, hypothesis: _wer_by(
            reference, hypothesis, max(len(words(reference)), len(words(hypothesis)))
        ),
        "divide by the number of reference words only: WER may exceed 1 when the hypothesis "
        "has many insertions",
    ),
    Mistake(
        "split on single spaces",
        lambda reference, hypothesis: (
            error_counts(reference, hypothesis, tokenize=lambda text: text.split(" ")).rate
        ),
        "split on any whitespace with text.split() (no argument): split(' ') turns double "
        "spaces, tabs and spaces at the ends into words",
    ),
    Mistake(
        "case ignored",
        lambda reference, hypothesis: (
            error_counts(reference.lower(), hypothesis.lower(), words).rate
        ),
        "compare the words exactly as written: the exercise counts "
        "'The' for 'the' as a substitution -- normalising case is a choice made before WER",
    ),
    Mistake(
        "characters, not words",
        lambda reference, hypothesis: cer(reference, hypothesis),
        "WER counts *words*: split on whitespace (reference.split()) before aligning; over "
        "characters it is the CER",
    ),
]
