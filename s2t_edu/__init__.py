"""s2t_edu: how a speech encoder-decoder model works, one readable function at a time.

Each public function re-does one step of Hugging Face's ``SpeechEncoderDecoderModel`` and is
tested to give the same numbers (see tests/). Read them in this order:

config -> frames -> projection -> attention -> labels -> loss -> forward -> doctor -> decoding/
"""

from s2t_edu.config import compose_config, config_changes
from s2t_edu.decoding import BeamSearchOutput, beam_search, greedy_decode, sample
from s2t_edu.doctor import Finding, doctor
from s2t_edu.errors import S2TEduError
from s2t_edu.forward import EncoderPass, ForwardTrace, encode, forward_step_by_step
from s2t_edu.frames import encoder_attention_mask, encoder_output_lengths, minimum_input_length
from s2t_edu.labels import IGNORE_INDEX, pad_to_ignore_index, set_special_ids, shift_tokens_right
from s2t_edu.loss import seq2seq_loss
from s2t_edu.model import build_model
from s2t_edu.projection import build_projection, projection_needed
from s2t_edu.show import show
from s2t_edu.teaching.profiles import by_profile, full_run

__all__ = [
    "IGNORE_INDEX",
    "BeamSearchOutput",
    "EncoderPass",
    "Finding",
    "ForwardTrace",
    "S2TEduError",
    "beam_search",
    "build_model",
    "build_projection",
    "by_profile",
    "compose_config",
    "config_changes",
    "doctor",
    "encode",
    "encoder_attention_mask",
    "encoder_output_lengths",
    "forward_step_by_step",
    "full_run",
    "greedy_decode",
    "minimum_input_length",
    "pad_to_ignore_index",
    "projection_needed",
    "sample",
    "seq2seq_loss",
    "set_special_ids",
    "shift_tokens_right",
    "show",
]
