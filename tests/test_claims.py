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
from tiny_models import decoder_configs, encoder_configs, set_special_tokens, trocr_decoder_config
from train_helpers import write_tiny_checkpoints
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
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
    MarianConfig,
    MarianMTModel,
    MBartConfig,
    MBartForConditionalGeneration,
    RobertaConfig,
    SpeechEncoderDecoderConfig,
    SpeechEncoderDecoderModel,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForCausalLM,
    WhisperForConditionalGeneration,
    WhisperModel,
    WhisperTokenizer,
)
from transformers.models.speech_encoder_decoder.modeling_speech_encoder_decoder import (
    shift_tokens_right as transformers_shift_tokens_right,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

import s2t_edu
from s2t_edu import config_changes, encoder_output_lengths, minimum_input_length
from s2t_edu.decoding.loop import cached_step, encoder_memory, new_cache
from s2t_edu.pretrained import resolve
from s2t_edu.teaching.load_report import loading_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

DECODER_FAMILIES = {
    "bert": BertConfig,
    "gpt2": GPT2Config,
    "roberta": RobertaConfig,
    "bart": BartConfig,
}

SEQ2SEQ_CONFIGS = {"bart": BartConfig, "mbart": MBartConfig, "marian": MarianConfig}
SEQ2SEQ_MODELS = {
    "bart": BartForConditionalGeneration,
    "mbart": MBartForConditionalGeneration,
    "marian": MarianMTModel,
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


@pytest.mark.parametrize("family", ["bert", "gpt2", "roberta"])
def test_bert_gpt2_roberta_checkpoints_have_no_cross_attention_so_it_starts_random(
    family, tmp_path
):
    """01/04: BERT, GPT-2 and RoBERTa were pretrained without cross-attention, so warm-starting
    a decoder from such a checkpoint reports every cross-attention tensor as missing (newly
    initialised, random)."""
    AutoModel.from_config(decoder_configs()[family]).save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    config.is_decoder, config.add_cross_attention = True, True
    _, info = AutoModelForCausalLM.from_pretrained(
        tmp_path, config=config, output_loading_info=True
    )
    cross = [k for k in info["missing_keys"] if "crossattention" in k or "cross_attn" in k]
    assert len(cross) >= decoder_configs()[family].num_hidden_layers


@pytest.mark.parametrize("family", ["bart", "mbart", "marian"])
def test_bart_mbart_marian_decoder_checkpoints_bring_their_cross_attention(family, tmp_path):
    """01/04: "a decoder taken from an encoder-decoder checkpoint (BART, mBART, Marian) brings
    its cross-attention pretrained": its encoder_attn tensors are loaded, not new."""
    torch.manual_seed(0)
    config = SEQ2SEQ_CONFIGS[family](
        vocab_size=99, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=2,
        d_model=24, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=64,
    )  # fmt: skip
    seq2seq = SEQ2SEQ_MODELS[family](config)
    seq2seq.save_pretrained(tmp_path / family)
    AutoModel.from_config(encoder_configs()["hubert"]).save_pretrained(tmp_path / "hubert")
    model = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
        str(tmp_path / "hubert"), str(tmp_path / family)
    )
    cross = {k: v for k, v in model.decoder.state_dict().items() if "encoder_attn" in k}
    reference = seq2seq.state_dict()
    assert cross and all(torch.equal(v, reference[k]) for k, v in cross.items())


def test_the_model_cards_default_configs_are_wav2vec2_base_and_bert_base_sized():
    """01: "a wav2vec2-base-sized encoder and a BERT-base-sized decoder": the default configs
    are 12 layers of width 768 (BERT with bert-base-uncased's 30,522-token vocabulary), about
    95M and 110M parameters."""
    encoder, decoder = Wav2Vec2Config(), BertConfig()
    for config in (encoder, decoder):
        assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (
            768, 12, 3072,
        )  # fmt: skip
    assert decoder.vocab_size == 30_522
    with torch.device("meta"):
        sizes = [
            sum(p.numel() for p in AutoModel.from_config(c).parameters())
            for c in (encoder, decoder)
        ]
    assert 90e6 < sizes[0] < 100e6 and 105e6 < sizes[1] < 115e6


def test_is_decoder_makes_bert_self_attention_causal():
    """01: with is_decoder=True "position t sees only tokens <= t"; without it, every position
    sees the whole sentence."""
    torch.manual_seed(0)
    tokens = torch.tensor([[5, 6, 7, 8]])
    changed_end = torch.tensor([[5, 6, 7, 9]])
    for is_decoder in (True, False):
        config = BertConfig(**{**decoder_configs()["bert"].to_dict(), "is_decoder": is_decoder})
        model = BertModel(config).eval()
        with torch.no_grad():
            a = model(tokens).last_hidden_state[:, :3]
            b = model(changed_end).last_hidden_state[:, :3]
        assert torch.allclose(a, b) == is_decoder


@pytest.mark.parametrize("family", ["bert", "gpt2", "roberta"])
def test_add_cross_attention_gives_every_decoder_layer_a_block_reading_the_encoder(family):
    """01: add_cross_attention=True: "every layer gets an extra attention block whose keys and
    values come from the encoder's output frames"."""
    config = decoder_configs()[family]
    config.is_decoder, config.add_cross_attention = True, True
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    blocks = {n for n, _ in model.named_modules() if n.endswith(("crossattention", "encoder_attn"))}
    assert len(blocks) == config.num_hidden_layers
    width = config.hidden_size
    tokens = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        one = model(tokens, encoder_hidden_states=torch.randn(1, 6, width)).logits
        other = model(tokens, encoder_hidden_states=torch.randn(1, 6, width)).logits
    assert not torch.allclose(one, other)  # what the decoder writes depends on the frames


def test_cross_attention_hidden_size_replaces_the_projection():
    """01 and projection_needed: the one exception to "widths differ -> enc_to_dec_proj": a
    decoder that declares cross_attention_hidden_size (TrOCR's) reads the encoder's width
    itself, and transformers adds no projection."""
    encoder = encoder_configs()["hubert"]  # width 32
    decoder = trocr_decoder_config(cross_attention_hidden_size=encoder.hidden_size)  # width 24
    model = SpeechEncoderDecoderModel(config=s2t_edu.compose_config(encoder, decoder))
    assert model.config.decoder.hidden_size != encoder.hidden_size
    assert not hasattr(model, "enc_to_dec_proj")


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


def test_each_adapter_layer_halves_the_frame_rate():
    """02: an adapter is "extra strided convolutions some encoders put on top, halving the
    frame rate per layer" (stride 2 by default), and the length formula must include them."""
    config = Wav2Vec2Config(**{**Wav2Vec2Config().to_dict(), "add_adapter": True,
                               "num_adapter_layers": 2, "hidden_size": 32,
                               "num_hidden_layers": 1, "num_attention_heads": 2,
                               "intermediate_size": 37, "conv_dim": (16,) * 7})  # fmt: skip
    assert config.adapter_stride == 2
    with torch.no_grad():
        frames = Wav2Vec2Model(config).eval()(torch.randn(1, 16_000)).last_hidden_state.shape[1]
    assert frames == 13 == int(encoder_output_lengths(config, 16_000))  # 49 -> 25 -> 13


def test_the_model_turns_the_sample_mask_into_a_frame_mask_with_the_length_formula():
    """02: "The model converts the sample-level mask into a frame-level one with the same
    length formula: clip i keeps its first encoder_output_lengths(real samples) frames"."""
    config = encoder_configs()["wav2vec2-layer"]
    model = Wav2Vec2Model(config)
    mask = torch.zeros(3, 4000, dtype=torch.long)
    for row, real in enumerate((4000, 2500, 700)):
        mask[row, :real] = 1
    frames = int(encoder_output_lengths(config, 4000))
    theirs = model._get_feature_vector_attention_mask(frames, mask)
    assert torch.equal(theirs.long(), s2t_edu.encoder_attention_mask(config, mask))


def test_minilm_tokenizer_has_bert_base_uncaseds_size_and_special_ids():
    """02/04: the MiniLM tokenizer is an uncased WordPiece vocabulary of bert-base-uncased's
    size (30,522) with its special ids [CLS]=101, [SEP]=102, [PAD]=0."""
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm-l6"))
    assert tokenizer.vocab_size == 30_522
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id) == (101, 102, 0)
    assert tokenizer.tokenize("She KEPT") == ["she", "kept"]


