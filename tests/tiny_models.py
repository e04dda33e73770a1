"""Small random configs for every encoder and decoder family the course covers.

Sizes are tiny so a forward pass takes milliseconds; widths differ between families on
purpose, so some pairs need the enc_to_dec projection and some do not.
"""

from transformers import (
    BartConfig,
    BertConfig,
    Data2VecAudioConfig,
    GPT2Config,
    HubertConfig,
    RobertaConfig,
    TrOCRConfig,
    Wav2Vec2Config,
    WhisperConfig,
)

# A short conv stack: 5x downsampling per layer over 3 layers = 125 samples per frame,
# receptive field 10 + 4*5 + ... keeps 0.1-0.5 s clips at a handful of frames.
_CONV = dict(conv_dim=(16, 16, 16), conv_kernel=(10, 5, 5), conv_stride=(5, 5, 5))
_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
_POS_CONV = dict(num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4)


def encoder_configs():
    """name -> speech encoder config, covering the families transformers' model card names."""
    return {
        "wav2vec2-group": Wav2Vec2Config(
            **_CONV, **_SMALL, **_POS_CONV, feat_extract_norm="group", do_stable_layer_norm=False
        ),
        "wav2vec2-layer": Wav2Vec2Config(
            **_CONV, **_SMALL, **_POS_CONV, feat_extract_norm="layer", do_stable_layer_norm=True
        ),
        "wav2vec2-adapter": Wav2Vec2Config(
            **_CONV,
            **_SMALL,
            **_POS_CONV,
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            add_adapter=True,
            num_adapter_layers=2,
            adapter_stride=2,
            adapter_kernel_size=3,
        ),
        "hubert": HubertConfig(**_CONV, **_SMALL, **_POS_CONV, feat_extract_norm="group"),
        "data2vec-audio": Data2VecAudioConfig(
            **_CONV,
            **_SMALL,
            num_conv_pos_embeddings=8,
            num_conv_pos_embedding_groups=4,
            conv_pos_kernel_size=5,
        ),
        "whisper-encoder": WhisperConfig(
            d_model=48,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_layers=1,
            decoder_attention_heads=2,
            decoder_ffn_dim=64,
            num_mel_bins=16,
            max_source_positions=20,
            vocab_size=100,
        ),
    }


def decoder_configs(vocab_size=99):
    """name -> text decoder config (before composition: is_decoder is still False)."""
    common = dict(vocab_size=vocab_size, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return {
        "bert": BertConfig(
            **common,
            hidden_size=40,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48,
        ),
        "gpt2": GPT2Config(**common, n_embd=32, n_layer=2, n_head=2, n_positions=64),
        "roberta": RobertaConfig(
            **common,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48,
            max_position_embeddings=70,
        ),
        # encoder_layers must equal decoder_layers: transformers sizes BartForCausalLM's KV cache
        # by num_hidden_layers (= encoder_layers) -- see test_known_transformers_failures.py.
        "bart": BartConfig(
            **common,
            d_model=24,
            decoder_layers=2,
            decoder_attention_heads=2,
            decoder_ffn_dim=32,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=32,
            max_position_embeddings=64,
            decoder_start_token_id=2,
            forced_eos_token_id=None,
        ),
    }


def trocr_decoder_config(cross_attention_hidden_size, vocab_size=99):
    """TrOCR's decoder is the family that honours cross_attention_hidden_size (no projection)."""
    return TrOCRConfig(
        vocab_size=vocab_size,
        d_model=24,
        decoder_layers=2,
        decoder_attention_heads=2,
        decoder_ffn_dim=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cross_attention_hidden_size=cross_attention_hidden_size,
        max_position_embeddings=64,
    )


def set_special_tokens(model, start=1, pad=0, eos=2):
    """The three ids every SpeechEncoderDecoderModel needs before training or generating."""
    model.config.decoder_start_token_id = start
    model.config.pad_token_id = pad
    model.config.eos_token_id = eos
    model.generation_config.decoder_start_token_id = start
    model.generation_config.pad_token_id = pad
    model.generation_config.eos_token_id = eos
    return model
