"""doctor() finds each failure mode it has a check for -- and nothing on a healthy model.

Each check is triggered by the smallest change to a healthy composite; the gallery's own tests
(test_failure_modes.py) show that what the finding describes really happens.
"""

import pytest
import torch
from tiny_models import decoder_configs, encoder_configs, set_special_tokens, trocr_decoder_config
from transformers import (
    AutoModelForCausalLM,
    BertTokenizer,
    Seq2SeqTrainingArguments,
    SpeechEncoderDecoderModel,
)

from s2t_edu import build_model, compose_config, doctor
from s2t_edu.doctor import ADVICE, FAILURE_MODES, Finding, Kind, caught_entries


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


def _audio_batch(encoder_name, lengths=(4000, 2500)):
    """What a collator returns for two clips: right-padded audio (+ its mask) and labels."""
    if encoder_name == "whisper-encoder":
        return {"input_features": torch.randn(2, 16, 40), "labels": GOOD_LABELS}
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    batch = {"input_values": torch.randn(2, max(lengths)) * mask, "labels": GOOD_LABELS}
    if encoder_name != "wav2vec2-group" and encoder_name != "hubert":  # group norm: no mask
        batch["attention_mask"] = mask
    return batch


def _healthy_family(encoder_name, decoder_name):
    encoder_config = encoder_configs()[encoder_name]
    if encoder_config.model_type == "wav2vec2":
        encoder_config.layerdrop = 0.0  # the adapter reads it too (entry 7)
    if decoder_name == "trocr":
        decoder_config = trocr_decoder_config(cross_attention_hidden_size=None)
    else:
        decoder_config = decoder_configs()[decoder_name]
    return set_special_tokens(build_model(encoder_config, decoder_config))


def _good_training_args(tmp_path):
    return Seq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        remove_unused_columns=False,
        predict_with_generate=True,
        generation_max_length=32,
        report_to=[],
        use_cpu=True,
    )


@pytest.mark.parametrize("decoder_name", ["bert", "gpt2", "roberta", "bart", "trocr"])
@pytest.mark.parametrize("encoder_name", list(encoder_configs()))
def test_a_correctly_configured_composite_of_every_family_has_no_finding(
    encoder_name, decoder_name, tokenizer, tmp_path
):
    model = _healthy_family(encoder_name, decoder_name)
    findings = doctor(
        model,
        tokenizer,
        batch=_audio_batch(encoder_name),
        sampling_rate=16_000,
        training_args=_good_training_args(tmp_path),
        dataset_columns=["audio", "text"],
    )
    assert findings == [], [str(f) for f in findings]


def test_the_original_call_still_works(healthy, tokenizer):
    assert doctor(healthy, tokenizer, GOOD_LABELS) == []
    assert doctor(healthy) == []


def test_every_kind_has_advice_and_its_entry_is_in_the_gallery():
    assert set(ADVICE) == set(Kind)
    assert all(advice.entry in FAILURE_MODES for advice in ADVICE.values())
    assert all(mode.issues for mode in FAILURE_MODES.values())
    assert len(caught_entries()) >= 10


def test_a_finding_prints_its_entry_threads_and_fix(healthy):
    healthy.config.eos_token_id = None
    text = str(doctor(healthy)[0])
    assert text.startswith("[missing-eos]")
    assert "chapter 7, entry 4" in text and "transformers#18343" in text
    assert "fix: s2t_edu.set_special_ids(model, tokenizer)  # eos_token_id" in text


def test_a_finding_is_a_value_and_its_sentences_are_made_when_read():
    finding = Finding(Kind.SAMPLING_RATE, {"rate": 44_100, "expected": 16_000, "factor": 2.75625})
    assert finding == Finding(Kind.SAMPLING_RATE, dict(finding.seen))
    assert finding.entry == 8 and "44100 Hz" in finding.problem and "2.76x" in finding.problem


# --- the model and its configs -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["decoder_start_token_id", "pad_token_id", "eos_token_id"])
def test_missing_special_token(healthy, name):
    setattr(healthy.config, name, None)
    code = "missing-" + name.removesuffix("_token_id").replace("_", "-")
    findings = [f for f in doctor(healthy) if f.code == code]
    assert len(findings) == 1 and "set_special_ids(model, tokenizer)" in findings[0].fix
    assert name in findings[0].fix


