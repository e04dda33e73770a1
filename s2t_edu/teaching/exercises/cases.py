"""Hidden test cases, generated from a seed: broad enough to cover each exercise's contract.

Each generator ``<exercise>_cases(seed)`` returns a list of keyword-argument dicts for the
student's function. The notebook's checks use ``PRACTICE_SEED``; grading uses another seed that
only the teacher knows (tools/grade_exercises.py), so the cases a student practised on are not
the ones that grade them -- same generators, other draws.

The generators cover the edges a solution must get right, not only typical inputs: ids drawn
at random (never the notebook's toy ids only), label id 0, start == EOS and pad == EOS (GPT-2),
``max_new_tokens`` 0 and 1, every adapter kernel, empty sentences, extra whitespace and case in
WER, and random sentence pairs on which only a true edit distance is right. Cases whose answer
would hang on float rounding (top-p at its boundary) are drawn again.
"""

from __future__ import annotations

import random

import torch
from transformers import (
    BertConfig,
    Data2VecAudioConfig,
    GPT2Config,
    HubertConfig,
    RobertaConfig,
    Wav2Vec2Config,
    WhisperConfig,
)

from s2t_edu.config import compose_config
from s2t_edu.labels import IGNORE_INDEX
from s2t_edu.teaching.exercises.references import ToyDecoder

PRACTICE_SEED = 0  # the notebooks' checks; grading draws with a seed students never see
WORDS = "the a cat dog sat on mat big red ran fast slowly over under house tree".split()


def _rng(exercise: str, seed: int) -> random.Random:
    return random.Random(f"{exercise}/{seed}")


def _generator(rng: random.Random) -> torch.Generator:
    return torch.Generator().manual_seed(rng.getrandbits(62))


def _conv_stack(rng: random.Random) -> dict:
    layers = rng.randint(1, 4)
    return dict(
        conv_dim=(8,) * layers,
        conv_kernel=tuple(rng.choice((1, 2, 3, 4, 5, 10)) for _ in range(layers)),
        conv_stride=tuple(rng.choice((1, 2, 3, 5)) for _ in range(layers)),
    )


def _wav2vec2(rng: random.Random, hidden: int, **extra) -> Wav2Vec2Config:
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=rng.choice((16, 24)),
        num_conv_pos_embeddings=rng.choice((4, 8)),
        num_conv_pos_embedding_groups=2,
        **_conv_stack(rng),
        **extra,
    )


# --- ex1: configs, frames, projection ---------------------------------------------------------


def _encoder(kind: int, rng: random.Random):
    hidden = rng.choice((16, 24, 32))
    if kind == 0:
        adapter = rng.random() < 0.5
        extra = dict(add_adapter=True, num_adapter_layers=rng.randint(1, 2)) if adapter else {}
        return _wav2vec2(rng, hidden, **extra)
    if kind == 1:
        return HubertConfig(
            hidden_size=hidden,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=24,
            num_conv_pos_embeddings=4,
            num_conv_pos_embedding_groups=2,
            **_conv_stack(rng),
        )
    if kind == 2:
        return WhisperConfig(
            d_model=hidden,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=24,
            decoder_ffn_dim=24,
            num_mel_bins=rng.choice((8, 16)),
            max_source_positions=rng.choice((20, 30)),
        )
    return Data2VecAudioConfig(
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=24,
        num_conv_pos_embeddings=4,
        **_conv_stack(rng),
    )


def _decoder(kind: int, rng: random.Random):
    hidden, vocab = rng.choice((16, 24, 32, 48)), rng.randint(40, 120)
    layers, positions = rng.randint(1, 2), rng.choice((32, 64))
    if kind == 0:
        return BertConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=rng.choice((32, 40)),
            vocab_size=vocab,
            max_position_embeddings=positions,
            pad_token_id=rng.randint(0, 3),
        )
    if kind == 1:
        bos = rng.randint(0, vocab - 1)  # GPT-2: one id is BOS and EOS
        return GPT2Config(
            n_embd=hidden,
            n_layer=layers,
            n_head=2,
            vocab_size=vocab,
            n_positions=positions,
            bos_token_id=bos,
            eos_token_id=bos,
        )
    return RobertaConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=rng.choice((32, 40)),
        vocab_size=vocab,
        max_position_embeddings=positions + 2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


