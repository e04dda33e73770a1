"""Cached frames of a variable-length (wav2vec2-family) encoder, and starting a run from a
saved composite (``--init-from``).

Tiny stand-ins for the zoo's ``w2v2-synth-ctc`` (layer-norm feature encoder, like it) and for
wav2vec2-base (group norm), with the BERT decoder of train_helpers, train in milliseconds.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import write_tiny_checkpoints
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

import s2t_edu.training.loop as loop
from s2t_edu import S2TEduError
from s2t_edu.data.collator import SpeechSeq2SeqCollator
from s2t_edu.data.corpus import load_corpus
from s2t_edu.frames import encoder_output_lengths
from s2t_edu.training import finetune
from s2t_edu.training.encoder_cache import (
    CachedFramesCollator,
    CachedSplit,
    cached_encoder_outputs,
    encode_clips,
)
from s2t_edu.training.loop import compute_loss, freeze_encoder, train_step, transcribe

NO_DROPOUT = {"hidden_dropout": 0.0, "activation_dropout": 0.0, "attention_dropout": 0.0,
              "feat_proj_dropout": 0.0, "final_dropout": 0.0, "layerdrop": 0.0}  # fmt: skip


def _wav2vec2_config(norm: str, **extra) -> Wav2Vec2Config:
    # conv strides 5*8*8 = 320 samples per frame, as in wav2vec2 (50 frames a second)
    return Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16, 16, 16), conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm=norm, do_stable_layer_norm=norm == "layer", **extra,
    )  # fmt: skip


def _write_wav2vec2(directory: Path, norm: str, **extra) -> str:
    torch.manual_seed(0)
    Wav2Vec2Model(_wav2vec2_config(norm, **extra)).save_pretrained(directory)
    # what the zoo's w2v2-synth-ctc ships: per-clip normalisation, an attention mask
    Wav2Vec2FeatureExtractor(return_attention_mask=norm == "layer").save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(layer-norm wav2vec2, group-norm wav2vec2, BERT decoder) checkpoint folders; no dropout
    and no SpecAugment in the layer-norm one, so train mode computes what eval mode does."""
    root = tmp_path_factory.mktemp("tiny-w2v2")
    _, decoder = write_tiny_checkpoints(root / "whisper-bert")
    config = json.loads((Path(decoder) / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (Path(decoder) / "config.json").write_text(json.dumps(config))
    layer = _write_wav2vec2(root / "layer", "layer", apply_spec_augment=False, **NO_DROPOUT)
    group = _write_wav2vec2(root / "group", "group")
    return layer, group, decoder


@pytest.fixture(scope="module")
def clips():
    rows = load_corpus("tiny")["train"]
    return [rows[i] for i in range(6)]  # 1.5 to 3 s: batches need padding


def _encoder_and_extractor(encoder_dir, decoder_dir):
    model, extractor, tokenizer = finetune.build_model_and_processors(encoder_dir, decoder_dir)
    return model, extractor, tokenizer


def _alone_vs_batched(model, extractor, arrays):
    """Each clip's frames encoded alone, and the same clips encoded in one padded batch (cut
    to each clip's frame count)."""
    alone = encode_clips(model.encoder, extractor, arrays)
    batch = SpeechSeq2SeqCollator(extractor, _tokenizer()).audio_batch(arrays)
    with torch.no_grad():
        batched = model.encoder(batch["input_values"], attention_mask=batch.get("attention_mask"))
    lengths = encoder_output_lengths(model.config.encoder, torch.tensor([len(a) for a in arrays]))
    return alone, [batched.last_hidden_state[i, :n].numpy() for i, n in enumerate(lengths)]


def _tokenizer():
    from transformers import AutoTokenizer

    from s2t_edu.pretrained.zoo import resolve

    return AutoTokenizer.from_pretrained(resolve("minilm-l6"))


# ---------------------------------------------------------------- which encoders can be cached
def test_layer_norm_clip_alone_equals_the_clip_in_a_padded_batch(tiny, clips):
    """The claim the cache rests on: with a layer-norm feature encoder and the attention mask,
    padding changes none of a clip's frames."""
    model, extractor, _ = _encoder_and_extractor(tiny[0], tiny[2])
    arrays = [row["audio"]["array"] for row in clips]
    assert len({len(a) for a in arrays}) > 1  # the batch really pads
    alone, batched = _alone_vs_batched(model, extractor, arrays)
    for a, b in zip(alone, batched, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)


def test_group_norm_frames_change_with_padding_so_the_cache_refuses(tiny, clips):
    """Why group norm is refused: a clip padded inside a batch (no mask, as wav2vec2-base is
    trained) gets other frames than the clip alone."""
    model, extractor, _ = _encoder_and_extractor(tiny[1], tiny[2])
    arrays = [row["audio"]["array"] for row in clips]
    alone, batched = _alone_vs_batched(model, extractor, arrays)
    shortest = int(np.argmin([len(a) for a in arrays]))
    assert np.abs(alone[shortest] - batched[shortest]).max() > 1e-2
    with pytest.raises(S2TEduError, match="group norm") as error:
        cached_encoder_outputs(model.encoder, extractor, "tiny")
    assert "--end-to-end" in error.value.fix


def test_a_layer_norm_encoder_without_an_attention_mask_is_refused(tiny):
    model, extractor, _ = _encoder_and_extractor(tiny[0], tiny[2])
    extractor.return_attention_mask = False
    with pytest.raises(S2TEduError, match="returns no attention mask"):
        cached_encoder_outputs(model.encoder, extractor, "tiny")


# ---------------------------------------------------------------- the stored frames
@pytest.fixture(scope="module")
def cached(tiny):
    model, extractor, tokenizer = _encoder_and_extractor(tiny[0], tiny[2])
    directory = cached_encoder_outputs(model.encoder, extractor, "tiny", max_clips=6)
    return model, extractor, tokenizer, directory


def test_each_clip_is_stored_unpadded_with_every_text_column(cached, clips):
    model, extractor, _, directory = cached
    split = CachedSplit(directory, "train")
    assert len(split) == 6
    for index, row in enumerate(clips):
        stored = split[index]
        samples = len(row["audio"]["array"])
        frames = int(encoder_output_lengths(model.config.encoder, torch.tensor([samples]))[0])
        assert stored["samples"] == samples
        assert stored["encoder_hidden_states"].shape == (frames, model.config.encoder.hidden_size)
        assert (stored["text"], stored["text_de_ascii"]) == (row["text"], row["text_de_ascii"])
    alone = encode_clips(model.encoder, extractor, [clips[2]["audio"]["array"]])[0]
    np.testing.assert_array_equal(split[2]["encoder_hidden_states"].numpy(), alone)


@pytest.mark.parametrize("column", ["text", "text_de_ascii"])
def test_cached_batches_give_the_loss_and_transcripts_of_audio_batches(cached, clips, column):
    """The same clips as audio (the encoder runs, padded batch + mask) and as cached frames
    (padded with zeros + the clips' audio mask): the same loss and the same greedy output."""
    model, extractor, tokenizer, directory = cached
    labels = SpeechSeq2SeqCollator(extractor, tokenizer, text_column=column)
    split = CachedSplit(directory, "train")
    audio = labels(clips)
    frames = CachedFramesCollator(labels)([split[i] for i in range(len(clips))])
    assert torch.equal(audio["labels"], frames["labels"])
    assert torch.equal(audio["attention_mask"], frames["attention_mask"])
    model.eval()
    torch.testing.assert_close(
        compute_loss(model, frames), compute_loss(model, audio), atol=1e-5, rtol=1e-5
    )
    assert transcribe(model, frames, tokenizer, 6) == transcribe(model, audio, tokenizer, 6)


def test_training_on_cached_frames_follows_training_on_audio(tiny, cached, clips):
    """Three optimizer steps with a frozen encoder, once on audio batches and once on cached
    frames, from the same weights: the same losses, the same trained decoder."""
    model, extractor, tokenizer, directory = cached
    labels = SpeechSeq2SeqCollator(extractor, tokenizer)
    split = CachedSplit(directory, "train")
    batches = [[0, 1, 2], [3, 4, 5], [5, 0, 3]]
    runs = {}
    for kind in ("audio", "frames"):
        twin = finetune.build_model_and_processors(tiny[0], tiny[2])[0]
        freeze_encoder(twin)
        optimizer, scheduler = loop.prepare_training(twin, 1e-3, 1, 3, seed=0, device="cpu")
        losses = []
        for rows in batches:
            if kind == "audio":
                batch = labels([clips[i] for i in rows])
            else:
                batch = CachedFramesCollator(labels)([split[i] for i in rows])
            losses.append(train_step(twin, batch, optimizer, scheduler))
        runs[kind] = (losses, twin.state_dict())
    np.testing.assert_allclose(runs["audio"][0], runs["frames"][0], rtol=1e-5)
    for name, tensor in runs["audio"][1].items():
        torch.testing.assert_close(runs["frames"][1][name], tensor, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- the CLI: cache, resume, stages
def _args(tiny, out, *extra):
    return [
        "--encoder", tiny[0], "--decoder", tiny[2], "--corpus", "tiny", "--max-clips", "12",
        "--batch-size", "4", "--lr", "1e-3", "--warmup-steps", "2", "--eval-clips", "4",
        "--device", "cpu", "--quiet", "--freeze-word-embeddings", "--output-dir", str(out),
        *extra,
    ]  # fmt: skip


def _weights(out: Path) -> dict:
    return torch.load(finetune.latest_checkpoint(out) / "state.pt", weights_only=False)["model"]


def _interrupted_then_resumed(tiny, out, args, monkeypatch, stop_at):
    """Run ``args``, crash at step ``stop_at`` (after a checkpoint), then run them again."""
    real_step, calls = loop.train_step, []

    def crash(*a, **k):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    with monkeypatch.context() as patch:
        patch.setattr(loop, "train_step", crash)
        with pytest.raises(KeyboardInterrupt):
            finetune.main(args)
    assert finetune.latest_checkpoint(out).name != "step-000008"
    assert finetune.main(args) == 0


def test_cli_caches_a_wav2vec2_encoder_and_resumes_exactly(tiny, tmp_path, monkeypatch):
    steps = ["--steps", "8", "--save-every", "3", "--eval-every", "4", "--no-save-model"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert finetune.main(_args(tiny, reference, *steps)) == 0
    saved = json.loads((reference / "run_config.json").read_text())
    assert saved["end_to_end"] is False  # the CPU profile: frozen encoder, cached frames
    assert not any(k.startswith("encoder.") for k in _weights(reference))
    _interrupted_then_resumed(tiny, resumed, _args(tiny, resumed, *steps), monkeypatch, 5)
    a, b = _weights(reference), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_stage_starts_from_the_first_and_resumes_exactly(tiny, tmp_path, monkeypatch):
    """Stage 1 on cached frames saves model/; stage 2 trains end to end from those weights
    (--init-from). Interrupted and resumed, stage 2 ends with the uninterrupted run's weights."""
    first = tmp_path / "stage1"
    assert finetune.main(_args(tiny, first, "--steps", "4", "--eval-every", "0")) == 0
    stage2 = ["--init-from", str(first / "model"), "--end-to-end", "--freeze-feature-encoder",
              "--steps", "8", "--save-every", "3", "--eval-every", "0",
              "--no-save-model"]  # fmt: skip

    model = finetune.build_model_and_processors(tiny[0], tiny[2])[0]
    finetune.load_weights_from(model, first / "model")
    from s2t_edu.model import load_speech_encoder_decoder

    stage1_weights = load_speech_encoder_decoder(first / "model").state_dict()
    assert all(torch.equal(v, stage1_weights[k]) for k, v in model.state_dict().items())
    fresh = finetune.build_model_and_processors(tiny[0], tiny[2])[0].state_dict()
    cross = "decoder.bert.encoder.layer.0.crossattention.self.query.weight"
    assert not torch.equal(fresh[cross], stage1_weights[cross])  # stage 1 did train it

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert finetune.main(_args(tiny, reference, *stage2)) == 0
    # its first loss is stage 1's model's on stage 2's first batch (no dropout in these models)
    _, extractor, tokenizer = finetune.build_model_and_processors(tiny[0], tiny[2])
    train = load_corpus("tiny")["train"]
    first_batch = next(loop.batch_stream(12, 4, seed=0))
    batch = SpeechSeq2SeqCollator(extractor, tokenizer)([train[i] for i in first_batch])
    model.train()
    with torch.no_grad():
        expected = compute_loss(model, batch).item()
    history = json.loads((reference / "metrics.json").read_text())
    assert history[0]["loss"] == pytest.approx(expected, rel=1e-5)
    assert any(k.startswith("encoder.encoder.layers.") for k in _weights(reference))
    _interrupted_then_resumed(tiny, resumed, _args(tiny, resumed, *stage2), monkeypatch, 6)
    a, b = _weights(reference), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_init_from_is_checked(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    code = finetune.main(_args(tiny, out, "--steps", "1", "--init-from", str(tmp_path / "none")))
    assert (
        code == 2 and "must be a saved SpeechEncoderDecoderModel folder" in capsys.readouterr().err
    )
    assert not out.exists()
    whisper, decoder = write_tiny_checkpoints(tmp_path / "whisper")
    other = tmp_path / "other"
    argv = ["--encoder", whisper, "--decoder", decoder, "--corpus", "tiny", "--max-clips", "4",
            "--steps", "1", "--batch-size", "2", "--eval-every", "0", "--device", "cpu",
            "--quiet", "--output-dir", str(other)]  # fmt: skip
    assert finetune.main(argv) == 0
    with pytest.raises(S2TEduError, match="another architecture"):
        finetune.run(finetune.parse_args(_args(tiny, out, "--steps", "1", "--init-from",
                                               str(other / "model"))))  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
