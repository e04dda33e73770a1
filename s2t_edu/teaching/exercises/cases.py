"""Hidden test cases: random, small, and the same on every run (fixed seeds).

Each generator returns a list of keyword-argument dicts for the student's function. The
cases are built so that every classic mistake of mistakes.py changes at least one answer
(an adapter case for "forgot the adapter", a GPT-2-style pad == EOS case for "masked EOS", ...).
"""

from __future__ import annotations

import random

import torch
from transformers import (
    BertConfig,
    GPT2Config,
    HubertConfig,
    RobertaConfig,
    Wav2Vec2Config,
    WhisperConfig,
)

from s2t_edu.config import compose_config
from s2t_edu.labels import IGNORE_INDEX
from s2t_edu.teaching.exercises.references import ToyDecoder

WORDS = "the a cat dog sat on mat big red ran fast slowly over under house tree".split()


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _wav2vec2(rng: random.Random, hidden: int, **extra) -> Wav2Vec2Config:
    layers = rng.randint(2, 4)
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        conv_dim=(8,) * layers,
        conv_kernel=tuple(rng.choice((2, 3, 5, 10)) for _ in range(layers)),
        conv_stride=tuple(rng.choice((2, 3, 5)) for _ in range(layers)),
        **extra,
    )


def config_cases(seed: int = 101) -> list[dict]:
    rng = random.Random(seed)
    encoders = [
        lambda h: _wav2vec2(rng, h),
        lambda h: HubertConfig(hidden_size=h, num_hidden_layers=1, num_attention_heads=2),
        lambda h: WhisperConfig(d_model=h, encoder_layers=1, decoder_layers=1),
    ]
    decoders = [
        lambda h: BertConfig(hidden_size=h, num_hidden_layers=1, num_attention_heads=2),
        lambda h: GPT2Config(n_embd=h, n_layer=1, n_head=2),
        lambda h: RobertaConfig(hidden_size=h, num_hidden_layers=1, num_attention_heads=2),
    ]
    return [
        {
            "encoder_config": encoders[i % 3](rng.choice((32, 48))),
            "decoder_config": decoders[(i // 3) % 3](rng.choice((32, 64))),
        }
        for i in range(6)
    ]


def length_cases(seed: int = 202) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    for i in range(12):
        adapter = i % 2 == 1
        extra = (
            dict(
                add_adapter=True,
                num_adapter_layers=rng.randint(1, 3),
                adapter_stride=rng.choice((2, 3)),
                adapter_kernel_size=3,
            )
            if adapter
            else {}
        )
        config = _wav2vec2(rng, 32, **extra)
        lengths = [rng.randint(0, 12)] + [rng.randint(200, 40_000) for _ in range(4)]
        cases.append({"encoder_config": config, "input_lengths": torch.tensor(lengths)})
    return cases


def projection_cases(seed: int = 303) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    for i in range(12):
        kind = i % 4  # 0: widths differ, 1: equal, 2: cross_attention_hidden_size, 3: adapter width
        encoder_width, decoder_width = rng.choice(((32, 64), (48, 32), (64, 48)))
        extra, decoder_extra = {}, {}
        if kind == 1:
            decoder_width = encoder_width
        if kind == 2:
            decoder_extra = {"cross_attention_hidden_size": encoder_width}
        if kind == 3:
            extra = dict(add_adapter=True, output_hidden_size=decoder_width, num_adapter_layers=1)
        encoder = _wav2vec2(rng, encoder_width, **extra)
        decoder = BertConfig(
            hidden_size=decoder_width, num_hidden_layers=1, num_attention_heads=2, **decoder_extra
        )
        cases.append({"config": compose_config(encoder, decoder)})
    return cases


def labels_cases(seed: int = 404) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    for i in range(10):
        gpt2_style = i % 2 == 1  # GPT-2 has no pad token: pad = EOS
        eos, start = rng.randint(3, 9), rng.randint(10, 19)
        pad = eos if gpt2_style else rng.randint(0, 2)
        lengths = [rng.randint(1, 6) for _ in range(3)]
        lengths[rng.randrange(3)] = max(lengths) + 1  # always some padding
        token_lists = [[rng.randint(20, 60) for _ in range(n)] for n in lengths]
        cases.append(
            {
                "token_lists": token_lists,
                "pad_token_id": pad,
                "eos_token_id": eos,
                "decoder_start_token_id": start,
            }
        )
    return cases


def _labels_tensor(rng: random.Random, rows: int, vocab: int, pad_some: bool = True):
    width = rng.randint(4, 8)
    labels = []
    for _ in range(rows):
        n = rng.randint(2, width) if pad_some else width
        labels.append([rng.randint(3, vocab - 1) for _ in range(n)] + [IGNORE_INDEX] * (width - n))
    labels[0] = [rng.randint(3, vocab - 1) for _ in range(width)]  # one row without padding
    if rows > 1:
        labels[1][-1] = IGNORE_INDEX  # and one with
    return torch.tensor(labels)


def shift_cases(seed: int = 505) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "labels": _labels_tensor(rng, rng.randint(2, 4), 50),
            "pad_token_id": rng.randint(0, 2),
            "decoder_start_token_id": rng.randint(50, 60),
        }
        for _ in range(10)
    ]


