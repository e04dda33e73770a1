"""The forward pass of ``SpeechEncoderDecoderModel``, one visible step at a time.

    audio --encoder--> frames --enc_to_dec_proj--> frames of decoder width
    labels --shift right--> decoder_input_ids --decoder (+ cross-attention to frames)--> logits
    logits, labels --cross-entropy over non -100 positions--> loss

``encode`` is the first line (run once per utterance, also by the decoding algorithms);
``forward_step_by_step`` runs all of it and keeps every intermediate tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import SpeechEncoderDecoderModel

from s2t_edu.errors import S2TEduError
from s2t_edu.frames import encoder_attention_mask as frame_mask_from_samples
from s2t_edu.inputs import check_decoder_inputs, check_encoder_inputs
from s2t_edu.labels import check_labels, shift_tokens_right
from s2t_edu.loss import seq2seq_loss
from s2t_edu.projection import projection_needed


@dataclass
class EncoderPass:
    """The encoder's side of the model, ready for cross-attention."""

    hidden_states: torch.Tensor  # (batch, frames, encoder width), the encoder's own output
    # (batch, frames, decoder width): what cross-attention reads
    projected_hidden_states: torch.Tensor
    attention_mask: torch.Tensor | None  # (batch, frames), 1 = real audio, 0 = padding


@dataclass
class ForwardTrace:
    """Every intermediate of one forward pass, named as in the model."""

    encoder_hidden_states: torch.Tensor
    projected_hidden_states: torch.Tensor
    encoder_attention_mask: torch.Tensor | None
    decoder_input_ids: torch.Tensor
    logits: torch.Tensor
    loss: torch.Tensor | None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


def encode(model: SpeechEncoderDecoderModel, inputs, attention_mask=None) -> EncoderPass:
    """Run the speech encoder and the projection once; compute the frame-level padding mask."""
    inputs, attention_mask = check_encoder_inputs(model, inputs, attention_mask)
    encoder_config = model.config.encoder
    # The model hands the user's mask to the encoder unchanged (even to group-norm wav2vec2,
    # which was trained without one -- s2t_edu.doctor warns about that case).
    hidden_states = model.encoder(inputs, attention_mask=attention_mask).last_hidden_state
    projected = (
        model.enc_to_dec_proj(hidden_states) if projection_needed(model.config) else hidden_states
    )
    frame_mask = None
    if attention_mask is not None:
        frame_mask = frame_mask_from_samples(encoder_config, attention_mask)
        if frame_mask.shape[1] != hidden_states.shape[1]:  # our length rule must match the encoder
            raise S2TEduError(
                "the frame count from the length formula disagrees with the encoder's output",
                "report this encoder config; it changes lengths in a way s2t_edu.frames does not model",
                seen=(frame_mask.shape[1], hidden_states.shape[1]),
            )
    return EncoderPass(hidden_states, projected, frame_mask)


def forward_step_by_step(
    model: SpeechEncoderDecoderModel,
    inputs,
    labels=None,
    attention_mask=None,
    decoder_input_ids=None,
    output_attentions: bool = False,
) -> ForwardTrace:
    """What ``model(inputs, labels=..., attention_mask=...)`` computes, step by step."""
    encoded = encode(model, inputs, attention_mask)
    if decoder_input_ids is None:
        if labels is None:
            raise S2TEduError(
                "the decoder needs either labels (training) or decoder_input_ids",
                "pass labels=tokenizer(text, return_tensors='pt').input_ids",
            )
        # getattr: in transformers 5.x an unset id raises AttributeError instead of being None.
        decoder_input_ids = shift_tokens_right(
            labels,
            getattr(model.config, "pad_token_id", None),
            getattr(model.config, "decoder_start_token_id", None),
        )
    batch = encoded.hidden_states.shape[0]
    decoder_input_ids = check_decoder_inputs(model, decoder_input_ids, labels, batch)
    decoder_out = model.decoder(
        input_ids=decoder_input_ids,
        encoder_hidden_states=encoded.projected_hidden_states,
        encoder_attention_mask=encoded.attention_mask,
        output_attentions=output_attentions,
        use_cache=False,
    )
    loss = None if labels is None else seq2seq_loss(decoder_out.logits, check_labels(labels))
    return ForwardTrace(
        encoder_hidden_states=encoded.hidden_states,
        projected_hidden_states=encoded.projected_hidden_states,
        encoder_attention_mask=encoded.attention_mask,
        decoder_input_ids=decoder_input_ids,
        logits=decoder_out.logits,
        loss=loss,
        cross_attentions=getattr(decoder_out, "cross_attentions", None)
        if output_attentions
        else None,
    )
