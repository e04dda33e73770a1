"""seq2seq_loss == torch's cross-entropy with ignore_index=-100 (and the model's loss)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from s2t_edu import S2TEduError, seq2seq_loss


def _random_case(seed, batch, length, vocab, ignore_fraction):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=generator) * 3
    labels = torch.randint(0, vocab, (batch, length), generator=generator)
    ignored = torch.rand(batch, length, generator=generator) < ignore_fraction
    ignored[0, 0] = False  # keep at least one counted token
    return logits, labels.masked_fill(ignored, -100)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    batch=st.integers(1, 4),
    length=st.integers(1, 9),
    vocab=st.integers(2, 60),
    ignore_fraction=st.floats(0, 0.9),
    smoothing=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_loss_equals_torch_cross_entropy(seed, batch, length, vocab, ignore_fraction, smoothing):
    logits, labels = _random_case(seed, batch, length, vocab, ignore_fraction)
    reference = F.cross_entropy(
        logits.reshape(-1, vocab), labels.reshape(-1), label_smoothing=smoothing
    )
    torch.testing.assert_close(seq2seq_loss(logits, labels, label_smoothing=smoothing), reference)


def test_ignored_positions_really_cost_nothing():
    logits, labels = _random_case(0, 2, 6, 11, 0.0)
    masked = labels.clone()
    masked[1, 3:] = -100
    changed_logits = logits.clone()
    changed_logits[1, 3:] += 100 * torch.randn(3, 11)  # garbage where labels are ignored
    assert seq2seq_loss(changed_logits, masked) == pytest.approx(
        seq2seq_loss(logits, masked).item()
    )
    assert seq2seq_loss(logits, masked) != pytest.approx(seq2seq_loss(logits, labels).item())


def test_half_precision_logits_give_the_float32_loss():
    logits, labels = _random_case(1, 2, 5, 30_000, 0.2)
    logits = logits * 8  # large logits: fp16 log-softmax loses the small probabilities
    reference = F.cross_entropy(logits.reshape(-1, 30_000), labels.reshape(-1))
    torch.testing.assert_close(seq2seq_loss(logits.half(), labels), reference, atol=2e-2, rtol=1e-3)


def test_all_ignored_labels_are_an_error_not_nan():
    with pytest.raises(S2TEduError, match="every label is -100"):
        seq2seq_loss(torch.randn(1, 3, 5), torch.full((1, 3), -100))


def test_out_of_vocabulary_label_is_named():
    with pytest.raises(S2TEduError, match=r"outside the decoder vocabulary \[0, 5\)") as error:
        seq2seq_loss(torch.randn(1, 2, 5), torch.tensor([[1, 7]]))
    assert "[7]" in str(error.value)


def test_shape_mismatch_is_explained():
    with pytest.raises(S2TEduError, match="disagree in batch or length"):
        seq2seq_loss(torch.randn(1, 4, 5), torch.tensor([[1, 2, 3]]))
