"""The training loop: its loss is the model's, it learns, its data order is reproducible,
Seq2SeqTrainer gives the same losses, and cached encoder frames equal the live encoder's."""

import numpy as np
import pytest
import torch
from train_helpers import write_tiny_checkpoints

from s2t_edu import S2TEduError
from s2t_edu.training.encoder_cache import (
    CachedSplit,
    cached_encoder_outputs,
    encode_clips,
    encoder_fingerprint,
)
from s2t_edu.training.finetune import Settings, build_model_and_processors, datasets_for
from s2t_edu.training.loop import (
    autocast_for,
    batch_order,
    compute_loss,
    cross_attention_map,
    evaluate,
    freeze_encoder,
    make_optimizer,
    make_schedule,
    rng_state,
    set_rng_state,
    set_seed,
    train,
    train_step,
)

SETTINGS = Settings(output_dir="unused", corpus="tiny", end_to_end=False)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny-models"))


def _frozen_run(tiny_dirs, init="warm", seed=0):
    model, extractor, tokenizer = build_model_and_processors(
        *tiny_dirs, init=init, window=5, seed=seed
    )
    freeze_encoder(model)
    splits, collator = datasets_for(SETTINGS, model, extractor, tokenizer)
    return model, extractor, tokenizer, splits, collator