def compose_config_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("compose_config", seed)
    return [
        {"encoder_config": _encoder(i % 4, rng), "decoder_config": _decoder(i % 3, rng)}
        for i in range(8)
    ]


def encoder_output_lengths_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("encoder_output_lengths", seed)
    cases = []
    for i in range(24):
        extra = {}
        if i % 2 == 1:  # every adapter kernel, strides 1-3, 1-3 adapter layers
            extra = dict(
                add_adapter=True,
                num_adapter_layers=rng.randint(1, 3),
                adapter_kernel_size=(i // 2) % 5 + 1,
                adapter_stride=rng.randint(1, 3),
            )
        elif i % 4 == 2:  # adapter settings present but switched off: they must not count
            extra = dict(add_adapter=False, num_adapter_layers=3, adapter_stride=3)
        config = _wav2vec2(rng, 32, **extra)
        field = _receptive_field(config)
        lengths = [field, field + rng.randint(1, 9), rng.randint(200, 40_000)]
        # Inputs too short for one feature-encoder frame: 0 frames, whatever the adapter -- drawn
        # only where that is unambiguous (an adapter kernel of 1 or 2 has padding 1 > kernel - 2).
        if not extra.get("add_adapter") or extra["adapter_kernel_size"] >= 3:
            lengths += [0, max(field - 1, 0), rng.randint(0, field)]
        rng.shuffle(lengths)
        lengths = lengths[: rng.randint(1, len(lengths))]
        cases.append({"encoder_config": config, "input_lengths": torch.tensor(lengths)})
    return cases


def _receptive_field(config) -> int:
    """Samples the feature encoder (adapter left out) needs for one frame."""
    length = 1
    for kernel, stride in zip(
        reversed(config.conv_kernel), reversed(config.conv_stride), strict=True
    ):
        length = (length - 1) * stride + kernel
    return length


def projection_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("projection", seed)
    cases = []
    for i in range(16):
        kind = i % 5
        encoder_width, decoder_width = rng.choice(((16, 32), (32, 24), (48, 16), (24, 48)))
        extra, decoder_extra = {}, {}
        if kind == 1:  # equal widths: nothing to project
            decoder_width = encoder_width
        if kind == 2:  # a TrOCR-style decoder reads the encoder width itself
            decoder_extra = {"cross_attention_hidden_size": encoder_width}
        if kind == 3:  # the adapter already emits the decoder's width
            extra = dict(add_adapter=True, output_hidden_size=decoder_width, num_adapter_layers=1)
        if kind == 4:  # an adapter that keeps the width: a projection from hidden_size
            extra = dict(add_adapter=True, output_hidden_size=encoder_width, num_adapter_layers=1)
        encoder = _wav2vec2(rng, encoder_width, **extra)
        if rng.random() < 0.5:
            decoder = BertConfig(
                hidden_size=decoder_width,
                num_hidden_layers=1,
                num_attention_heads=2,
                vocab_size=50,
                **decoder_extra,
            )
        else:
            decoder = GPT2Config(
                n_embd=decoder_width,
                n_layer=1,
                n_head=2,
                vocab_size=50,
                bos_token_id=49,
                eos_token_id=49,
                **decoder_extra,
            )
        cases.append({"config": compose_config(encoder, decoder)})
    return cases


# --- ex2: labels, decoder inputs, loss --------------------------------------------------------


def make_labels_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("make_labels", seed)
    cases = []
    for i in range(24):
        vocab = rng.randint(8, 60)
        style = i % 4  # 0/1: BERT-like, 2: GPT-2 (pad == EOS), 3: GPT-2 (start == EOS == pad)
        eos, start = rng.sample(range(vocab), 2)
        pad = rng.choice([x for x in range(vocab) if x not in (eos, start)])
        if style == 2:
            pad = eos
        if style == 3:
            pad = start = eos
        real = [x for x in range(vocab) if x not in (pad, eos, start)]
        if 0 in real and rng.random() < 0.7:
            real += [0] * 6  # label id 0 is an ordinary token here: make it frequent
        batch = rng.randint(1, 4)
        lengths = [rng.randint(0, 6) for _ in range(batch)]
        if i % 6 == 5:
            lengths = [lengths[0]] * batch  # nothing to pad
        if i % 6 == 1:
            lengths[0] = 0  # an empty first sentence (torch.tensor([]) is float32)
        if i == 3:
            lengths = [0]  # one empty sentence: the labels are just its EOS
        token_lists = [[rng.choice(real) for _ in range(n)] for n in lengths]
        cases.append(
            {
                "token_lists": token_lists,
                "pad_token_id": pad,
                "eos_token_id": eos,
                "decoder_start_token_id": start,
            }
        )
    return cases


def _labels_tensor(rng: random.Random, rows: int, vocab: int, width: int) -> torch.Tensor:
    labels = []
    for _ in range(rows):
        n = rng.randint(1, width)
        tokens = [rng.choice((0, rng.randint(0, vocab - 1))) for _ in range(n)]
        labels.append(tokens + [IGNORE_INDEX] * (width - n))
    labels[rng.randrange(rows)] = [rng.randint(0, vocab - 1) for _ in range(width)]  # one full row
    return torch.tensor(labels)


def shift_tokens_right_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("shift_tokens_right", seed)
    cases = []
    for i in range(20):
        vocab = rng.randint(5, 60)
        width = 1 if i % 7 == 3 else rng.randint(2, 8)
        pad = 0 if i % 3 == 0 else rng.randint(1, vocab - 1)
        start = rng.choice([x for x in range(vocab) if x != pad])
        labels = _labels_tensor(rng, rng.randint(1, 4), vocab, width)
        cases.append({"labels": labels, "pad_token_id": pad, "decoder_start_token_id": start})
    return cases


def seq2seq_loss_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("seq2seq_loss", seed)
    gen = _generator(rng)
    cases = []
    for i in range(16):
        vocab = rng.randint(4, 12)
        rows = rng.randint(1, 4)
        labels = _labels_tensor(rng, rows, vocab, rng.randint(2, 7))
        if rows > 2 and i % 4 == 1:
            labels[rng.randrange(1, rows)] = IGNORE_INDEX  # a row of padding only
        # Large logits (some cases) make softmax underflow: log(softmax) gives -inf there.
        scale = 60.0 if i % 5 == 4 else rng.choice((0.5, 2.0, 5.0))
        logits = (torch.randn(*labels.shape, vocab, generator=gen) * scale).requires_grad_(True)
        cases.append({"logits": logits, "labels": labels})
    return cases


# --- ex3: decoding and WER --------------------------------------------------------------------


def greedy_decode_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("greedy_decode", seed)
    gen = _generator(rng)
    cases = []
    for i in range(24):
        vocab = rng.randint(5, 12)
        start, eos = rng.sample(range(vocab), 2)
        if i % 4 == 1:
            start = eos  # GPT-2: <|endoftext|> starts and ends
        max_new = (0, 1)[i] if i < 2 else rng.randint(1, 9)
        eos_at = rng.choice((None, 1, rng.randint(2, 10)))  # None: the model never says EOS
        decoder = ToyDecoder(
            table=torch.randn(vocab, vocab, generator=gen),
            by_length=torch.randn(12, vocab, generator=gen) * 1.5,
            eos_id=eos,
            eos_at=eos_at,
        )
        cases.append(
            {
                "next_token_logits": decoder,
                "start_id": start,
                "eos_id": eos,
                "max_new_tokens": max_new,
            }
        )
    return cases


def beam_step_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("beam_step", seed)
    gen = _generator(rng)
    cases = []
    for i in range(16):
        beams = rng.randint(1, 4)
        vocab = rng.randint(max(beams, 4), 10)
        start, length = rng.randint(0, vocab - 1), rng.randint(0, 3)
        tokens = [
            [start] + [rng.randint(0, vocab - 1) for _ in range(length)] for _ in range(beams)
        ]
        scores = (-torch.rand(beams, generator=gen) * 4 - 0.5).sort(descending=True).values
        if i % 4 == 0:  # the first step: only beam 0 is alive (generate gives the others -1e9)
            scores = torch.full((beams,), -1e9)
            scores[0] = 0.0
            tokens = [[start] for _ in range(beams)]
        logits = torch.randn(beams, vocab, generator=gen) * rng.choice((1.0, 3.0))
        cases.append(
            {"beam_tokens": tokens, "beam_scores": scores, "logits": logits, "num_beams": beams}
        )
    return cases


def _top_p_row_is_clear(row: torch.Tensor, p: float, margin: float = 2e-3) -> bool:
    """No token sits so close to the boundary that float rounding could decide it."""
    probs = row.double().softmax(-1).sort(descending=True).values
    before = probs.cumsum(-1) - probs
    finite = probs > 0
    return bool(((before - p).abs()[finite] >= margin).all())


def top_p_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("top_p", seed)
    gen = _generator(rng)
    cases = []
    while len(cases) < 20:
        i = len(cases)
        p = rng.choice((0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0))
        logits = torch.randn(rng.randint(1, 3), rng.randint(4, 12), generator=gen)
        logits = logits * rng.choice((0.5, 1.0, 2.0, 4.0))
        if i % 5 == 2:  # earlier filters left -inf logits: they stay dropped
            logits[:, rng.randrange(logits.shape[1])] = -float("inf")
        if all(_top_p_row_is_clear(row, p) for row in logits):
            cases.append({"logits": logits, "p": p})
    return cases


def _edit(rng: random.Random, words: list[str], vocabulary: list[str]) -> list[str]:
    words = list(words)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("substitute", "insert", "delete"))
        if kind == "insert" or not words:
            words.insert(rng.randrange(len(words) + 1), rng.choice(vocabulary))
        elif kind == "delete":
            del words[rng.randrange(len(words))]
        else:
            words[rng.randrange(len(words))] = rng.choice(vocabulary)
    return words


