"""doctor() finds each classic misconfiguration -- and nothing on a healthy model."""

import pytest
import torch
from tiny_models import decoder_configs, encoder_configs, set_special_tokens
from transformers import AutoModelForCausalLM, BertTokenizer, SpeechEncoderDecoderModel

from s2t_edu import build_model, compose_config, doctor


def _codes(findings):
    return {finding.code for finding in findings}


@pytest.fixture
def healthy():
    return set_special_tokens(
        build_model(encoder_configs()["wav2vec2-layer"], decoder_configs()["bert"])
    )


@pytest.fixture
def tokenizer():
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"] + [f"w{i}" for i in range(94)]
    # transformers 5.x: pass the vocabulary as a dict (``vocab=``); a vocab_file path is ignored.
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab)})
    assert len(tokenizer) == 99 and tokenizer.pad_token_id == 0 and tokenizer.sep_token_id == 2
    return tokenizer


GOOD_LABELS = torch.tensor([[5, 6, 2], [7, 2, -100]])


def test_healthy_model_has_no_findings(healthy, tokenizer):
    assert doctor(healthy, tokenizer, GOOD_LABELS) == []


@pytest.mark.parametrize("name", ["decoder_start_token_id", "pad_token_id", "eos_token_id"])
def test_missing_special_token(healthy, name):
    setattr(healthy.config, name, None)
    code = "missing-" + name.removesuffix("_token_id").replace("_", "-")
    findings = [f for f in doctor(healthy) if f.code == code]
    assert len(findings) == 1 and "set_special_ids(model, tokenizer)" in findings[0].fix
    assert name in findings[0].fix


def test_start_token_differs_between_training_and_generation(healthy):
    healthy.generation_config.decoder_start_token_id = 3
    assert "decoder-start-differs" in _codes(doctor(healthy))


def test_pad_ids_left_in_labels(healthy):
    labels = torch.tensor([[5, 6, 2], [7, 2, 0]])  # 0 = pad instead of -100
    assert "pad-in-labels" in _codes(doctor(healthy, labels=labels))


def test_eos_equal_to_pad_is_not_mistaken_for_padding(healthy):
    healthy.config.pad_token_id = healthy.generation_config.pad_token_id = 2  # GPT-2 style
    assert doctor(healthy, labels=GOOD_LABELS) == []


def test_labels_without_eos(healthy):
    labels = torch.tensor([[5, 6, 7], [7, 2, -100]])
    findings = [f for f in doctor(healthy, labels=labels) if f.code == "labels-without-eos"]
    assert len(findings) == 1 and "[0]" in findings[0].problem  # names the offending row


def test_attention_mask_given_to_group_norm_wav2vec2():
    model = set_special_tokens(
        build_model(encoder_configs()["wav2vec2-group"], decoder_configs()["bert"])
    )
    assert doctor(model) == []
    assert "group-norm-attention-mask" in _codes(doctor(model, attention_mask=torch.ones(1, 4000)))


def test_decoder_without_cross_attention():
    config = compose_config(encoder_configs()["hubert"], decoder_configs()["bert"])
    plain_decoder_config = decoder_configs()["bert"]
    plain_decoder_config.is_decoder = True  # causal, but no add_cross_attention
    decoder = AutoModelForCausalLM.from_config(plain_decoder_config)
    model = SpeechEncoderDecoderModel(config=config, decoder=decoder)
    set_special_tokens(model)
    assert "no-cross-attention" in _codes(doctor(model))
    # What the finding says happens: the composite is built, its first forward pass fails.
    with pytest.raises(ValueError, match="has to be instantiated with cross-attention layers"):
        model(input_values=torch.randn(1, 2000), decoder_input_ids=torch.tensor([[1, 5]]))


def test_tokenizer_larger_than_decoder_vocabulary(healthy, tokenizer):
    tokenizer.add_tokens(["newword1", "newword2"])
    assert "vocab-mismatch" in _codes(doctor(healthy, tokenizer))


def test_tokenizer_pads_with_another_id(healthy, tokenizer):
    healthy.config.pad_token_id = healthy.generation_config.pad_token_id = 4
    assert "pad-id-mismatch" in _codes(doctor(healthy, tokenizer))


def test_findings_print_problem_and_fix(healthy):
    healthy.config.eos_token_id = None
    text = str(doctor(healthy)[0])
    assert (
        text.startswith("[missing-eos]")
        and "fix: s2t_edu.set_special_ids(model, tokenizer)  # eos_token_id" in text
    )