def loss_cases(seed: int = 606) -> list[dict]:
    rng, gen = random.Random(seed), _generator(seed)
    cases = []
    for _ in range(8):
        vocab = rng.randint(5, 12)
        labels = _labels_tensor(rng, rng.randint(2, 4), vocab)
        # uneven padding so that averaging per sentence differs from averaging per token
        logits = torch.randn(*labels.shape, vocab, generator=gen) * 2
        cases.append({"logits": logits, "labels": labels})
    return cases


def greedy_cases(seed: int = 707) -> list[dict]:
    rng, gen = random.Random(seed), _generator(seed)
    cases = []
    for i in range(8):
        vocab = rng.randint(6, 12)
        eos, start = 2, 1
        max_new = rng.randint(5, 9)
        eos_at = None if i % 4 == 3 else rng.randint(2, max_new)  # some models never say EOS
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


def beam_cases(seed: int = 808) -> list[dict]:
    rng, gen = random.Random(seed), _generator(seed)
    cases = []
    for _ in range(8):
        beams, vocab = rng.randint(2, 4), rng.randint(5, 10)
        length = rng.randint(1, 3)
        tokens = [[1] + [rng.randint(3, vocab - 1) for _ in range(length)] for _ in range(beams)]
        scores = (-torch.rand(beams, generator=gen) * 4 - 0.5).sort(descending=True).values
        logits = torch.randn(beams, vocab, generator=gen) * 3
        cases.append(
            {"beam_tokens": tokens, "beam_scores": scores, "logits": logits, "num_beams": beams}
        )
    return cases


def top_p_cases(seed: int = 909) -> list[dict]:
    rng, gen = random.Random(seed), _generator(seed)
    return [
        {
            "logits": torch.randn(rng.randint(1, 3), rng.randint(6, 12), generator=gen) * 2,
            "p": rng.choice((0.5, 0.7, 0.8, 0.9)),
        }
        for _ in range(10)
    ]


def _edit(rng: random.Random, words: list[str]) -> list[str]:
    words = list(words)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("substitute", "insert", "insert", "delete"))
        if kind == "insert" or len(words) < 2:
            words.insert(rng.randrange(len(words) + 1), rng.choice(WORDS))
        elif kind == "delete":
            del words[rng.randrange(1, len(words) - 1) if len(words) > 2 else 0]
        else:
            words[rng.randrange(len(words))] = rng.choice(WORDS)
    return words


def wer_cases(seed: int = 1010) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    for i in range(12):
        reference = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
        if i == 0:
            hypothesis = reference
        elif i % 3 == 1:  # deletions only: a hypothesis shorter than the reference
            hypothesis = list(reference)
            for _ in range(rng.randint(1, 2)):
                del hypothesis[rng.randrange(len(hypothesis))]
        else:
            hypothesis = _edit(rng, reference)
        cases.append({"reference": " ".join(reference), "hypothesis": " ".join(hypothesis)})
    return cases
