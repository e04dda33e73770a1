"""Whisper tiny.en as a ``SpeechEncoderDecoderModel``, so the decoders here run on a real recogniser.

Our decoders (and ``SpeechEncoderDecoderModel`` itself) talk to the text decoder in one way:
``decoder(input_ids=..., encoder_hidden_states=..., encoder_attention_mask=..., cache=...)``
returning ``.logits``. Whisper's own pieces almost fit:

* ``WhisperDecoder`` takes ``encoder_hidden_states`` but has no LM head (no logits);
* ``WhisperForCausalLM`` (decoder + ``proj_out``) has the head, but names the audio
  ``encoder_outputs``; given ``encoder_hidden_states`` it passes it on *twice* and fails.

:class:`WhisperTextDecoder` renames that one argument. The weights are Whisper's, untouched,
so ``generate`` on the composite returns what Whisper's decoder computes, token for token
(tests/test_decoding_whisper.py).
"""

from __future__ import annotations

from transformers import SpeechEncoderDecoderModel, WhisperForCausalLM

from s2t_edu.errors import S2TEduError
from s2t_edu.pretrained.whisper import shorten_whisper_window


class WhisperTextDecoder(WhisperForCausalLM):
    """Whisper's decoder + LM head, called the way SpeechEncoderDecoderModel calls a text decoder."""

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        cache=None,
        inputs_embeds=None,
        use_cache=None,
        labels=None,
        **kwargs,
    ):
        if encoder_attention_mask is not None and not bool(encoder_attention_mask.all()):
            raise S2TEduError(
                "Whisper's decoder cannot mask encoder frames: Whisper always reads a full, "
                "silence-padded window",
                "pass no attention_mask with a Whisper encoder",
                f"a mask with {int((encoder_attention_mask == 0).sum())} masked frames",
            )
        kwargs.pop("return_dict", None)  # always a ModelOutput here
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_outputs=encoder_hidden_states,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            labels=labels,
            **kwargs,
        )


def whisper_speech_encoder_decoder(
    whisper, window_seconds: float | None = None
) -> SpeechEncoderDecoderModel:
    """A ``SpeechEncoderDecoderModel`` sharing every weight of ``whisper`` (a WhisperForConditionalGeneration).

    ``window_seconds``: shorten the encoder's 30 s window (``pretrained.shorten_whisper_window``)
    *after* the composite is built. Shortening first would not survive: the composite's
    ``post_init`` re-initialises the new, smaller position embedding at random, and the model
    then hears nothing (it says "I I I ...").

    Start, EOS and pad ids come from Whisper's generation config. Whisper's own ``generate``
    forces a prompt (``<|startoftranscript|><|notimestamps|>``); here only the start token is
    given and the model predicts the rest itself, as any SpeechEncoderDecoderModel would.
    """
    decoder = WhisperTextDecoder(whisper.config)
    decoder.model.decoder = whisper.model.decoder  # shared modules: no copy, same numbers
    decoder.proj_out = whisper.proj_out
    model = SpeechEncoderDecoderModel(encoder=whisper.get_encoder(), decoder=decoder)
    source = whisper.generation_config
    for name in ("decoder_start_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(source, name)
        setattr(model.generation_config, name, value)
        setattr(model.config, name, value)
    if window_seconds is not None:
        shorten_whisper_window(model, window_seconds)
    return model.eval()
