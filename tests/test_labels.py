"""shift_tokens_right == transformers' version; -100 handling; clear errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.models.speech_encoder_decoder.modeling_speech_encoder_decoder import (
    shift_tokens_right as reference_shift,
)

from s2t_edu import IGNORE_INDEX, S2TEduError, pad_to_ignore_index, shift_tokens_right

label_matrices = st.integers(1, 4).flatmap(
    lambda rows: st.integers(1, 8).flatmap(
        lambda cols: st.lists(
            st.lists(st.one_of(st.integers(0, 50), st.just(-100)), min_size=cols, max_size=cols),
            min_size=rows,
            max_size=rows,
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(labels=label_matrices, pad=st.integers(0, 50), start=st.integers(0, 50))
def test_shift_equals_transformers(labels, pad, start):
    labels = torch.tensor(labels)
    assert torch.equal(shift_tokens_right(labels, pad, start), reference_shift(labels, pad, start))


@settings(max_examples=100, deadline=None)
@given(labels=label_matrices, pad=st.integers(0, 50), start=st.integers(0, 50))
def test_shift_properties(labels, pad, start):
    labels = torch.tensor(labels)
    shifted = shift_tokens_right(labels, pad, start)
    assert shifted.shape == labels.shape
    assert (shifted[:, 0] == start).all()  # every row starts with the start token
    assert not (shifted == IGNORE_INDEX).any()  # -100 never reaches the embedding table
    kept = labels[:, :-1]
    expected_tail = torch.where(kept == IGNORE_INDEX, torch.tensor(pad), kept)
    assert torch.equal(shifted[:, 1:], expected_tail)  # the rest is the labels, one step late


def test_worked_example_from_the_docstring():
    labels = torch.tensor([[7, 8, 9, 2, -100, -100]])
    assert shift_tokens_right(labels, pad_token_id=0, decoder_start_token_id=1).tolist() == [
        [1, 7, 8, 9, 2, 0]
    ]


def test_pad_to_ignore_index_keeps_eos_equal_to_pad():
    # GPT-2 style: pad id == eos id == 50256; the real EOS must survive, padding must not.
    ids = torch.tensor([[5, 6, 50256, 50256], [5, 50256, 50256, 50256]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert pad_to_ignore_index(ids, mask).tolist() == [[5, 6, 50256, -100], [5, 50256, -100, -100]]


@pytest.mark.parametrize(
    "labels,match",
    [
        (torch.tensor([[1.0, 2.0]]), "integer token ids"),
        (torch.tensor([1, 2, 3]), r"shape \(batch, target_length\)"),
        (torch.zeros(0, 3, dtype=torch.long), "empty batch"),
    ],
)
def test_bad_labels_get_a_clear_error(labels, match):
    with pytest.raises(S2TEduError, match=match):
        shift_tokens_right(labels, 0, 1)


@pytest.mark.parametrize(
    "pad,start,name", [(None, 1, "pad_token_id"), (0, None, "decoder_start_token_id")]
)
def test_missing_special_ids_name_the_setting(pad, start, name):
    with pytest.raises(S2TEduError, match=f"{name} is not set") as error:
        shift_tokens_right(torch.tensor([[5, 6]]), pad, start)
    assert name in str(error.value) and "set_special_ids(model, tokenizer)" in str(error.value)


# ---------------------------------------------------------------- the one special-id rule
def _tokenizer(**special):
    """A word-level tokenizer with only the special tokens given (GPT-2 style: no cls/sep/pad)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<|endoftext|>": 1, "[CLS]": 2, "[SEP]": 3, "[PAD]": 4, "a": 5}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
        unk_token="<unk>",
        **special,
    )


def test_bert_style_ids_are_cls_sep_pad():
    from s2t_edu.labels import special_token_ids

    ids = special_token_ids(_tokenizer(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]"))
    assert ids == {"decoder_start_token_id": 2, "eos_token_id": 3, "pad_token_id": 4}


def test_gpt2_style_ids_are_bos_eos_and_eos_pads():
    from s2t_edu.labels import special_token_ids

    ids = special_token_ids(_tokenizer(bos_token="<|endoftext|>", eos_token="<|endoftext|>"))
    assert ids == {"decoder_start_token_id": 1, "eos_token_id": 1, "pad_token_id": 1}


def test_minilm_tokenizer_ids():
    from transformers import AutoTokenizer

    from s2t_edu.labels import special_token_ids
    from s2t_edu.pretrained.zoo import resolve

    ids = special_token_ids(AutoTokenizer.from_pretrained(resolve("minilm-l6")))
    assert ids == {"decoder_start_token_id": 101, "eos_token_id": 102, "pad_token_id": 0}


def test_set_special_ids_writes_config_and_generation_config():
    from tiny_models import decoder_configs, encoder_configs

    from s2t_edu import build_model, set_special_ids

    model = build_model(encoder_configs()["hubert"], decoder_configs()["bert"])
    set_special_ids(model, _tokenizer(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]"))
    for target in (model.config, model.generation_config):
        assert (target.decoder_start_token_id, target.eos_token_id, target.pad_token_id) == (
            2,
            3,
            4,
        )


def test_a_tokenizer_without_start_or_end_is_refused():
    from s2t_edu.labels import special_token_ids

    with pytest.raises(S2TEduError, match="no token for"):
        special_token_ids(_tokenizer(pad_token="[PAD]"))