def test_the_model_shifts_labels_behind_the_start_token_and_turns_minus_100_into_pad():
    """02: the decoder's input at step t is the label at step t-1, its first input the start
    token, and "-100 ... must become the pad id" (transformers' own shift_tokens_right)."""
    labels = torch.tensor([[7, 8, 2], [9, 2, -100]])
    shifted = transformers_shift_tokens_right(labels, pad_token_id=0, decoder_start_token_id=1)
    assert shifted.tolist() == [[1, 7, 8], [1, 9, 2]]
    labels = torch.tensor([[7, 2, -100, -100]])
    assert transformers_shift_tokens_right(labels, 0, 1).tolist() == [[1, 7, 2, 0]]


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
    # "because it adds one position vector to each of its 1500 output frames": the forward
    # pass adds the whole table, all of its rows, to the frames
    source = inspect.getsource(WhisperEncoder.forward)
    assert "torch.arange(self.embed_positions.num_embeddings" in source


def test_whisper_tiny_en_has_a_51864_token_vocabulary_and_a_basic_normaliser():
    """03: "each step scoring the whole vocabulary (51,864 tokens for Whisper)"; 06: the
    tokenizer's basic normaliser lower-cases and removes punctuation and symbols (hyphens too)."""
    tokenizer = WhisperTokenizer.from_pretrained(resolve("whisper-tiny.en"))
    assert len(tokenizer) == 51_864
    assert tokenizer.basic_normalize("She kept, the Cheese!").split() == [
        "she",
        "kept",
        "the",
        "cheese",
    ]
    # 06, exercise 3: hyphens become spaces too, so "teacher-holder" is two words
    assert tokenizer.basic_normalize("teacher-holder time.").split() == [
        "teacher",
        "holder",
        "time",
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
    """04/model.py: "Plain from_pretrained rebuilds the encoder ... a WhisperModel again ... so
    the pretrained encoder is replaced by random weights without an error: the only sign is a
    LOAD REPORT among the warnings (every saved encoder tensor UNEXPECTED, its random stand-in
    MISSING)"."""
    model = s2t_edu.build_model(*tiny_dirs, pretrained=("encoder", "decoder"))
    model.save_pretrained(tmp_path)
    naive, report = loading_report(SpeechEncoderDecoderModel.from_pretrained, str(tmp_path))
    assert isinstance(naive.encoder, WhisperModel)
    assert not torch.equal(naive.encoder.encoder.conv1.weight, model.encoder.conv1.weight)
    assert "encoder.conv1.weight" in report and "| UNEXPECTED" in report
    assert "encoder.encoder.conv1.weight" in report and "| MISSING" in report


def test_whisper_mel_frames_are_10_ms_apart_and_encoder_frames_20_ms():
    """03/05/06: log-mel features are "10 ms frames" (hop 160 samples at 16 kHz); the encoder's
    second convolution has stride 2, so its frames are 20 ms apart: 5 s -> 250 frames."""
    extractor = WhisperFeatureExtractor()
    assert (extractor.hop_length, extractor.sampling_rate) == (160, 16_000)
    model = _tiny_whisper(num_mel_bins=80, max_source_positions=250)
    assert model.encoder.conv2.stride == (2,)
    with torch.no_grad():
        frames = model.encoder(torch.randn(1, 80, 500)).last_hidden_state.shape[1]
    assert frames == 250


def test_whispers_decoder_class_returns_hidden_states_not_token_scores():
    """03: Whisper's decoder class "has no LM head (WhisperDecoder)": its output is d_model wide;
    the vocabulary projection (proj_out) lives in WhisperForConditionalGeneration."""
    model = _tiny_whisper()
    decoder = model.decoder
    with torch.no_grad():
        out = decoder(
            input_ids=torch.tensor([[1, 5]]), encoder_hidden_states=torch.randn(1, 7, 48)
        ).last_hidden_state
    assert out.shape[-1] == model.config.d_model != model.config.vocab_size
    assert not hasattr(decoder, "proj_out") and not hasattr(decoder, "lm_head")


def test_whisper_tiny_en_ranks_beams_with_length_penalty_1_and_allows_448_tokens():
    """06: Whisper tiny.en's beams are ranked by summed log-probability / length
    (length_penalty 1.0, generate's default), and a beam that repeats itself "runs on to
    Whisper's 448-token limit"."""
    model = WhisperForConditionalGeneration.from_pretrained(resolve("whisper-tiny.en"))
    assert model.generation_config.length_penalty in (None, 1.0)
    assert GenerationConfig._get_default_generation_params()["length_penalty"] == 1.0
    assert model.config.max_target_positions == 448


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


def test_temperature_divides_top_k_keeps_k_and_top_p_keeps_the_smallest_set_reaching_p():
    """03: "temperature divides the logits by T, top-k keeps the k best tokens, top-p keeps the
    smallest set of best tokens holding probability p" (transformers' warpers)."""
    scores = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.07, 0.03]]))
    warm = TemperatureLogitsWarper(0.5)(None, scores.clone())
    assert torch.allclose(warm, scores / 0.5)
    kept = TopKLogitsWarper(2)(None, scores.clone()).isfinite()
    assert kept.tolist() == [[True, True, False, False, False]]
    kept = TopPLogitsWarper(0.85)(None, scores.clone()).isfinite()
    assert kept.tolist() == [[True, True, True, False, False]]  # 0.5 + 0.25 + 0.15 = 0.9 >= 0.85


