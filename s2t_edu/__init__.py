"""s2t_edu: how a speech encoder-decoder model works, one readable function at a time.

Each public function re-does one step of Hugging Face's ``SpeechEncoderDecoderModel`` and is
tested to give the same numbers (see tests/). Read them in this order:

config -> frames -> projection -> labels -> loss -> forward -> doctor -> decoding/
"""

from .config import compose_config, config_changes
from .decoding import BeamSearchOutput, beam_search, greedy_decode, sample
from .doctor import Finding, doctor
from .errors import S2TEduError
from .forward import EncoderPass, ForwardTrace, encode, forward_step_by_step
from .frames import encoder_attention_mask, encoder_output_lengths, minimum_input_length
from .labels import IGNORE_INDEX, pad_to_ignore_index, set_special_ids, shift_tokens_right
from .loss import seq2seq_loss
from .model import build_model
from .profile import by_profile, full_run
from .projection import build_projection, projection_needed
from .show import show

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
