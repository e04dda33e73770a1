"""Building a ``SpeechEncoderDecoderModel``: the one builder every notebook, test and CLI uses.

Each part (speech encoder, text decoder) starts either from pretrained weights or at random
from its config, whichever the experiment needs::

    build_model(encoder_config, decoder_config)                           # all random
    build_model("whisper-tiny.en", "minilm-l6", pretrained=PARTS)          # warm start
    build_model("whisper-tiny.en", "minilm-l6", pretrained=("encoder",))   # encoder only

Names go through :func:`~s2t_edu.pretrained.zoo.resolve` (zoo names offline, hub ids online).
Two traps are handled here once:

- ``SpeechEncoderDecoderModel(config=...)`` and ``from_encoder_decoder_pretrained`` create the
  encoder with ``AutoModel``. For wav2vec2-like encoders that is the bare encoder, as wanted;
  for Whisper it is ``WhisperModel`` -- encoder *and* Whisper's own decoder -- which cannot
  run as the speech encoder. So the encoder is always built (or loaded) encoder-only here.
- A pretrained decoder is loaded by ``from_encoder_decoder_pretrained``, which turns on
  ``is_decoder`` and ``add_cross_attention``: cross-attention layers the checkpoint lacks
  start random (BERT, GPT-2); a checkpoint that has them (a BART decoder) brings its own.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    GenerationConfig,
    PreTrainedConfig,
    SpeechEncoderDecoderConfig,
    SpeechEncoderDecoderModel,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from s2t_edu.config import compose_config
from s2t_edu.errors import S2TEduError
from s2t_edu.pretrained.zoo import resolve

PARTS = ("encoder", "decoder")  # what ``pretrained=`` may name


@contextlib.contextmanager
def explained_load_errors(name):
    """Turn a failed load (missing file, offline hub, damaged JSON or weights) into one clear error."""
    try:
        yield
    except (OSError, SafetensorError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise S2TEduError(
            f"cannot load the checkpoint ({type(error).__name__}: {first_line[:200]})",
            "pass a zoo name (s2t_edu.pretrained.catalog()) or a directory written by "
            "save_pretrained, complete and undamaged (config.json, model.safetensors); hub ids "
            "need the network",
            seen=repr(str(name)),
        ) from error


def speech_encoder_from_config(encoder_config):
    """A randomly initialised encoder-only model for this speech encoder config."""
    if encoder_config.model_type == "whisper":
        return WhisperEncoder(encoder_config)
    return AutoModel.from_config(encoder_config)


def speech_encoder_from_pretrained(name: str):
    """The pretrained speech encoder of ``name``, encoder-only (Whisper: its ``WhisperEncoder``).

    Why not plain ``from_encoder_decoder_pretrained(resolve("whisper-tiny.en"), ...)``? It loads
    the encoder with ``AutoModel``, which for a Whisper checkpoint is ``WhisperModel``: encoder
    *and* decoder, and its forward then fails (``You cannot specify both decoder_input_ids and
    decoder_inputs_embeds``) because a WhisperModel needs decoder inputs of its own. So the
    checkpoint is loaded in full and only its encoder part (``get_encoder()``) is kept.
    """
    with explained_load_errors(name):
        model = AutoModel.from_pretrained(resolve(name))
    return model.get_encoder() if model.config.is_encoder_decoder else model


def check_pretrained_parts(encoder, decoder, pretrained) -> tuple[str, ...]:
    """``pretrained`` as a tuple of part names; a pretrained part must be given by name."""
    pretrained = (pretrained,) if isinstance(pretrained, str) else tuple(pretrained)
    unknown = [part for part in pretrained if part not in PARTS]
    if unknown:
        raise S2TEduError(
            "pretrained= names the parts that start from pretrained weights",
            f"use a subset of {PARTS}, e.g. pretrained=('encoder', 'decoder')",
            unknown,
        )
    for part, source in zip(PARTS, (encoder, decoder), strict=True):
        if part in pretrained and isinstance(source, PreTrainedConfig):
            raise S2TEduError(
                f"the {part} is to be pretrained but was given as a config, which has no weights",
                f"pass the {part}'s checkpoint name or directory instead",
                type(source).__name__,
            )
    return pretrained


def _config_of(source) -> PreTrainedConfig:
    if isinstance(source, PreTrainedConfig):
        return source
    with explained_load_errors(source):
        return AutoConfig.from_pretrained(resolve(source))


def build_model(
    encoder, decoder, *, pretrained=(), seed: int | None = 0
) -> SpeechEncoderDecoderModel:
    """A ``SpeechEncoderDecoderModel`` (in eval mode) from a speech encoder and a text decoder.

    ``encoder`` / ``decoder``: a config, or a checkpoint name (zoo name, directory or hub id).
    ``pretrained``: the parts (``"encoder"``, ``"decoder"``) that load their weights; the
    others start at random from their config, seeded by ``seed`` (None: not seeded).
    """
    pretrained = check_pretrained_parts(encoder, decoder, pretrained)
    if seed is not None:
        torch.manual_seed(seed)
    if "encoder" in pretrained:
        speech = speech_encoder_from_pretrained(encoder)
    else:
        speech = speech_encoder_from_config(_config_of(encoder))
    if "decoder" in pretrained:
        with explained_load_errors(decoder):
            model = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
                None, resolve(decoder), encoder_model=speech
            )
    else:
        config = compose_config(speech.config, _config_of(decoder))
        text = AutoModelForCausalLM.from_config(config.decoder)
        model = SpeechEncoderDecoderModel(config=config, encoder=speech, decoder=text)
    return model.eval()


def _tied_to_loaded(model, missing: list[str], loaded: set[str]) -> set[str]:
    """Missing keys that share storage with a loaded parameter (tied weights are saved once)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    names_by_storage: dict[int, set[str]] = {}
    for name, param in params.items():
        names_by_storage.setdefault(param.data_ptr(), set()).add(name)
    return {k for k in missing if k in params and names_by_storage[params[k].data_ptr()] & loaded}


