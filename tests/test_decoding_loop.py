"""The loop's two shortcuts: the audio mask built once, and inference mode with ordinary results."""

import pytest
import torch
from decoding_helpers import speech_batch, tiny_model
from transformers.masking_utils import create_bidirectional_mask

from s2t_edu.decoding import beam_search, encoder_memory, greedy_decode, sample
from s2t_edu.decoding.loop import cross_attention_mask


@pytest.mark.parametrize("decoder", ["bert", "gpt2", "roberta", "bart"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_mask_built_once_is_the_one_the_decoder_builds_for_any_query_length(decoder, attention):
    model = tiny_model("wav2vec2-layer", decoder)
    model.decoder.config._attn_implementation = attention
    inputs, mask = speech_batch(model, 3)
    memory = encoder_memory(model, inputs, mask)
    assert not bool(memory.attention_mask.all())  # some frames really are padding
    # sdpa reads a boolean mask, eager adds a float one: the decoder's implementation decides.
    assert memory.decoder_mask.dtype == (torch.bool if attention == "sdpa" else torch.float32)
    for queries in (1, 5):  # the first step feeds 1 token; an uncached step feeds the prefix
        embeddings = torch.zeros(3, queries, memory.hidden_states.shape[-1])
        built_per_step = create_bidirectional_mask(
            config=model.decoder.config,
            inputs_embeds=embeddings,
            attention_mask=memory.attention_mask,
            encoder_hidden_states=memory.hidden_states,
        )
        assert built_per_step.shape[2] == queries
        # Ours has one query row; broadcast to ``queries`` rows it is the same tensor.
        assert torch.equal(memory.decoder_mask.expand_as(built_per_step), built_per_step)


def test_no_mask_when_no_frame_is_padded():
    model = tiny_model("wav2vec2-layer", "bert")
    inputs, _ = speech_batch(model, 2)
    memory = encoder_memory(model, inputs[:1, :1600], torch.ones(1, 1600, dtype=torch.long))
    assert memory.attention_mask.all() and memory.decoder_mask is None
    assert cross_attention_mask(model, memory.hidden_states, None) is None


@pytest.mark.parametrize("decoder", ["bert", "bart"])
def test_eager_attention_decodes_like_generate_too(decoder):
    """The precomputed mask also serves the eager implementation (attention maps need it)."""
    model = tiny_model("hubert", decoder, eos_bias=2.0)
    model.decoder.config._attn_implementation = "eager"
    inputs, mask = speech_batch(model, 4)
    expected = model.generate(
        inputs, attention_mask=mask, do_sample=False, num_beams=1, max_new_tokens=8
    )
    assert torch.equal(greedy_decode(model, inputs, mask, max_new_tokens=8), expected)


def test_results_are_ordinary_tensors_a_learner_can_edit_in_place():
    model = tiny_model("wav2vec2-group", "bert")
    inputs, mask = speech_batch(model, 2)
    outputs = [
        greedy_decode(model, inputs, mask, max_new_tokens=4),
        sample(model, inputs, mask, max_new_tokens=4),
        beam_search(model, inputs, 2, mask, max_new_tokens=4).sequences,
        beam_search(model, inputs, 2, mask, max_new_tokens=4).sequences_scores,
    ]
    for tensor in outputs:
        assert not tensor.is_inference()
        tensor[0] = 0  # would raise on an inference-mode tensor
    assert torch.is_grad_enabled()  # and the mode did not leak out
