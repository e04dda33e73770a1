"""Config composition: how two stand-alone configs become one speech-to-text config.

Mirrors ``SpeechEncoderDecoderConfig.from_encoder_decoder_configs`` in transformers 5.x.
The whole trick is two flags on the *decoder*:

* ``is_decoder=True``          -> self-attention becomes causal (a token sees only its past);
* ``add_cross_attention=True`` -> every decoder layer gets a cross-attention block that reads
  the encoder's output frames. Without it the decoder never looks at the audio.

The encoder config is used as it is.
"""

from __future__ import annotations

import copy

from transformers import PreTrainedConfig, SpeechEncoderDecoderConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_MAPPING

from s2t_edu.errors import S2TEduError

SPEECH_INPUT_NAMES = ("input_values", "input_features")


def speech_input_name(encoder_config: PreTrainedConfig) -> str:
    """The tensor name the encoder reads: ``input_values`` (raw audio) or ``input_features`` (mels)."""
    try:
        model_class = MODEL_MAPPING[type(encoder_config)]
    except KeyError:
        raise S2TEduError(
            f"transformers has no base model for encoder config {type(encoder_config).__name__}",
            "use a speech encoder config such as Wav2Vec2Config, HubertConfig or WhisperConfig",
            seen=type(encoder_config).__name__,
        ) from None
    name = model_class.main_input_name
    if name not in SPEECH_INPUT_NAMES:
        raise S2TEduError(
            f"{type(encoder_config).__name__} is not a speech encoder: its model reads "
            f"`{name}`, not audio",
            "pass a speech encoder config (Wav2Vec2Config, HubertConfig, WhisperConfig, ...) "
            "as the encoder and the text model as the decoder",
            seen=encoder_config.model_type,
        )
    return name


def check_decoder_config(decoder_config: PreTrainedConfig) -> None:
    """Fail early, with a fix, if this config cannot be a text decoder (no causal LM class)."""
    if type(decoder_config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        hint = (
            "a speech encoder config" if hasattr(decoder_config, "conv_kernel") else "this config"
        )
        raise S2TEduError(
            f"{hint} ({type(decoder_config).__name__}) has no causal-LM model class in transformers, "
            "so it cannot generate text as a decoder",
            "use a text decoder config such as BertConfig, GPT2Config, RobertaConfig or BartConfig; "
            "did you swap encoder and decoder?",
            seen=decoder_config.model_type,
        )


def compose_config(
    encoder_config: PreTrainedConfig, decoder_config: PreTrainedConfig
) -> SpeechEncoderDecoderConfig:
    """Combine a speech encoder config and a text decoder config, as transformers does.

    Unlike ``from_encoder_decoder_configs`` we do not modify the caller's decoder config
    in place (transformers does): we change a copy.
    """
    speech_input_name(encoder_config)  # raises if the encoder is not a speech model
    check_decoder_config(decoder_config)

    decoder_config = copy.deepcopy(decoder_config)
    decoder_config.is_decoder = True  # causal self-attention
    decoder_config.add_cross_attention = True  # a cross-attention block per layer

    # Both sub-configs are stored as plain dicts and re-read, exactly like transformers does,
    # so the result serialises to the same JSON.
    return SpeechEncoderDecoderConfig(
        encoder=encoder_config.to_dict(), decoder=decoder_config.to_dict()
    )


def config_changes(before: PreTrainedConfig, after: PreTrainedConfig) -> dict[str, tuple]:
    """``{key: (before, after)}`` for every setting that composition changed (for diff tables)."""
    check_configs(before, after)
    old, new = before.to_dict(), after.to_dict()
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key) and not key.startswith("_")
    }


def check_configs(*configs) -> None:
    """Every argument a transformers config object (``.to_dict()`` is what gets compared)."""
    for config in configs:
        if not isinstance(config, PreTrainedConfig):
            raise S2TEduError(
                "expected transformers config objects",
                "pass configs, e.g. config_changes(decoder_config, model.config.decoder)",
                seen=type(config).__name__,
            )