def test_batch_order_is_a_fresh_shuffle_per_epoch_and_reproducible():
    order = batch_order(10, 4, seed=3, steps=5)
    assert order == batch_order(10, 4, seed=3, steps=5)
    flat = [i for batch in order for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert flat[:10] != flat[10:20]  # a new permutation in epoch 2
    assert batch_order(10, 4, seed=4, steps=5) != order
    lengths = list(range(10))
    grouped = batch_order(10, 4, seed=3, steps=2, lengths=lengths, group=1)
    assert all(b == sorted(b, key=lambda i: -lengths[i]) for b in grouped)


def test_compute_loss_equals_the_models_own_loss(tiny_dirs):
    model, _, _, splits, collator = _frozen_run(tiny_dirs)
    batch = collator([splits["train"][i] for i in range(4)])
    model.eval()
    ours = compute_loss(model, batch)
    theirs = model(**batch).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_bf16_autocast_keeps_the_loss_in_fp32(tiny_dirs):
    """The GPU profile's mixed precision, run on CPU: bf16 matmuls, an fp32 loss close to fp32's."""
    model, _, _, splits, collator = _frozen_run(tiny_dirs)
    batch = collator([splits["train"][i] for i in range(4)])
    model.eval()
    full = compute_loss(model, batch)
    logits = []
    hook = model.decoder.get_output_embeddings().register_forward_hook(
        lambda module, args, output: logits.append(output.dtype)
    )
    with autocast_for("cpu", "bf16"):
        mixed = compute_loss(model, batch)
    hook.remove()
    assert logits == [torch.bfloat16]  # autocast really ran the decoder in bf16
    assert mixed.dtype == torch.float32  # ... and the log-softmax and loss did not
    torch.testing.assert_close(mixed, full, rtol=2e-2, atol=0.0)
    with autocast_for("cpu", "auto"):  # auto on CPU: plain fp32, the same number
        assert torch.equal(compute_loss(model, batch), full)
    with pytest.raises(S2TEduError, match="unknown precision"):
        autocast_for("cpu", "fp16")


def test_train_step_changes_only_trainable_weights_and_clips(tiny_dirs):
    model, _, _, splits, collator = _frozen_run(tiny_dirs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = make_optimizer(model, lr=1e-3)
    scheduler = make_schedule(optimizer, 0, 10)
    model.train()
    loss = train_step(model, collator([splits["train"][i] for i in range(4)]), optimizer, scheduler)
    assert np.isfinite(loss)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert not torch.equal(before["enc_to_dec_proj.weight"], after["enc_to_dec_proj.weight"])


def test_train_learns_and_evaluates_wer(tiny_dirs):
    model, _, tokenizer, splits, collator = _frozen_run(tiny_dirs)
    seen = []
    history = train(
        model, splits["train"], collator, tokenizer, steps=20, batch_size=8, lr=3e-3,
        warmup_steps=3, eval_set=torch.utils.data.Subset(splits["validation"], range(3)), eval_every=20,
        callback=lambda step, m: seen.append(step),
    )  # fmt: skip
    assert seen == list(range(1, 21))
    assert np.mean([r["loss"] for r in history[-5:]]) < 0.92 * np.mean(
        [r["loss"] for r in history[:5]]
    )
    assert 0.0 <= history[-1]["wer"] and history[-1]["eval_loss"] > 0
    scores = evaluate(
        model, torch.utils.data.Subset(splits["validation"], range(3)), collator, tokenizer
    )
    assert scores["wer"] == history[-1]["wer"]  # evaluation is deterministic


def test_rng_state_round_trip():
    set_seed(1)
    state = rng_state()
    a = (torch.rand(3), np.random.rand(), __import__("random").random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_cross_attention_map_has_one_row_per_decoder_token(tiny_dirs):
    model, _, tokenizer, splits, collator = _frozen_run(tiny_dirs)
    batch = collator([splits["test"][i] for i in range(2)])
    weights, tokens = cross_attention_map(model, batch, tokenizer, row=1)
    # Rows are named by the token each one predicts: the labels, ending in [SEP], no [CLS].
    label_ids = batch["labels"][1][batch["labels"][1] != -100].tolist()
    assert tokens == tokenizer.convert_ids_to_tokens(label_ids)
    assert weights.shape == (len(tokens), 250) and tokens[-1] == "[SEP]" and "[CLS]" not in tokens
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-4)


def test_cached_frames_equal_the_live_encoder(tiny_dirs):
    model, extractor, _, splits, _ = _frozen_run(tiny_dirs)
    from s2t_edu.data.corpus import load_corpus

    rows = load_corpus("tiny")["test"]
    arrays = [rows[i]["audio"]["array"] for i in range(3)]
    features = extractor(arrays, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        live = model.encoder(features).last_hidden_state
    cached = torch.stack([splits["test"][i]["encoder_hidden_states"] for i in range(3)])
    torch.testing.assert_close(cached, live, rtol=1e-5, atol=1e-5)
    assert splits["test"][0]["text"] == rows[0]["text"]


def test_cache_key_follows_the_weights(tiny_dirs):
    warm, extractor, *_ = build_model_and_processors(*tiny_dirs, init="warm", window=5.0)
    random, *_ = build_model_and_processors(*tiny_dirs, init="random", window=5.0, seed=1)
    assert encoder_fingerprint(warm.encoder) != encoder_fingerprint(random.encoder)
    path = cached_encoder_outputs(warm.encoder, extractor, "tiny", max_clips=2)
    assert len(CachedSplit(path, "train")) == 2


def test_cache_refuses_clips_longer_than_the_window_and_non_whisper_encoders(tiny_dirs):
    model, extractor, *_ = build_model_and_processors(*tiny_dirs, init="warm", window=1.0)
    with pytest.raises(S2TEduError, match="longer than the encoder's 1 s window"):
        encode_clips(model.encoder, extractor, [np.zeros(20000, dtype=np.float32)])
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    wav2vec2 = Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            intermediate_size=37, conv_dim=(8,), conv_kernel=(10,),
                                            conv_stride=(5,)))  # fmt: skip
    with pytest.raises(S2TEduError, match="fixed-window encoder"):
        cached_encoder_outputs(wav2vec2, extractor, "tiny")


def test_seq2seq_trainer_gives_the_same_losses(tiny_dirs, tmp_path):
    """Same model, seed, data order, AdamW and linear schedule: the first losses agree."""
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    steps, batch_size, lr = 6, 4, 1e-3
    # Without dropout: Trainer's DataLoader draws from the global RNG before the first step, so
    # dropout masks would differ; this test is about loss, optimizer, schedule and clipping.
    no_dropout = {"dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
                  "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}  # fmt: skip

    def without_dropout(model):
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            for layer in model.modules():
                if isinstance(getattr(layer, name, None), float):
                    setattr(layer, name, no_dropout[name])
        return model

    model, _, _, splits, collator = _frozen_run(tiny_dirs)
    without_dropout(model)
    order = batch_order(len(splits["train"]), batch_size, seed=0, steps=steps)
    set_seed(0)
    model.train()
    optimizer = make_optimizer(model, lr)
    scheduler = make_schedule(optimizer, 2, steps)
    ours = [
        train_step(model, collator([splits["train"][i] for i in batch]), optimizer, scheduler)
        for batch in order
    ]

    model, _, _, splits, collator = _frozen_run(tiny_dirs)
    without_dropout(model)
    ordered = torch.utils.data.Subset(splits["train"], [i for batch in order for i in batch])
    losses = []

    class Recording(Seq2SeqTrainer):
        def training_step(self, *args, **kwargs):
            loss = super().training_step(*args, **kwargs)
            losses.append(loss.item())
            return loss

    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=batch_size, max_steps=steps,
        learning_rate=lr, warmup_steps=2, lr_scheduler_type="linear", weight_decay=0.0,
        max_grad_norm=1.0, optim="adamw_torch", train_sampling_strategy="sequential",
        remove_unused_columns=False, save_strategy="no", report_to=[], seed=0, use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, logging_strategy="no",
    )  # fmt: skip
    Recording(model=model, args=args, train_dataset=ordered, data_collator=collator).train()
    np.testing.assert_allclose(losses, ours, rtol=1e-5)
    assert ours[-1] < ours[0]