def test_generate_with_one_beam_is_greedy_and_returns_no_sequence_scores():
    """03 and beam_search: "num_beams=1 is greedy search, in generate too: then
    sequences_scores is None"."""
    model = _tiny_composite()
    inputs = torch.randn(1, 4000)
    out = model.generate(
        inputs, num_beams=1, max_new_tokens=5, do_sample=False, return_dict_in_generate=True,
        output_scores=True,
    )  # fmt: skip
    assert getattr(out, "sequences_scores", None) is None
    assert torch.equal(out.sequences, s2t_edu.greedy_decode(model, inputs, max_new_tokens=5))


def test_generates_beam_search_fills_unused_positions_with_eos_when_the_pad_id_is_0():
    """beam_search: "generate fills unused positions with `pad_token_id or eos_token_id[0]`:
    a pad id of 0 is falsy, so then the fill is EOS"."""
    from transformers.generation.utils import GenerationMixin

    source = inspect.getsource(GenerationMixin._beam_search)
    assert "output_fill_value = pad_token_id or eos_token_id[0]" in source


def test_generate_reorders_the_cross_attention_cache_with_the_beams():
    """beam_search: "The cross-attention cache is the same for every beam of an utterance, so
    (unlike generate) we leave it alone": transformers' EncoderDecoderCache.reorder_cache moves
    the cross-attention keys too."""
    model = _tiny_composite()
    with torch.inference_mode():
        memory = encoder_memory(model, torch.randn(2, 4000))
        cache = new_cache(model)
        cached_step(model, torch.tensor([[1], [1]]), memory, cache)
        keys = cache.cross_attention_cache.layers[0].keys.clone()
        cache.reorder_cache(torch.tensor([1, 0]))
        assert torch.equal(cache.cross_attention_cache.layers[0].keys, keys.flip(0))