def test_start_set_on_config_after_creation_does_not_reach_generate(healthy):
    healthy.generation_config.decoder_start_token_id = None
    healthy.generation_config.bos_token_id = None
    findings = [f for f in doctor(healthy) if f.kind is Kind.GENERATE_HAS_NO_START]
    assert len(findings) == 1 and "generation_config.decoder_start_token_id = 1" in findings[0].fix


def test_start_token_differs_between_training_and_generation(healthy):
    healthy.generation_config.decoder_start_token_id = 3
    assert "decoder-start-differs" in _codes(doctor(healthy))


def test_generate_falls_back_to_bos_and_doctor_compares_that(healthy):
    healthy.generation_config.decoder_start_token_id = None
    healthy.generation_config.bos_token_id = 5  # what generate() would start with
    findings = [f for f in doctor(healthy) if f.kind is Kind.DECODER_START_DIFFERS]
    assert len(findings) == 1 and "with 5" in findings[0].problem


def test_eos_missing_for_generate(healthy):
    healthy.generation_config.eos_token_id = None
    assert "generate-eos-missing" in _codes(doctor(healthy))
    healthy.generation_config.eos_token_id = 4
    assert "eos-differs" in _codes(doctor(healthy))


def test_pad_differs(healthy):
    healthy.generation_config.pad_token_id = 4
    assert "pad-differs" in _codes(doctor(healthy))


def test_generation_settings_left_in_model_config(healthy):
    healthy.config.num_beams = 4
    findings = [f for f in doctor(healthy) if f.kind is Kind.GENERATION_SETTINGS_IN_CONFIG]
    assert len(findings) == 1 and "'num_beams': 4" in findings[0].problem


def test_decoder_without_cross_attention():
    config = compose_config(encoder_configs()["hubert"], decoder_configs()["bert"])
    plain_decoder_config = decoder_configs()["bert"]
    plain_decoder_config.is_decoder = True  # causal, but no add_cross_attention
    decoder = AutoModelForCausalLM.from_config(plain_decoder_config)
    model = set_special_tokens(SpeechEncoderDecoderModel(config=config, decoder=decoder))
    assert "no-cross-attention" in _codes(doctor(model))
    # What the finding says happens: the composite is built, its first forward pass fails.
    with pytest.raises(ValueError, match="has to be instantiated with cross-attention layers"):
        model(input_values=torch.randn(1, 2000), decoder_input_ids=torch.tensor([[1, 5]]))


def test_tokenizer_larger_than_decoder_vocabulary(healthy, tokenizer):
    tokenizer.add_tokens(["newword1", "newword2"])
    assert "vocab-mismatch" in _codes(doctor(healthy, tokenizer))


def test_tokenizer_without_pad(healthy, tokenizer):
    tokenizer.pad_token = None
    assert "tokenizer-without-pad" in _codes(doctor(healthy, tokenizer))


def test_tokenizer_pads_with_another_id(healthy, tokenizer):
    healthy.config.pad_token_id = healthy.generation_config.pad_token_id = 4
    assert "pad-id-mismatch" in _codes(doctor(healthy, tokenizer))


def test_add_adapter_on_an_encoder_without_one():
    config = encoder_configs()["hubert"]
    config.add_adapter = True
    model = set_special_tokens(build_model(config, decoder_configs()["bert"]))
    assert _codes(doctor(model)) == {"adapter-ignored"}


def test_adapter_with_layerdrop():
    model = set_special_tokens(
        build_model(encoder_configs()["wav2vec2-adapter"], decoder_configs()["bert"])
    )
    assert model.config.encoder.layerdrop == 0.1  # transformers' default
    assert _codes(doctor(model)) == {"adapter-layerdrop"}


# --- the audio -------------------------------------------------------------------------------


def test_sampling_rate(healthy):
    assert doctor(healthy, sampling_rate=16_000) == []
    findings = doctor(healthy, sampling_rate=44_100)
    assert _codes(findings) == {"sampling-rate"} and "sampling_rate=16000" in findings[0].fix


