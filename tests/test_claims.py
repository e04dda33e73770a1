"""Every sentence the course says about how transformers, Whisper, wav2vec2, BERT or decoding
behaves, checked on the pinned stack: one test per claim, named after it.

Each docstring quotes the claim and says where the course makes it. When an upgrade changes a
behaviour, the test fails and the sentence gets rewritten, instead of quietly becoming false.
Claims that a notebook cell demonstrates right beside the sentence are checked here too when
a later version could silently change them.
"""

import inspect
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import decoder_configs, encoder_configs, set_special_tokens
from train_helpers import write_tiny_checkpoints
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertLMHeadModel,
    BertModel,
    GenerationConfig,
    GPT2Config,
    HubertConfig,
    HubertModel,
    LogitsProcessorList,
    RobertaConfig,
    SpeechEncoderDecoderConfig,
    SpeechEncoderDecoderModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForCausalLM,
    WhisperModel,
    WhisperTokenizer,
)

import s2t_edu
from s2t_edu import config_changes, encoder_output_lengths, minimum_input_length
from s2t_edu.decoding.loop import cached_step, encoder_memory, new_cache
from s2t_edu.pretrained import resolve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

DECODER_FAMILIES = {
    "bert": BertConfig,
    "gpt2": GPT2Config,
    "roberta": RobertaConfig,
    "bart": BartConfig,
}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny-models"))


def _tiny_whisper(**overrides):
    config = dict(
        d_model=48, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, vocab_size=100,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
    )  # fmt: skip
    return WhisperModel(WhisperConfig(**{**config, **overrides}))


# ---------------------------------------------------------------- chapter 1: composition
@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_composition_changes_exactly_is_decoder_and_add_cross_attention(family):
    """01: "Only two flags on the decoder change" (is_decoder, add_cross_attention), and the
    encoder config is kept as it is — for every decoder family the course uses."""
    decoder = DECODER_FAMILIES[family]
    config = SpeechEncoderDecoderConfig.from_encoder_decoder_configs(Wav2Vec2Config(), decoder())
    assert set(config_changes(decoder(), config.decoder)) == {"is_decoder", "add_cross_attention"}
    assert config.decoder.is_decoder and config.decoder.add_cross_attention
    assert config_changes(Wav2Vec2Config(), config.encoder) == {}


def test_from_encoder_decoder_configs_changes_the_callers_decoder_config_in_place():
    """01: "unlike transformers, [compose_config] does not modify the caller's decoder config"."""
    decoder = BertConfig()
    SpeechEncoderDecoderConfig.from_encoder_decoder_configs(Wav2Vec2Config(), decoder)
    assert decoder.is_decoder and decoder.add_cross_attention
    untouched = BertConfig()
    s2t_edu.compose_config(Wav2Vec2Config(), untouched)
    assert not untouched.is_decoder and not untouched.add_cross_attention


def test_the_composite_holds_a_bare_encoder_and_the_decoders_causal_lm_class():
    """01: the encoder becomes a bare Wav2Vec2Model (no CTC head) and the decoder
    BertLMHeadModel, BERT with a language-modelling head."""
    config = s2t_edu.compose_config(encoder_configs()["wav2vec2-layer"], decoder_configs()["bert"])
    model = SpeechEncoderDecoderModel(config=config)
    assert type(model.encoder) is Wav2Vec2Model
    assert type(model.decoder) is BertLMHeadModel


def test_a_decoder_without_cross_attention_is_accepted_then_fails_at_the_first_forward():
    """01/04/doctor: without cross-attention layers "transformers builds the model, but its
    first forward pass raises ValueError"."""
    decoder_config = decoder_configs()["bert"]
    decoder_config.is_decoder = True  # causal, but no add_cross_attention
    model = SpeechEncoderDecoderModel(
        encoder=AutoModel.from_config(encoder_configs()["hubert"]),
        decoder=AutoModelForCausalLM.from_config(decoder_config),
    )
    with pytest.raises(ValueError, match="has to be instantiated with cross-attention layers"):
        model(input_values=torch.randn(1, 2000), decoder_input_ids=torch.tensor([[1, 5]]))


