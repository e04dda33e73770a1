"""Whisper tiny.en wrapped as a SpeechEncoderDecoderModel computes what Whisper computes."""

import pytest
import torch
from transformers import WhisperForConditionalGeneration

from s2t_edu.decoding import beam_search, greedy_decode
from s2t_edu.decoding.whisper import whisper_speech_encoder_decoder
from s2t_edu.errors import S2TEduError
from s2t_edu.pretrained.whisper import shorten_whisper_window
from s2t_edu.pretrained.zoo import resolve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def whisper():
    return WhisperForConditionalGeneration.from_pretrained(resolve("whisper-tiny.en")).eval()


def test_logits_equal_whispers_own(whisper):
    model = whisper_speech_encoder_decoder(whisper)
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    prompt = torch.tensor([[50257, 50362, 383, 3797]])
    with torch.no_grad():
        expected = whisper(input_features=features, decoder_input_ids=prompt).logits
        ours = model(input_features=features, decoder_input_ids=prompt).logits
    assert torch.allclose(ours, expected, atol=1e-5)
    assert model.generation_config.decoder_start_token_id == 50257


def test_short_window_survives_and_decoders_match_generate(whisper):
    def fresh():
        return WhisperForConditionalGeneration.from_pretrained(resolve("whisper-tiny.en")).eval()

    model = whisper_speech_encoder_decoder(fresh(), window_seconds=5)
    assert model.encoder.embed_positions.weight.shape[0] == 250
    shortened = shorten_whisper_window(fresh(), 5)
    # The composite's post_init must not have re-initialised the shortened positions.
    assert torch.equal(
        model.encoder.embed_positions.weight, shortened.model.encoder.embed_positions.weight
    )
    features = torch.randn(2, 80, 500, generator=torch.Generator().manual_seed(1))
    greedy = greedy_decode(model, features, max_new_tokens=6)
    assert torch.equal(greedy, model.generate(features, max_new_tokens=6, do_sample=False))
    beams = beam_search(model, features, 2, max_new_tokens=6)
    assert torch.equal(beams.sequences, model.generate(features, max_new_tokens=6, num_beams=2))


def test_a_mask_with_padding_is_refused(whisper):
    model = whisper_speech_encoder_decoder(whisper)
    hidden = torch.zeros(1, 4, 384)
    with pytest.raises(S2TEduError, match="cannot mask"):
        model.decoder(
            input_ids=torch.tensor([[50257]]),
            encoder_hidden_states=hidden,
            encoder_attention_mask=torch.tensor([[1, 1, 0, 0]]),
        )