def _spaced(rng: random.Random, words: list[str]) -> str:
    """The words with messy whitespace: several spaces, a tab or newline, spaces at the ends."""
    gaps = [rng.choice((" ", "  ", "\t", " \n ", "   ")) for _ in words]
    text = "".join(w + g for w, g in zip(words, gaps, strict=True))
    return rng.choice(("", " ", "  ")) + text


def wer_cases(seed: int = PRACTICE_SEED) -> list[dict]:
    rng = _rng("wer", seed)
    cases = []
    for i in range(60):
        vocabulary = rng.sample(WORDS, rng.randint(3, 6))  # few words: alignments get tricky
        reference = [rng.choice(vocabulary) for _ in range(rng.randint(1, 8))]
        kind = i % 10 if i < 40 else 2  # 20 more random pairs: approximate alignments fail
        if kind == 0:
            hypothesis = list(reference)
        elif kind == 1:  # deletions only
            hypothesis = [w for w in reference if rng.random() < 0.6]
        elif kind in (2, 3, 4):  # independent random sentences: only a true edit distance is right
            hypothesis = [rng.choice(vocabulary) for _ in range(rng.randint(1, 9))]
        elif kind == 5:  # empty hypothesis, or an empty reference (N counts as 1, as in jiwer)
            hypothesis, reference = ([], reference) if i % 20 == 5 else (reference, [])
        else:
            hypothesis = _edit(rng, reference, vocabulary)
        if kind == 6:  # case matters: "The" is not "the" (the only difference)
            hypothesis = list(reference)
            word = rng.randrange(len(hypothesis))
            hypothesis[word] = hypothesis[word].capitalize()
        join = _spaced if kind in (7, 8) else (lambda _, words: " ".join(words))
        cases.append({"reference": join(rng, reference), "hypothesis": join(rng, hypothesis)})
    return cases


CASES = {
    "compose_config": compose_config_cases,
    "encoder_output_lengths": encoder_output_lengths_cases,
    "projection": projection_cases,
    "make_labels": make_labels_cases,
    "shift_tokens_right": shift_tokens_right_cases,
    "seq2seq_loss": seq2seq_loss_cases,
    "greedy_decode": greedy_decode_cases,
    "beam_step": beam_step_cases,
    "top_p": top_p_cases,
    "wer": wer_cases,
}