def test_bert_decoder_checkpoints_have_no_cross_attention_so_it_starts_random(tmp_path):
    """01/04: "neither wav2vec2 nor BERT had them": warm-starting from a BERT checkpoint
    reports every cross-attention tensor as missing (newly initialised)."""
    BertModel(decoder_configs()["bert"]).save_pretrained(tmp_path)
    _, info = BertLMHeadModel.from_pretrained(
        tmp_path, is_decoder=True, add_cross_attention=True, output_loading_info=True
    )
    cross = [k for k in info["missing_keys"] if "crossattention" in k]
    assert cross and all(".crossattention." in k for k in cross)


def test_a_bart_decoder_checkpoint_brings_its_cross_attention(tmp_path):
    """01/04: "a decoder checkpoint that already has cross-attention (BART, mBART, Marian
    decoders) brings it pretrained": its encoder_attn tensors are loaded, not new."""
    torch.manual_seed(0)
    bart = BartForConditionalGeneration(decoder_configs()["bart"])
    bart.save_pretrained(tmp_path / "bart")
    AutoModel.from_config(encoder_configs()["hubert"]).save_pretrained(tmp_path / "hubert")
    model = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
        str(tmp_path / "hubert"), str(tmp_path / "bart")
    )
    cross = {k: v for k, v in model.decoder.state_dict().items() if "encoder_attn" in k}
    reference = bart.state_dict()
    assert cross and all(torch.equal(v, reference[k]) for k, v in cross.items())


def test_encoder_last_hidden_state_is_the_projected_tensor():
    """01: "encoder_last_hidden_state is 384 wide, not 256: in transformers 5.x it is the
    tensor after the projection" (transformers PR #16586)."""
    encoder = Wav2Vec2Config(**{**encoder_configs()["wav2vec2-layer"].to_dict(), "hidden_size": 32})
    decoder = BertConfig(**{**decoder_configs()["bert"].to_dict(), "hidden_size": 40})
    model = s2t_edu.build_model(encoder, decoder)
    with torch.no_grad():
        out = model(input_values=torch.randn(1, 4000), decoder_input_ids=torch.tensor([[1]]))
    assert out.encoder_last_hidden_state.shape[-1] == 40


# ---------------------------------------------------------------- chapter 2: the forward pass
def test_wav2vec2_feature_extractor_normalises_each_clip_to_zero_mean_unit_variance():
    """02: "the raw 16 kHz samples, normalised to zero mean and unit variance per clip"."""
    extractor = Wav2Vec2FeatureExtractor()
    clips = [np.random.default_rng(0).normal(3.0, 5.0, 16_000), np.linspace(-1, 7, 8_000)]
    for clip in clips:
        values = extractor(clip, sampling_rate=16_000).input_values[0]
        assert abs(values.mean()) < 1e-5 and abs(values.std() - 1) < 1e-3


def test_wav2vec2_frames_are_20_ms_apart_and_25_ms_wide():
    """02: "16 000 samples become 49 frames: one frame every 20 ms, each seeing 25 ms"."""
    config = Wav2Vec2Config()
    assert int(encoder_output_lengths(config, 16_000)) == 49
    assert minimum_input_length(config) == 400  # 25 ms at 16 kHz
    assert math.prod(config.conv_stride) == 320  # 20 ms at 16 kHz
    with torch.no_grad():
        frames = Wav2Vec2Model(config).eval()(torch.randn(1, 16_000)).last_hidden_state
    assert frames.shape[1] == 49


