"""Playground, sampling figure, KV-cache timing and the Whisper adapter: each equals the real thing."""

import matplotlib
import pytest
import torch
from decoding_helpers import calibrated

from s2t_edu.decoding import beam_search, sample
from s2t_edu.decoding.playground import (
    STAGES,
    Settings,
    decode_with,
    decoding_playground,
    filtered_distributions,
    plot_filtered_distribution,
    settings_table,
)
from s2t_edu.decoding.processors import sampling_warpers
from s2t_edu.decoding.timing import plot_step_times, time_steps

matplotlib.use("Agg")


class FakeTokenizer:
    def decode(self, ids):
        return f" t{ids[0]}"

    def batch_decode(self, sequences, skip_special_tokens=False):
        return [" ".join(str(t) for t in row) for row in sequences.tolist()]


@pytest.mark.parametrize("t,k,p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.5, 0, 0.8), (0.5, 3, 0.6)])
def test_last_stage_is_what_sample_draws_from(t, k, p):
    scores = torch.randn(1, 40, generator=torch.Generator().manual_seed(1)) * 3
    stages = filtered_distributions(scores, t, k, p)
    assert list(stages) == list(STAGES)
    warped = scores
    for warper in sampling_warpers(t, k, p):
        warped = warper(None, warped)
    assert torch.allclose(stages["top-p"], warped.softmax(-1)[0])
    assert torch.allclose(stages["model"], scores.softmax(-1)[0])
    for probs in stages.values():
        assert torch.isclose(probs.sum(), torch.tensor(1.0))
    if k:
        assert int((stages["top-k"] > 0).sum()) == k


def test_distribution_figure_has_four_panels():
    scores = torch.randn(1, 30, generator=torch.Generator().manual_seed(0))
    fig = plot_filtered_distribution(scores, 0.7, 5, 0.9, FakeTokenizer(), shown=10)
    assert len(fig.axes) == 4
    assert [len(ax.patches) for ax in fig.axes] == [10] * 4


@pytest.mark.parametrize(
    "settings",
    [
        Settings(max_new_tokens=8),
        Settings(num_beams=3, length_penalty=0.0, max_new_tokens=8),
        Settings(do_sample=True, temperature=0.8, top_k=5, top_p=0.9, seed=3, max_new_tokens=8),
    ],
)
def test_playground_output_equals_calling_the_decoder(settings):
    model, inputs, mask, _ = calibrated("wav2vec2-group", "bert")
    ours = decode_with(model, inputs, settings, mask)
    if settings.do_sample:
        torch.manual_seed(settings.seed)
        direct = sample(
            model,
            inputs,
            mask,
            max_new_tokens=8,
            temperature=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
        )
    else:
        direct = beam_search(
            model,
            inputs,
            settings.num_beams,
            mask,
            max_new_tokens=8,
            length_penalty=settings.length_penalty,
        ).sequences
    assert torch.equal(ours, direct)


def test_settings_table_and_widget_show_the_decoded_text():
    model, inputs, mask, _ = calibrated("whisper-encoder", "gpt2")  # no mask needed
    one = inputs[:1]
    tokenizer = FakeTokenizer()
    expected = " ".join(
        str(t) for t in decode_with(model, one, Settings(max_new_tokens=5))[0].tolist()
    )
    table = settings_table(model, one, tokenizer, [Settings(max_new_tokens=5)])
    assert table.rows[0][1] == expected
    box = decoding_playground(model, one, tokenizer, Settings(max_new_tokens=5))
    output = box.children[-1]
    assert expected in "".join(o["text"] for o in output.outputs)
    box.children[0].value = 2  # num_beams -> re-decodes
    beams = decode_with(model, one, Settings(num_beams=2, max_new_tokens=5))
    assert " ".join(str(t) for t in beams[0].tolist()) in "".join(o["text"] for o in output.outputs)


def test_cached_and_uncached_steps_are_timed_and_agree():
    from s2t_edu.decoding import encoder_memory, greedy_decode

    model, inputs, mask, _ = calibrated("wav2vec2-group", "bert")
    memory = encoder_memory(model, inputs, mask)
    tokens = greedy_decode(model, inputs, mask, max_new_tokens=6)
    times = time_steps(model, memory, tokens, [1, 3, 5], repeats=1)
    assert times.lengths == [1, 3, 5]
    assert all(t > 0 for t in times.cached + times.uncached)
    assert times.max_logit_difference < 1e-3
    assert len(plot_step_times(times).axes) == 2
