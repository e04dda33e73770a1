"""compose_config == SpeechEncoderDecoderConfig.from_encoder_decoder_configs, for every family pair."""

import copy

import pytest
from tiny_models import decoder_configs, encoder_configs
from transformers import BertConfig, SpeechEncoderDecoderConfig

from s2t_edu import S2TEduError, compose_config, config_changes

PAIRS = [(e, d) for e in encoder_configs() for d in decoder_configs()]


@pytest.mark.parametrize("encoder_name,decoder_name", PAIRS)
def test_compose_config_equals_transformers(encoder_name, decoder_name):
    encoder, decoder = encoder_configs()[encoder_name], decoder_configs()[decoder_name]
    reference = SpeechEncoderDecoderConfig.from_encoder_decoder_configs(
        copy.deepcopy(encoder), copy.deepcopy(decoder)
    )
    ours = compose_config(encoder, decoder)
    assert ours.to_dict() == reference.to_dict()
    assert ours.decoder.is_decoder and ours.decoder.add_cross_attention


def test_compose_config_leaves_the_callers_decoder_config_alone():
    decoder = decoder_configs()["bert"]
    compose_config(encoder_configs()["hubert"], decoder)
    assert decoder.is_decoder is False and decoder.add_cross_attention is False


def test_config_changes_lists_exactly_the_two_decoder_flags():
    decoder = decoder_configs()["gpt2"]
    composed = compose_config(encoder_configs()["wav2vec2-group"], decoder)
    changes = config_changes(decoder, composed.decoder)
    assert set(changes) == {"add_cross_attention", "is_decoder"}
    assert all(after is True and not before for before, after in changes.values())


def test_text_model_as_encoder_is_refused_with_a_fix():
    with pytest.raises(S2TEduError, match="not a speech encoder") as error:
        compose_config(BertConfig(), decoder_configs()["bert"])
    assert "Fix:" in str(error.value)


def test_speech_encoder_as_decoder_is_refused_with_a_fix():
    with pytest.raises(S2TEduError, match="swap encoder and decoder"):
        compose_config(encoder_configs()["hubert"], encoder_configs()["wav2vec2-group"])