def test_the_decoder_rebuilds_the_audio_padding_mask_in_every_forward_pass():
    """03: "the decoder would rebuild [the audio's padding mask] from the frame mask at every
    step": BERT's forward turns encoder_attention_mask into the attention's form each call
    (create_bidirectional_mask), unless it is already 4-D."""
    from transformers.models.bert import modeling_bert

    source = inspect.getsource(modeling_bert.BertModel._create_attention_masks)
    assert "create_bidirectional_mask" in source and "encoder_attention_mask" in source
    calls = []
    original = modeling_bert.create_bidirectional_mask

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model = _tiny_composite()
    mask = torch.ones(1, 4000, dtype=torch.long)
    modeling_bert.create_bidirectional_mask = counting
    try:
        model.generate(torch.randn(1, 4000), attention_mask=mask, max_new_tokens=4,
                       min_new_tokens=4, do_sample=False)  # fmt: skip
    finally:
        modeling_bert.create_bidirectional_mask = original
    assert len(calls) >= 4  # once per decoder step


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


def test_a_hubert_checkpoint_warm_starts_the_plain_way(tmp_path):
    """04: "For a wav2vec2 or HuBERT checkpoint, as in the model card, AutoModel is the
    encoder and the plain call is right"."""
    HubertModel(encoder_configs()["hubert"]).save_pretrained(tmp_path / "hubert")
    BertModel(decoder_configs()["bert"]).save_pretrained(tmp_path / "bert")
    model = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
        str(tmp_path / "hubert"), str(tmp_path / "bert")
    )
    assert type(model.encoder) is HubertModel


def test_gpt2_has_no_pad_id_and_one_token_for_start_and_end():
    """04's table: GPT-2 starts and ends with <|endoftext|> (bos = eos = 50256) and has no pad
    id of its own ("none: reuse eos")."""
    config = GPT2Config()
    assert config.bos_token_id == config.eos_token_id == 50_256
    assert config.pad_token_id is None


