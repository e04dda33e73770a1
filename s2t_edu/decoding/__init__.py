"""Decoding from scratch: greedy, beam search and sampling, token-identical to ``generate``.

One loop skeleton (loop.py: encode once, cached decoder step, processors), three ways to pick
tokens: greedy.py (argmax), sampling.py (a random draw), beam.py (keep the best num_beams).
"""

from s2t_edu.decoding.beam import BeamSearchOutput, BeamStep, Candidate, beam_search
from s2t_edu.decoding.greedy import greedy_decode
from s2t_edu.decoding.loop import cached_step, encoder_memory, new_cache, special_ids, uncached_step
from s2t_edu.decoding.processors import (
    min_new_tokens,
    no_repeat_ngram,
    repetition_penalty,
    temperature,
    top_k,
    top_p,
)
from s2t_edu.decoding.sampling import sample

__all__ = [
    "BeamSearchOutput",
    "BeamStep",
    "Candidate",
    "beam_search",
    "cached_step",
    "encoder_memory",
    "greedy_decode",
    "min_new_tokens",
    "new_cache",
    "no_repeat_ngram",
    "repetition_penalty",
    "sample",
    "special_ids",
    "temperature",
    "top_k",
    "top_p",
    "uncached_step",
]
