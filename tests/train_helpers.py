"""Tiny checkpoints on disk for training tests: a Whisper-style encoder and a BERT decoder.

They stand in for the zoo's whisper-tiny.en and minilm-l6 (same tokenizer, same kinds of
model, widths 48 and 32 so the enc_to_dec projection is exercised), and train in milliseconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertModel,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)


def write_tiny_checkpoints(root: Path) -> tuple[str, str]:
    """Save a tiny Whisper and a tiny BERT (MiniLM's tokenizer) under ``root``; their dirs."""
    from s2t_edu.pretrained.zoo import resolve

    encoder_dir, decoder_dir = Path(root) / "tiny-whisper", Path(root) / "tiny-bert"
    torch.manual_seed(0)
    whisper = WhisperForConditionalGeneration(
        WhisperConfig(
            d_model=48, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100,
            max_source_positions=1500, dropout=0.1, pad_token_id=0, bos_token_id=1,
            eos_token_id=2, decoder_start_token_id=1, begin_suppress_tokens=None,
            suppress_tokens=None,
        )
    )  # fmt: skip
    whisper.save_pretrained(encoder_dir)
    WhisperFeatureExtractor().save_pretrained(encoder_dir)
    bert = BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    )
    bert.save_pretrained(decoder_dir)
    minilm = Path(resolve("minilm-l6"))
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (minilm / name).is_file():
            shutil.copy(minilm / name, decoder_dir / name)
    return str(encoder_dir), str(decoder_dir)