def test_generate_stops_a_row_at_eos_and_fills_it_with_pad_while_others_go_on():
    """04's table and token_by_token: generate stops on eos_token_id and "fills finished rows"
    with pad_token_id while other rows of the batch go on."""
    model = _tiny_composite()
    torch.manual_seed(0)
    inputs, prompts = torch.randn(2, 4000), torch.tensor([[1, 5], [1, 6]])
    first = model.generate(inputs, decoder_input_ids=prompts, max_new_tokens=1, do_sample=False)
    assert first[0, 2] != first[1, 2], "the two rows must go on differently for this check"
    model.generation_config.eos_token_id = int(first[0, 2])  # row 0 ends at once, row 1 not
    model.generation_config.pad_token_id = 7
    out = model.generate(inputs, decoder_input_ids=prompts, max_new_tokens=4, do_sample=False)
    assert out[0, 2] == first[0, 2] and out.shape[1] > 3
    assert (out[0, 3:] == 7).all() and out[1, 3] != 7


def test_w2v2_synth_ctc_normalises_its_convolutions_per_frame_so_masks_are_valid():
    """04: "Unlike wav2vec2-base, its convolutions use layer norm, so an attention_mask for
    padded batches is valid" (wav2vec2-base's default config uses group norm)."""
    config = Wav2Vec2Config.from_pretrained(resolve("w2v2-synth-ctc"))
    assert config.feat_extract_norm == "layer" and Wav2Vec2Config().feat_extract_norm == "group"


def test_w2v2_synth_ctc_is_about_25_times_smaller_than_wav2vec2_base():
    """04: w2v2-synth-ctc is "what facebook/wav2vec2-base-960h is, minus the self-supervised
    pretraining and 25x smaller" (3.8M parameters against wav2vec2-base's ~95M)."""
    ours = sum(
        p.numel() for p in Wav2Vec2Model.from_pretrained(resolve("w2v2-synth-ctc")).parameters()
    )
    with torch.device("meta"):
        base = sum(p.numel() for p in Wav2Vec2Model(Wav2Vec2Config()).parameters())
    assert 22 < base / ours < 28


# ---------------------------------------------------------------- issue 16: the page's examples
def test_whisper_mel_bands_are_narrow_at_low_pitch_and_wide_at_high_pitch():
    """02: Whisper's input_features hold "the energy of the sound in 80 frequency bands (on the
    mel scale: narrow bands at low pitch, wide ones at high pitch)"."""
    filters = np.asarray(WhisperFeatureExtractor().mel_filters)  # (frequency bins, mel bands)
    assert filters.shape[1] == 80
    widths = (filters > 0).sum(axis=0)  # how many FFT bins each band covers
    centres = filters.argmax(axis=0)
    assert (np.diff(centres) >= 0).all()  # bands in order of pitch
    assert widths[:10].mean() * 4 < widths[-10:].mean()


def test_whisper_input_features_are_on_a_log_scale():
    """02: the log-mel spectrogram is "on a log scale": ten times the amplitude (a hundred times
    the power) adds log10(100) = 2 before Whisper's scaling (x + 4) / 4, so 0.5 everywhere."""
    rng = np.random.default_rng(0)
    clip = (rng.normal(size=16_000) * 0.01).astype(np.float32)
    extractor = WhisperFeatureExtractor()
    quiet, loud = (
        extractor(c, sampling_rate=16_000).input_features[0][:, :100] for c in (clip, 10 * clip)
    )
    np.testing.assert_allclose(loud - quiet, 0.5, atol=1e-3)


def test_bert_cross_attention_reads_what_the_layers_self_attention_block_hands_on():
    """02: the cross-attention's queries come from the decoder's hidden state at each token,
    "in BERT, what the layer's self-attention block handed on" (BertLayer passes the output of
    its `attention` block to `crossattention`)."""
    model = _tiny_composite().eval()
    layer = model.decoder.bert.encoder.layer[0]
    seen = {}
    handles = [
        layer.attention.register_forward_hook(lambda m, a, out: seen.update(handed=out[0])),
        layer.crossattention.self.register_forward_hook(
            lambda m, args, kwargs, out: seen.update(read=args[0]), with_kwargs=True
        ),
    ]
    try:
        with torch.no_grad():
            model(input_values=torch.randn(1, 4000), decoder_input_ids=torch.tensor([[1, 5, 6]]))
    finally:
        for handle in handles:
            handle.remove()
    assert torch.equal(seen["handed"], seen["read"])


