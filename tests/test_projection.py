"""projection_needed / build_projection == the enc_to_dec_proj transformers creates."""

import pytest
import torch
from tiny_models import decoder_configs, encoder_configs, trocr_decoder_config
from transformers import SpeechEncoderDecoderModel

from s2t_edu import S2TEduError, build_model, build_projection, compose_config, projection_needed

PAIRS = [(e, d) for e in encoder_configs() for d in decoder_configs()]


@pytest.mark.parametrize("encoder_name,decoder_name", PAIRS)
def test_projection_matches_the_model(encoder_name, decoder_name):
    config = compose_config(encoder_configs()[encoder_name], decoder_configs()[decoder_name])
    model = build_model(encoder_configs()[encoder_name], decoder_configs()[decoder_name])
    assert projection_needed(config) == hasattr(model, "enc_to_dec_proj")
    ours = build_projection(config)
    if ours is None:
        assert not hasattr(model, "enc_to_dec_proj")
    else:
        assert ours.weight.shape == model.enc_to_dec_proj.weight.shape
        assert ours.bias.shape == model.enc_to_dec_proj.bias.shape


def test_projection_maps_encoder_width_to_decoder_width():
    config = compose_config(encoder_configs()["hubert"], decoder_configs()["bert"])
    projection = build_projection(config)
    assert (projection.in_features, projection.out_features) == (32, 40)


def test_same_width_needs_no_projection():
    config = compose_config(encoder_configs()["hubert"], decoder_configs()["gpt2"])  # 32 and 32
    assert not projection_needed(config) and build_projection(config) is None


def test_cross_attention_hidden_size_replaces_the_projection():
    encoder = encoder_configs()["hubert"]  # width 32; TrOCR decoder width 24
    config = compose_config(encoder, trocr_decoder_config(cross_attention_hidden_size=32))
    model = build_model(encoder, trocr_decoder_config(cross_attention_hidden_size=32))
    assert not projection_needed(config) and not hasattr(model, "enc_to_dec_proj")
    # ... and the decoder's cross-attention really reads 32-wide frames:
    with torch.no_grad():
        frames = torch.randn(1, 5, 32)
        out = model.decoder(input_ids=torch.tensor([[1, 5]]), encoder_hidden_states=frames)
    assert out.logits.shape == (1, 2, 99)


def test_mismatched_cross_attention_hidden_size_is_refused_like_transformers():
    encoder, decoder = (
        encoder_configs()["hubert"],
        trocr_decoder_config(cross_attention_hidden_size=16),
    )
    config = compose_config(encoder, decoder)
    with pytest.raises(S2TEduError, match="cross_attention_hidden_size"):
        projection_needed(config)
    with pytest.raises(ValueError, match="cross_attention_hidden_size"):
        SpeechEncoderDecoderModel(config=config)