@pytest.mark.parametrize("config_class", [Wav2Vec2Config, HubertConfig])
def test_base_style_configs_group_norm_each_channel_over_the_whole_time_axis(config_class):
    """02: wav2vec2-base and HuBERT-base "normalise the first conv layer with group norm: the
    statistics are taken over the whole time axis, padding included" (their default config)."""
    config = config_class(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                          intermediate_size=37, conv_dim=(16,) * 7)  # fmt: skip
    assert config.feat_extract_norm == "group"
    model = (Wav2Vec2Model if config_class is Wav2Vec2Config else HubertModel)(config)
    norm = model.feature_extractor.conv_layers[0].layer_norm
    assert isinstance(norm, torch.nn.GroupNorm)
    assert norm.num_groups == norm.num_channels  # one group per channel: stats over time only


def test_padding_changes_group_norm_frames_even_with_a_mask_but_not_layer_norm_frames():
    """02: "With layer norm, the mask makes padding invisible ... With group norm, padding
    changes the frames whatever you do" (transformers PR #10117)."""
    clip = torch.randn(1, 3000)
    padded = torch.cat([clip, torch.zeros(1, 2000)], dim=1)
    mask = torch.cat([torch.ones(1, 3000), torch.zeros(1, 2000)], dim=1).long()
    for name, invisible in (("wav2vec2-layer", True), ("wav2vec2-group", False)):
        torch.manual_seed(0)
        model = Wav2Vec2Model(encoder_configs()[name]).eval()
        n = int(encoder_output_lengths(model.config, 3000))
        with torch.no_grad():
            alone = model(clip).last_hidden_state
            masked = model(padded, attention_mask=mask).last_hidden_state[:, :n]
        assert torch.allclose(alone, masked, atol=1e-4) == invisible, name


def test_cross_entropy_ignores_minus_100_by_default():
    """02/labels: "-100 ... the value PyTorch's cross-entropy ignores" (its default
    ignore_index): such positions neither cost nor count in the mean."""
    assert inspect.signature(torch.nn.CrossEntropyLoss).parameters["ignore_index"].default == -100
    logits = torch.randn(3, 5)
    full = torch.nn.functional.cross_entropy(logits[:2], torch.tensor([1, 2]))
    ignored = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 2, -100]))
    assert torch.allclose(full, ignored)


# ---------------------------------------------------------------- Whisper
def test_whisper_encoder_positions_are_fixed_sinusoids_and_decoder_positions_are_learned():
    """05/06 and shorten_whisper_window: the encoder "adds one fixed sinusoidal position
    vector to each of its 1500 output frames (not trained: requires_grad is False; the
    decoder's positions are learned)"."""
    model = _tiny_whisper()
    table = model.encoder.embed_positions
    assert not table.weight.requires_grad
    assert table.num_embeddings == model.config.max_source_positions == 1500
    assert torch.allclose(table.weight[1, 0], torch.tensor(math.sin(1.0)), atol=1e-4)
    assert model.decoder.embed_positions.weight.requires_grad


def test_whisper_encoder_insists_on_exactly_3000_mel_frames():
    """06 and shorten_whisper_window: Whisper's encoder "insists on exactly 3000 mel frames
    (30 s, padded with silence)", and its feature extractor pads every clip to them."""
    model = _tiny_whisper(num_mel_bins=80)
    with pytest.raises(ValueError, match="expects the mel input features to be of length 3000"):
        model.encoder(torch.randn(1, 80, 2000))
    features = WhisperFeatureExtractor()(np.zeros(32_000), sampling_rate=16_000).input_features
    assert np.asarray(features).shape == (1, 80, 3000)


def test_whisper_tiny_en_has_a_51864_token_vocabulary_and_a_basic_normaliser():
    """03: "each step scoring the whole vocabulary (51,864 tokens for Whisper)"; 06: the
    tokenizer's basic normaliser lower-cases and removes punctuation and symbols."""
    tokenizer = WhisperTokenizer.from_pretrained(resolve("whisper-tiny.en"))
    assert len(tokenizer) == 51_864
    assert tokenizer.basic_normalize("She kept, the Cheese!").split() == [
        "she",
        "kept",
        "the",
        "cheese",
    ]


