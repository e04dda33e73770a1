"""build_model: one builder for random, warm and half-warm composites; the same architecture as
transformers' own composition, pretrained parts loaded exactly, bad requests refused."""

import pytest
import torch
from tiny_models import decoder_configs, encoder_configs
from train_helpers import write_tiny_checkpoints
from transformers import (
    AutoModel,
    BertModel,
    SpeechEncoderDecoderConfig,
    SpeechEncoderDecoderModel,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from s2t_edu import S2TEduError, build_model
from s2t_edu.model import PARTS, speech_encoder_from_pretrained


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny-models"))


@pytest.mark.parametrize("encoder", ["wav2vec2-layer", "hubert", "data2vec-audio"])
@pytest.mark.parametrize("decoder", ["bert", "gpt2", "roberta", "bart"])
def test_random_model_has_transformers_architecture(encoder, decoder):
    """Same parameter names and shapes as SpeechEncoderDecoderModel(config=...) builds."""
    enc, dec = encoder_configs()[encoder], decoder_configs()[decoder]
    ours = build_model(enc, dec)
    config = SpeechEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    theirs = SpeechEncoderDecoderModel(config=config)
    shapes = {name: tuple(p.shape) for name, p in theirs.state_dict().items()}
    assert {name: tuple(p.shape) for name, p in ours.state_dict().items()} == shapes
    assert not ours.training


def test_whisper_encoder_is_built_encoder_only():
    model = build_model(encoder_configs()["whisper-encoder"], decoder_configs()["bert"])
    assert isinstance(model.encoder, WhisperEncoder)


def test_the_seed_makes_random_weights_reproducible():
    enc, dec = encoder_configs()["hubert"], decoder_configs()["bert"]
    a, b = build_model(enc, dec, seed=3).state_dict(), build_model(enc, dec, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = build_model(enc, dec, seed=4).state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def _loaded_equal(part, checkpoint_state, prefix=""):
    state = part.state_dict()
    return all(torch.equal(state[prefix + k], v) for k, v in checkpoint_state.items())


@pytest.mark.parametrize(
    "pretrained", [PARTS, ("encoder",), ("decoder",), ()], ids=["warm", "enc", "dec", "random"]
)
def test_pretrained_parts_load_their_weights_and_the_rest_start_random(tiny_dirs, pretrained):
    encoder_dir, decoder_dir = tiny_dirs
    # seed 7: the tiny checkpoints were themselves initialised from seed 0
    model = build_model(encoder_dir, decoder_dir, pretrained=pretrained, seed=7)
    whisper_encoder = speech_encoder_from_pretrained(encoder_dir).state_dict()
    assert isinstance(model.encoder, WhisperEncoder)
    encoder_same = all(
        torch.equal(model.encoder.state_dict()[k], v) for k, v in whisper_encoder.items()
    )
    assert encoder_same == ("encoder" in pretrained)
    bert = BertModel.from_pretrained(decoder_dir).state_dict()
    decoder_state = model.decoder.bert.state_dict()
    decoder_same = all(
        torch.equal(decoder_state[k], v) for k, v in bert.items() if k in decoder_state
    )
    assert decoder_same == ("decoder" in pretrained)
    # cross-attention is new in every arm: BERT checkpoints have none
    assert any("crossattention" in name for name, _ in model.decoder.named_parameters())


def test_plain_from_pretrained_encoder_would_be_a_whole_whisper(tiny_dirs):
    assert type(AutoModel.from_pretrained(tiny_dirs[0])).__name__ == "WhisperModel"
    assert isinstance(speech_encoder_from_pretrained(tiny_dirs[0]), WhisperEncoder)


def test_a_pretrained_part_needs_a_checkpoint_not_a_config():
    with pytest.raises(S2TEduError, match="given as a config"):
        build_model(encoder_configs()["hubert"], decoder_configs()["bert"], pretrained="encoder")


@pytest.mark.parametrize("pretrained", [("encoders",), ("encoder", "projection")])
def test_unknown_parts_are_refused(tiny_dirs, pretrained):
    with pytest.raises(S2TEduError, match="names the parts"):
        build_model(*tiny_dirs, pretrained=pretrained)
