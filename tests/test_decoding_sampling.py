"""sample == generate(do_sample=True) under the same seed: same processors, same random draws."""

import pytest
import torch
from decoding_helpers import calibrated, generate_kwargs

from s2t_edu.decoding import sample
from s2t_edu.errors import S2TEduError

SETTINGS = [
    dict(temperature=1.0, top_k=50, top_p=1.0),  # generate's defaults: top-50 sampling
    dict(temperature=0.7, top_k=0, top_p=1.0),  # whole vocabulary, sharper
    dict(temperature=1.5, top_k=5, top_p=1.0),
    dict(temperature=1.0, top_k=0, top_p=0.8),  # nucleus only
    dict(temperature=0.8, top_k=10, top_p=0.9),  # all three warpers, in generate's order
    dict(
        temperature=1.2,
        top_k=None,
        top_p=0.5,
        repetition_penalty=1.3,
        no_repeat_ngram_size=2,
        min_new_tokens=3,
    ),
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize(
    "encoder,decoder",
    [("hubert", "roberta"), ("whisper-encoder", "gpt2"), ("data2vec-audio", "bart")],
)
def test_sample_draws_what_generate_draws(encoder, decoder, settings):
    model, inputs, mask, _ = calibrated(encoder, decoder)
    for seed in (0, 1):
        torch.manual_seed(seed)
        expected = model.generate(
            inputs,
            **generate_kwargs(mask),
            do_sample=True,
            num_beams=1,
            max_new_tokens=10,
            **settings,
        )
        torch.manual_seed(seed)
        ours = sample(model, inputs, mask, max_new_tokens=10, **settings)
        assert torch.equal(ours, expected), (seed, ours, expected)


def test_different_seeds_give_different_samples():
    """How we know the draws are random at all (so equality above is not trivial)."""
    model, inputs, mask, _ = calibrated("hubert", "roberta")
    outputs = set()
    for seed in range(4):
        torch.manual_seed(seed)
        outputs.add(
            tuple(sample(model, inputs, mask, max_new_tokens=10, top_k=0).flatten().tolist())
        )
    assert len(outputs) > 1


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(temperature=0.0), "temperature must be > 0"),
        (dict(temperature=-1.0), "temperature must be > 0"),
        (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
        (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
        (dict(top_k=-3), "top_k must be an int >= 0"),
    ],
)
def test_bad_sampling_settings_are_clear_errors(bad, message):
    model, inputs, mask, _ = calibrated("hubert", "roberta")
    with pytest.raises(S2TEduError, match=f"{message}(.|\n)*Fix: "):
        sample(model, inputs, mask, **bad)