def test_whisper_for_causal_lm_calls_the_audio_encoder_outputs():
    """03: Whisper's decoder class "calls the audio encoder_outputs (WhisperForCausalLM),
    where SpeechEncoderDecoderModel passes encoder_hidden_states"."""
    parameters = inspect.signature(WhisperForCausalLM.forward).parameters
    assert "encoder_outputs" in parameters and "encoder_hidden_states" not in parameters
    source = inspect.getsource(SpeechEncoderDecoderModel.forward)
    assert "encoder_hidden_states=encoder_hidden_states" in source


def test_plain_warm_start_of_a_whisper_checkpoint_keeps_whispers_decoder_and_fails(tiny_dirs):
    """04/model.py: from_encoder_decoder_pretrained on a Whisper checkpoint gives a whole
    WhisperModel as the encoder, and the first forward pass fails with "You cannot specify both
    decoder_input_ids and decoder_inputs_embeds"."""
    model = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(*tiny_dirs)
    assert isinstance(model.encoder, WhisperModel)
    with pytest.raises(
        ValueError, match="cannot specify both decoder_input_ids and decoder_inputs"
    ):
        model(input_features=torch.zeros(1, 80, 3000), decoder_input_ids=torch.tensor([[101]]))


def test_plain_from_pretrained_of_a_whisper_composite_replaces_the_encoder(tiny_dirs, tmp_path):
    """04/model.py: "Plain from_pretrained rebuilds the encoder ... a WhisperModel again ...
    so the pretrained encoder is silently replaced by random weights"."""
    model = s2t_edu.build_model(*tiny_dirs, pretrained=("encoder", "decoder"))
    model.save_pretrained(tmp_path)
    naive = SpeechEncoderDecoderModel.from_pretrained(tmp_path)
    assert isinstance(naive.encoder, WhisperModel)
    assert not torch.equal(naive.encoder.encoder.conv1.weight, model.encoder.conv1.weight)


# ---------------------------------------------------------------- chapter 3: decoding
def _tiny_composite():
    model = s2t_edu.build_model(encoder_configs()["wav2vec2-layer"], decoder_configs()["bert"])
    return set_special_tokens(model)


def test_generate_applies_the_sampling_warpers_temperature_then_top_k_then_top_p():
    """03: "Three warpers reshape the distribution first, in this order: temperature ...,
    top-k ..., top-p"."""
    model = _tiny_composite()
    config = GenerationConfig(do_sample=True, temperature=0.7, top_k=5, top_p=0.9)
    processors = model._get_logits_processor(
        generation_config=config,
        input_ids_seq_length=1,
        encoder_input_ids=None,
        prefix_allowed_tokens_fn=None,
        logits_processor=LogitsProcessorList(),
    )
    names = [type(p).__name__ for p in processors]
    assert names == ["TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper"]


def test_beam_hypotheses_are_ranked_by_summed_log_prob_over_length_to_the_penalty():
    """03/06: "A finished hypothesis is ranked by sum of log-probs / length ** length_penalty",
    length = the tokens generated (EOS included)."""
    model = _tiny_composite()
    inputs = torch.randn(1, 4000)
    for penalty in (0.0, 1.0, 2.0):
        out = model.generate(
            inputs, num_beams=3, max_new_tokens=6, length_penalty=penalty, output_scores=True,
            return_dict_in_generate=True, do_sample=False,
        )  # fmt: skip
        sequence = out.sequences[0]
        # re-score the returned sequence token by token with the model itself
        with torch.no_grad():
            logits = model(input_values=inputs, decoder_input_ids=sequence[None, :-1]).logits
        log_probs = logits[0].float().log_softmax(-1)
        generated = sequence[1:]
        length = int((generated != model.generation_config.pad_token_id).sum())
        total = log_probs[torch.arange(length), generated[:length]].sum()
        assert torch.allclose(out.sequences_scores[0], total / length**penalty, atol=1e-4)