def load_speech_encoder_decoder(path: str | Path) -> SpeechEncoderDecoderModel:
    """Load a saved ``SpeechEncoderDecoderModel`` exactly, whatever its encoder (in eval mode).

    ``save_pretrained`` stores everything correctly; plain ``from_pretrained`` does not read it
    back for an encoder taken from an encoder-decoder model: it rebuilds the encoder from its
    config with ``AutoModel`` (Whisper: a full ``WhisperModel``), whose keys
    (``encoder.encoder.*``) do not match the saved ``encoder.*``, so the pretrained encoder is
    replaced by random weights (transformers logs it only as a LOAD REPORT of missing and
    unexpected keys). Here the encoder is rebuilt encoder-only, and every
    saved tensor must find its place (a mismatch raises instead of warning).
    """
    path = Path(resolve(str(path)))
    with explained_load_errors(path):
        config = SpeechEncoderDecoderConfig.from_pretrained(path)
    encoder = speech_encoder_from_config(config.encoder)  # encoder-only, Whisper included
    decoder = AutoModelForCausalLM.from_config(config.decoder)
    model = SpeechEncoderDecoderModel(config=config, encoder=encoder, decoder=decoder)
    with explained_load_errors(path):
        state = load_file(path / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    model.tie_weights()
    untied = set(missing) - _tied_to_loaded(model, missing, set(state))
    if unexpected or untied:
        raise S2TEduError(
            "the saved weights do not fit the model rebuilt from its config",
            "save with model.save_pretrained(path) from a model built by s2t_edu or transformers",
            f"missing {sorted(untied)[:5]}, unexpected {sorted(unexpected)[:5]}",
        )
    if (path / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(path)
    return model.eval()