def test_padded_frames_get_the_lowest_float_as_score_so_softmax_weighs_them_0():
    """02 and s2t_edu/attention.py: "A padded frame gets the lowest float as its score, so
    softmax gives it weight 0" (transformers' eager attention adds the mask it builds)."""
    model = _tiny_composite().eval()
    model.decoder.set_attn_implementation("eager")
    module = model.decoder.bert.encoder.layer[0].crossattention.self
    seen = {}

    def keep(m, args, kwargs, out):
        seen.update(mask=kwargs["attention_mask"], weights=out[1])

    handle = module.register_forward_hook(keep, with_kwargs=True)
    sample_mask = torch.tensor([[1] * 4000, [1] * 2500 + [0] * 1500])
    try:
        with torch.no_grad():
            model(
                input_values=torch.randn(2, 4000) * sample_mask,
                attention_mask=sample_mask,
                decoder_input_ids=torch.tensor([[1, 5], [1, 6]]),
            )
    finally:
        handle.remove()
    frames = s2t_edu.encoder_attention_mask(model.config.encoder, sample_mask)
    lowest = torch.finfo(torch.float32).min
    assert (seen["mask"][1, 0, 0][frames[1] == 0] == lowest).all()
    assert (seen["mask"][1, 0, 0][frames[1] == 1] == 0).all()
    assert (seen["weights"][1][..., frames[1] == 0] == 0).all()


def test_a_wav2vec2_processor_without_sampling_rate_assumes_its_own_rate_and_warns():
    """06: the page's `processor(audio, return_tensors="pt")` passes no sampling_rate: "the
    processor then assumes the audio is at its own rate, and transformers logs a warning
    recommending the argument"."""
    from transformers import Wav2Vec2Processor

    from s2t_edu.teaching.failure_modes import attempt

    processor = Wav2Vec2Processor(
        Wav2Vec2FeatureExtractor(), AutoTokenizer.from_pretrained(resolve("minilm-l6"))
    )
    audio = np.random.default_rng(0).normal(size=8000).astype(np.float32)
    without = attempt(processor, audio, return_tensors="pt")
    assert any("recommended to pass the `sampling_rate`" in line for line in without.log)
    with_rate = processor(audio, sampling_rate=16_000, return_tensors="pt").input_values
    assert torch.equal(without.value.input_values, with_rate)
    with pytest.raises(ValueError, match="sampling rate"):
        processor(audio, sampling_rate=8_000, return_tensors="pt")


def test_generate_defaults_to_greedy_search_and_20_new_tokens():
    """06: for settings the checkpoint leaves unset, generate uses transformers' defaults: one
    beam and no sampling ("generate is greedy search"), and "without [max_new_tokens] generate
    stops after transformers' default of 20 new tokens" (max_length 20, counted from the start
    token when it is the default)."""
    defaults = GenerationConfig._get_default_generation_params()
    assert (defaults["num_beams"], defaults["do_sample"], defaults["max_length"]) == (1, False, 20)
    model = _tiny_composite()
    unset = model.generation_config
    assert unset.max_new_tokens is None and unset.max_length is None and unset.num_beams is None
    torch.manual_seed(0)
    inputs = torch.randn(1, 4000)
    eos = unset.eos_token_id
    with pytest.warns(UserWarning, match="model-agnostic default `max_length`"):
        ids = model.generate(inputs, bad_words_ids=[[eos]])  # never stops by itself
        plain = model.generate(inputs)  # nothing set: the defaults
    assert ids.shape[1] == 21  # the start token and 20 new ones
    assert plain.tolist() == s2t_edu.greedy_decode(model, inputs, max_new_tokens=20).tolist()


def test_minilm_tokenizer_strips_accents_so_german_targets_spell_umlauts_out():
    """06: "MiniLM's tokenizer is uncased and strips accents: "grün" becomes gr ##un", so the
    translation targets write ue, oe, ae, ss."""
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm-l6"))
    assert tokenizer.tokenize("grün") == tokenizer.tokenize("grun") == ["gr", "##un"]
    assert tokenizer.tokenize("Grün") == tokenizer.tokenize("grün")
    assert tokenizer.decode(tokenizer("grün").input_ids, skip_special_tokens=True) == "grun"


def test_the_unseen_voice_speaks_faster_than_every_training_voice():
    """06, exercise 5: "The unseen voice speaks faster, so the same words come earlier and the
    clip is shorter" (espeak's rate is words per minute)."""
    corpus = s2t_edu.data.load_corpus("tiny")
    assert min(corpus["test_unseen_voice"]["rate"]) > max(corpus["train"]["rate"])
    assert sum(corpus["test_unseen_voice"]["duration"]) < sum(corpus["test"]["duration"])