def test_the_kv_cache_computes_the_audios_cross_attention_keys_once():
    """03: "The cross-attention keys and values of the audio never change, so the cache
    computes them once, at the first step"; the self-attention cache grows a token a step."""
    model = _tiny_composite()
    with torch.inference_mode():
        memory = encoder_memory(model, torch.randn(1, 4000))
        cache = new_cache(model)
        tokens = torch.tensor([[1]])
        cached_step(model, tokens, memory, cache)
        keys = cache.cross_attention_cache.layers[0].keys.clone()
        assert keys.shape[-2] == memory.hidden_states.shape[1]  # one key per audio frame
        for token in (5, 7):
            tokens = torch.cat([tokens, torch.tensor([[token]])], dim=1)
            cached_step(model, tokens, memory, cache)
        assert torch.equal(cache.cross_attention_cache.layers[0].keys, keys)
        assert cache.self_attention_cache.get_seq_length() == 3


# ---------------------------------------------------------------- chapter 4: warm starting
def test_training_and_generate_fail_when_no_special_ids_are_set(tiny_dirs):
    """04: "training: AttributeError ... 'pad_token_id'" and "generate: ValueError:
    `decoder_start_token_id` or `bos_token_id` has to be defined" (transformers#18343)."""
    model = s2t_edu.build_model(*tiny_dirs, pretrained=("encoder", "decoder"))
    features = torch.zeros(1, 80, 3000)
    with pytest.raises(AttributeError, match="pad_token_id"):
        model(input_features=features, labels=torch.tensor([[2023, 102]]))
    with pytest.raises(ValueError, match="decoder_start_token_id` or `bos_token_id` has to be"):
        model.generate(features, max_new_tokens=2)


def test_generate_reads_generation_config_first_and_model_config_only_as_its_fallback():
    """04/labels.set_special_ids: "generate reads model.generation_config, and a value there
    wins over model.config" (set both; transformers#14439)."""
    model = _tiny_composite()
    model.generation_config.decoder_start_token_id = 5
    model.config.decoder_start_token_id = 1
    assert int(model.generate(torch.randn(1, 4000), max_new_tokens=1)[0, 0]) == 5
    model = s2t_edu.build_model(encoder_configs()["hubert"], decoder_configs()["bert"])
    model.config.decoder_start_token_id, model.config.pad_token_id = 1, 0
    model.config.eos_token_id = 2  # generation_config left unset: model.config is the fallback
    assert model.generation_config.decoder_start_token_id is None
    assert int(model.generate(torch.randn(1, 4000), max_new_tokens=1)[0, 0]) == 1


def test_minilm_has_no_masked_lm_head_and_ties_its_output_to_the_word_embeddings():
    """04: MiniLM "shipped without BERT's masked-LM head. Its output matrix is tied to the
    pretrained word embeddings, so only the small transform and a bias are new"."""
    model, info = BertLMHeadModel.from_pretrained(
        resolve("minilm-l6"), is_decoder=True, add_cross_attention=True, output_loading_info=True
    )
    head = {k for k in info["missing_keys"] if k.startswith("cls.")}
    assert head and all(
        k.startswith(("cls.predictions.transform", "cls.predictions.")) for k in head
    )
    assert "cls.predictions.decoder.weight" not in info["missing_keys"]
    assert model.cls.predictions.decoder.weight.data_ptr() == (
        model.bert.embeddings.word_embeddings.weight.data_ptr()
    )


def test_minilm_was_not_trained_as_a_causal_language_model():
    """04: "MiniLM was trained to embed sentences, never to predict the next word": its
    checkpoint is a plain BertModel (no LM head of any kind, no is_decoder)."""
    config = BertConfig.from_pretrained(resolve("minilm-l6"))
    assert config.architectures == ["BertModel"]
    assert not config.is_decoder


def test_a_wav2vec2_checkpoint_warm_starts_the_plain_way_without_its_ctc_head():
    """04: "For a wav2vec2 checkpoint AutoModel is the encoder ... Its CTC head (lm_head) is
    left behind"."""
    model = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
        resolve("w2v2-synth-ctc"), resolve("minilm-l6")
    )
    assert type(model.encoder) is Wav2Vec2Model
    assert not any(name.startswith("lm_head") for name in model.encoder.state_dict())
