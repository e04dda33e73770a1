"""The cached step (feed one token, reuse keys/values) gives the uncached step's logits."""

import pytest
import torch
from decoding_helpers import speech_batch, tiny_model

from s2t_edu.decoding import cached_step, encoder_memory, new_cache, uncached_step


@pytest.mark.parametrize(
    "encoder,decoder",
    [
        ("wav2vec2-group", "bert"),
        ("hubert", "gpt2"),
        ("whisper-encoder", "roberta"),
        ("data2vec-audio", "bart"),
    ],
)
def test_cached_and_uncached_steps_give_equal_logits(encoder, decoder):
    model = tiny_model(encoder, decoder)
    inputs, mask = speech_batch(model, 3)
    memory = encoder_memory(model, inputs, mask)
    tokens = torch.randint(3, 99, (3, 8), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = 1
    cache = new_cache(model)
    with torch.no_grad():
        for length in range(1, tokens.shape[1] + 1):
            fast = cached_step(model, tokens[:, :length], memory, cache)
            slow = uncached_step(model, tokens[:, :length], memory)
            torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    # The cache really was used: it holds one self-attention entry per token fed.
    assert cache.get_seq_length() == tokens.shape[1]