def test_attention_mask_given_to_group_norm_wav2vec2():
    model = set_special_tokens(
        build_model(encoder_configs()["wav2vec2-group"], decoder_configs()["bert"])
    )
    assert doctor(model) == []
    assert "group-norm-attention-mask" in _codes(doctor(model, attention_mask=torch.ones(1, 4000)))


def test_whisper_inputs():
    model = set_special_tokens(
        build_model(encoder_configs()["whisper-encoder"], decoder_configs()["bert"])
    )
    assert _codes(doctor(model, attention_mask=torch.ones(1, 40))) == {"whisper-attention-mask"}
    batch = {"input_features": torch.randn(1, 16, 30)}
    assert _codes(doctor(model, batch=batch)) == {"whisper-window"}


def test_clips_shorter_than_the_receptive_field(healthy):
    batch = _audio_batch("wav2vec2-layer", lengths=(4000, 100))
    findings = doctor(healthy, batch=batch)
    assert _codes(findings) == {"clip-too-short"} and "[1]" in findings[0].problem


def test_clips_too_short_for_specaugment(healthy):
    assert healthy.config.encoder.mask_time_prob > 0  # transformers' default 0.05
    batch = _audio_batch("wav2vec2-layer", lengths=(4000, 600))  # 4 frames < mask_time_length 10
    findings = doctor(healthy, batch=batch)
    assert _codes(findings) == {"clip-too-short-for-masking"}
    healthy.config.encoder.mask_time_prob = 0.0
    assert doctor(healthy, batch=batch) == []


# --- the labels --------------------------------------------------------------------------------


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


def test_start_token_left_in_labels(healthy):
    labels = torch.tensor([[1, 5, 6, 2], [1, 7, 2, -100]])
    assert _codes(doctor(healthy, labels=labels)) == {"start-token-in-labels"}


def test_labels_longer_than_the_position_table(healthy):
    labels = torch.full((1, 600), 5)
    labels[0, -1] = 2
    assert healthy.config.decoder.max_position_embeddings == 512
    findings = doctor(healthy, labels=labels)
    assert "labels-too-long" in _codes(findings)


def test_decoder_inputs_equal_to_labels(healthy):
    batch = {"labels": GOOD_LABELS, "decoder_input_ids": GOOD_LABELS.clamp(min=0)}
    assert _codes(doctor(healthy, batch=batch)) == {"labels-not-shifted"}
    shifted = {"labels": GOOD_LABELS, "decoder_input_ids": torch.tensor([[1, 5, 6], [1, 7, 2]])}
    assert doctor(healthy, batch=shifted) == []


def test_targets_longer_than_generate_writes(healthy):
    labels = torch.tensor([[5] * 24 + [2]])  # 25 tokens; generate's default stops at 20
    findings = doctor(healthy, labels=labels)
    assert _codes(findings) == {"transcripts-cut"} and "at most 20 tokens" in findings[0].problem
    healthy.generation_config.max_new_tokens = 32
    assert doctor(healthy, labels=labels) == []


# --- the training arguments --------------------------------------------------------------------


def test_remove_unused_columns_with_raw_columns(healthy, tmp_path):
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    assert args.remove_unused_columns  # transformers' default
    findings = doctor(healthy, training_args=args, dataset_columns=["audio", "text"])
    assert "remove-unused-columns" in _codes(findings)
    assert "['audio', 'text']" in findings[0].problem
    # columns the model reads survive: nothing to report
    assert doctor(healthy, training_args=args, dataset_columns=["input_values", "labels"]) == []


def test_evaluation_with_generate_and_no_length(healthy, tmp_path):
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), report_to=[], use_cpu=True, predict_with_generate=True
    )
    assert "transcripts-cut" in _codes(doctor(healthy, training_args=args))


def test_layerdrop_in_distributed_training(healthy, tmp_path, monkeypatch):
    args = _good_training_args(tmp_path)
    assert healthy.config.encoder.layerdrop == 0.1
    assert doctor(healthy, training_args=args) == []  # one process: LayerDrop is harmless
    monkeypatch.setattr(Seq2SeqTrainingArguments, "world_size", property(lambda self: 2))
    assert _codes(doctor(healthy, training_args=args)) == {"layerdrop-ddp"}
    args.ddp_find_unused_parameters = True
    assert doctor(healthy, training_args=args) == []
