"""Chapter 7's gallery, one test per entry: the failure still happens on the pinned stack (so an
upgrade that fixes it upstream is noticed), the fix removes it, and doctor reports it where the
entry says it can.

The trained models come from s2t_edu.teaching.failure_modes' four-clip task; each mistake is
trained once per module (about ten seconds each on two cores).
"""

import numpy as np
import pytest
import soxr
import torch
import transformers
from torch.nn.parallel import DistributedDataParallel
from transformers import (
    AutoModelForCausalLM,
    BertModel,
    GPT2Config,
    HubertConfig,
    HubertModel,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    SpeechEncoderDecoderModel,
    Wav2Vec2ForCTC,
    Wav2Vec2Model,
    Wav2Vec2Processor,
)

from s2t_edu import build_model, doctor, pretrained, set_special_ids
from s2t_edu.data import load_corpus
from s2t_edu.doctor import FAILURE_MODES, Kind, caught_entries
from s2t_edu.frames import encoder_output_lengths, minimum_input_length
from s2t_edu.labels import IGNORE_INDEX
from s2t_edu.metrics import cer
from s2t_edu.pretrained.w2v2_ctc import greedy_ctc_texts
from s2t_edu.teaching import failure_modes as fm
from s2t_edu.teaching.load_report import loading_report


def _kinds(findings):
    return {finding.kind for finding in findings}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models 32 wide gain nothing from a second thread, and on a busy machine lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task():
    return fm.tiny_task()


def _one_second(task, clips=1):
    """The first second of the first clips, with their labels: enough for shape-level checks."""
    batch = task.batch
    return {
        "input_values": batch["input_values"][:clips, :16_000],
        "attention_mask": batch["attention_mask"][:clips, :16_000],
        "labels": batch["labels"][:clips],
    }


@pytest.fixture(scope="module")
def healthy(task):
    model = task.model()
    fm.train_briefly(model, task.batch)
    return model


@pytest.fixture(scope="module")
def padded(task):
    """The task's sentences as many scripts tokenize them: [CLS] ... [SEP], padded with [PAD]."""
    return task.tokenizer(task.texts, padding=True, return_tensors="pt")


def test_the_gallery_covers_every_entry_and_doctor_catches_at_least_ten():
    assert sorted(FAILURE_MODES) == list(range(1, 23))
    assert len(caught_entries()) >= 10
    table = fm.table_of_contents()
    assert all(f"| {n} |" in table for n in FAILURE_MODES)


def test_healthy_bench_transcribes_its_four_clips(task, healthy):
    assert fm.transcripts(healthy, task.audio(), task.tokenizer) == task.texts
    assert doctor(healthy, task.tokenizer, batch=task.batch, sampling_rate=16_000) == []


# --- building the model ------------------------------------------------------------------------


def test_01_decoder_without_cross_attention(task):
    decoder_config = fm.tiny_decoder_config(len(task.tokenizer), is_decoder=True)
    broken = SpeechEncoderDecoderModel(
        encoder=Wav2Vec2Model(fm.tiny_encoder_config()),
        decoder=AutoModelForCausalLM.from_config(decoder_config),  # built: no error yet
    )
    set_special_ids(broken, task.tokenizer)
    outcome = fm.attempt(broken, **task.batch)
    assert isinstance(outcome.error, ValueError)
    assert "has to be instantiated with cross-attention layers" in str(outcome.error)
    assert Kind.NO_CROSS_ATTENTION in _kinds(doctor(broken))
    fixed = task.model()  # compose_config sets is_decoder and add_cross_attention
    assert not fm.attempt(fixed, **task.batch).failed and doctor(fixed) == []


def test_02_new_cross_attention_gives_every_clip_the_same_transcript(task, healthy):
    torch.manual_seed(0)
    _, report = loading_report(
        SpeechEncoderDecoderModel.from_encoder_decoder_pretrained,
        pretrained.resolve("w2v2-synth-ctc"),
        pretrained.resolve("minilm-l6"),
    )
    missing = [line.split("|")[0].strip() for line in report.splitlines() if "| MISSING" in line]
    assert any("crossattention" in key for key in missing)
    assert all("crossattention" in key or "cls.predictions" in key for key in missing)
    # the tiny bench: untrained, the same words for every clip; trained, each its own
    fresh = fm.transcripts(task.model(), task.audio(), task.tokenizer, max_new_tokens=8)
    assert len(set(fresh)) == 1
    assert fm.transcripts(healthy, task.audio(), task.tokenizer) == task.texts


def test_03_generation_settings_in_model_config(task, tmp_path):
    model = task.model()
    model.config.num_beams = 4
    saved = fm.attempt(model.save_pretrained, tmp_path / "model")
    assert "Some generation parameters are set in the model config" in str(saved.error)
    generated = fm.attempt(model.generate, task.batch["input_values"], max_new_tokens=3)
    assert "You have modified the pretrained model configuration" in str(generated.error)
    assert Kind.GENERATION_SETTINGS_IN_CONFIG in _kinds(doctor(model))
    del model.config.num_beams
    model.generation_config.num_beams = 4
    assert not fm.attempt(model.save_pretrained, tmp_path / "model").failed
    assert doctor(model) == []
    # ... and passed to from_encoder_decoder_pretrained they are dropped, or crash
    Wav2Vec2Model(fm.tiny_encoder_config()).save_pretrained(tmp_path / "encoder")
    BertModel(fm.tiny_decoder_config(len(task.tokenizer))).save_pretrained(tmp_path / "decoder")
    dirs = (tmp_path / "encoder", tmp_path / "decoder")
    quiet = fm.attempt(
        SpeechEncoderDecoderModel.from_encoder_decoder_pretrained, *dirs, num_beams=4
    )
    assert quiet.value.generation_config.num_beams != 4  # went nowhere, without a warning
    assert getattr(quiet.value.config, "num_beams", None) != 4 and not quiet.warnings
    start = fm.attempt(
        SpeechEncoderDecoderModel.from_encoder_decoder_pretrained,
        *dirs,
        decoder_start_token_id=1,
    )
    assert isinstance(start.error, TypeError) and "'start_token_id'" in str(start.error)


def test_04_special_ids_and_where_generate_reads_them(task):
    encoder, decoder = fm.tiny_encoder_config(), fm.tiny_decoder_config(len(task.tokenizer))
    model = build_model(encoder, decoder)
    trained = fm.attempt(model, **task.batch)
    assert "object has no attribute 'pad_token_id'" in str(trained.error)
    assert {Kind.MISSING_DECODER_START, Kind.MISSING_EOS} <= _kinds(doctor(model))
    model.config.decoder_start_token_id = task.tokenizer.cls_token_id
    model.config.pad_token_id = task.tokenizer.pad_token_id
    model.config.eos_token_id = task.tokenizer.sep_token_id
    assert not fm.attempt(model, **task.batch).failed  # training reads model.config
    generated = fm.attempt(model.generate, task.batch["input_values"], max_new_tokens=3)
    assert "`decoder_start_token_id` or `bos_token_id` has to be defined" in str(generated.error)
    assert _kinds(doctor(model)) == {Kind.GENERATE_HAS_NO_START, Kind.GENERATE_HAS_NO_EOS}
    set_special_ids(model, task.tokenizer)
    assert not fm.attempt(model.generate, task.batch["input_values"], max_new_tokens=3).failed
    assert doctor(model) == []


def test_05_tokenizer_and_decoder_disagree(task):
    model = task.model()
    tokenizer = fm.word_tokenizer(task.texts)
    tokenizer.add_tokens(["hello"])
    labels = torch.tensor([[tokenizer.convert_tokens_to_ids("hello"), 2]])
    audio = {"input_values": task.batch["input_values"][:1]}
    crashed = fm.attempt(model, **audio, labels=labels)
    assert isinstance(crashed.error, IndexError) and "index out of range" in str(crashed.error)
    assert Kind.VOCAB_MISMATCH in _kinds(doctor(model, tokenizer))
    model.decoder.resize_token_embeddings(len(tokenizer))
    assert not fm.attempt(model, **audio, labels=labels).failed
    no_pad = fm.word_tokenizer(task.texts)
    no_pad.pad_token = None  # GPT-2's tokenizer ships without one
    padded = fm.attempt(no_pad, task.texts, padding=True)
    assert "Asking to pad but the tokenizer does not have a padding token" in str(padded.error)
    assert Kind.TOKENIZER_WITHOUT_PAD in _kinds(doctor(task.model(), no_pad))
    no_pad.pad_token = no_pad.sep_token
    assert not fm.attempt(no_pad, task.texts, padding=True).failed


def test_06_hubert_ignores_add_adapter(task):
    settings = fm.tiny_encoder_config().to_dict()
    hubert = HubertConfig(**{**settings, "add_adapter": True, "num_adapter_layers": 2})
    assert hubert.add_adapter  # accepted and stored ...
    encoder = HubertModel(hubert).eval()
    assert not any("adapter" in name for name, _ in encoder.named_modules())  # ... and ignored
    audio = task.batch["input_values"][:1]
    with torch.no_grad():
        frames = encoder(audio).last_hidden_state.shape[1]
    model = build_model(hubert, fm.tiny_decoder_config(len(task.tokenizer)))
    set_special_ids(model, task.tokenizer)
    assert frames == int(encoder_output_lengths(hubert, audio.shape[1]))  # no shortening at all
    assert Kind.ADAPTER_IGNORED in _kinds(doctor(model))
    wav2vec2 = fm.tiny_encoder_config(add_adapter=True, num_adapter_layers=2, layerdrop=0.0)
    with torch.no_grad():
        shorter = Wav2Vec2Model(wav2vec2).eval()(audio).last_hidden_state.shape[1]
    assert shorter < frames / 3 and shorter == int(encoder_output_lengths(wav2vec2, audio.shape[1]))


def test_07_adapter_layerdrop_masks_part_of_the_clip(task):
    torch.manual_seed(0)
    model = task.model(add_adapter=True, num_adapter_layers=2)
    assert model.config.encoder.layerdrop == 0.1  # transformers' default
    model.train()
    second = _one_second(task)
    audio, mask = second["input_values"], second["attention_mask"]
    seen = set()
    for _ in range(20):
        frames = model.encoder(audio, attention_mask=mask).last_hidden_state.shape[1]
        # the decoder's audio mask, as SpeechEncoderDecoderModel.forward builds it
        kept = int(model.encoder._get_feature_vector_attention_mask(frames, mask).sum())
        seen.add((frames, kept))
    assert len(seen) > 1 and any(kept < frames for frames, kept in seen)
    assert Kind.ADAPTER_LAYERDROP in _kinds(doctor(model))
    model.config.encoder.layerdrop = model.encoder.config.layerdrop = 0.0
    model.encoder.adapter.layerdrop = 0.0
    lengths = {
        model.encoder(audio, attention_mask=mask).last_hidden_state.shape[1] for _ in range(20)
    }
    assert len(lengths) == 1 and doctor(model) == []


# --- preparing the data ------------------------------------------------------------------------


def test_08_audio_at_the_wrong_sampling_rate(task):
    directory = pretrained.resolve("w2v2-synth-ctc")
    ctc, processor = (
        Wav2Vec2ForCTC.from_pretrained(directory).eval(),
        Wav2Vec2Processor.from_pretrained(directory),
    )
    row = load_corpus("tiny")["test"][0]
    at_44k = soxr.resample(np.asarray(row["audio"]["array"]), 16_000, 44_100)
    heard = fm.attempt(processor, at_44k, return_tensors="pt")
    assert "It is strongly recommended to pass the `sampling_rate` argument" in " ".join(heard.log)
    wrong = greedy_ctc_texts(ctc, heard.value.data, processor)[0]
    assert cer([row["text"]], [wrong]) > 0.5
    refused = fm.attempt(processor, at_44k, sampling_rate=44_100, return_tensors="pt")
    assert "was trained using a sampling rate of 16000" in str(refused.error)
    assert _kinds(doctor(task.model(), sampling_rate=44_100)) == {Kind.SAMPLING_RATE}
    resampled = soxr.resample(at_44k, 44_100, 16_000)
    right = greedy_ctc_texts(
        ctc, processor(resampled, sampling_rate=16_000, return_tensors="pt").data, processor
    )[0]
    assert cer([row["text"]], [right]) < 0.1


def test_09_clips_too_short(task):
    model = task.model(mask_time_prob=0.05)  # transformers' default SpecAugment
    model.train()
    tiny_clip = {"input_values": torch.randn(1, 100), "labels": torch.tensor([[5, 2]])}
    crashed = fm.attempt(model, **tiny_clip)
    assert "Kernel size can't be greater than actual input size" in str(crashed.error)
    assert Kind.CLIP_SHORTER_THAN_RECEPTIVE_FIELD in _kinds(doctor(model, batch=tiny_clip))
    short_clip = {"input_values": torch.randn(1, 600), "labels": torch.tensor([[5, 2]])}
    masked = fm.attempt(model, **short_clip)
    assert "`mask_length` has to be smaller than `sequence_length`" in str(masked.error)
    assert Kind.CLIP_TOO_SHORT_FOR_MASKING in _kinds(doctor(model, batch=short_clip))
    long_enough = minimum_input_length(model.config.encoder)
    assert not fm.attempt(
        model.eval(), input_values=torch.randn(1, long_enough), labels=torch.tensor([[5, 2]])
    ).failed
    assert not fm.attempt(model.train(), **task.batch).failed  # real clips: seconds long


def test_10_group_norm_batched_differs_from_single(task):
    torch.manual_seed(0)
    audio, mask = task.batch["input_values"], task.batch["attention_mask"]
    shortest = int(mask.sum(-1).argmin())
    length = int(mask[shortest].sum())
    results = {}
    for norm in ("group", "layer"):
        encoder = Wav2Vec2Model(
            fm.tiny_encoder_config(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
        ).eval()
        with torch.no_grad():
            alone = encoder(audio[shortest : shortest + 1, :length]).last_hidden_state
            batched = encoder(audio, attention_mask=mask).last_hidden_state[
                shortest, : alone.shape[1]
            ]
        results[norm] = float((alone[0] - batched).abs().max())
    assert results["group"] > 1e-2 and results["layer"] < 1e-4
    group = build_model(
        fm.tiny_encoder_config(feat_extract_norm="group", do_stable_layer_norm=False),
        fm.tiny_decoder_config(len(task.tokenizer)),
    )
    set_special_ids(group, task.tokenizer)
    assert Kind.GROUP_NORM_ATTENTION_MASK in _kinds(doctor(group, batch=task.batch))


def test_11_whisper_encoder_inputs(task):
    model = build_model(
        "whisper-tiny.en", fm.tiny_decoder_config(len(task.tokenizer)), pretrained=("encoder",)
    )
    set_special_ids(model, task.tokenizer)
    labels = torch.tensor([[5, 2]])
    ten_seconds = torch.zeros(1, 80, 1000)  # 10 s of log-mel frames, not padded to 30 s
    unpadded = fm.attempt(model, input_features=ten_seconds, labels=labels)
    assert "Whisper expects the mel input features to be of length 3000, but found 1000" in str(
        unpadded.error
    )
    assert Kind.WHISPER_WINDOW in _kinds(doctor(model, batch={"input_features": ten_seconds}))
    window = torch.zeros(1, 80, 3000)
    masked = fm.attempt(
        model,
        input_features=window,
        attention_mask=torch.ones(1, 3000, dtype=torch.long),
        labels=labels,
    )
    assert "_get_feature_vector_attention_mask" in str(masked.error)
    assert Kind.WHISPER_ATTENTION_MASK in _kinds(doctor(model, attention_mask=torch.ones(1, 3000)))
    assert not fm.attempt(model, input_features=window, labels=labels).failed


# --- the labels --------------------------------------------------------------------------------


def test_12_padding_left_in_the_labels(task, padded, healthy):
    many_pads = task.tokenizer(
        task.texts, padding="max_length", max_length=128, return_tensors="pt"
    )
    labels = many_pads.input_ids[:, 1:]  # [CLS] dropped, [PAD] kept
    model = task.model()
    losses = fm.train_briefly(model, {**task.audio(), "labels": labels})
    heard = fm.transcripts(model, task.audio(), task.tokenizer)
    assert losses[-1] < 0.2 and len(set(heard)) < len(task.texts)  # low loss, clips confused
    assert _kinds(doctor(model, labels=labels)) == {Kind.PAD_IN_LABELS}
    assert fm.transcripts(healthy, task.audio(), task.tokenizer) == task.texts


def test_13_eos_masked_with_the_padding(task, padded, healthy):
    labels = padded.input_ids[:, 1:].clone()
    eos = task.tokenizer.sep_token_id
    labels[labels == eos] = IGNORE_INDEX  # pad == EOS (GPT-2, Whisper): masking by id
    labels[labels == task.tokenizer.pad_token_id] = IGNORE_INDEX
    model = task.model()
    fm.train_briefly(model, {**task.audio(), "labels": labels})
    rambling = fm.transcripts(model, task.audio(), task.tokenizer, max_new_tokens=16)
    assert all(len(said.split()) == 16 for said in rambling)  # never stops
    assert all(said.startswith(text) for said, text in zip(rambling, task.texts, strict=True))
    assert Kind.LABELS_WITHOUT_EOS in _kinds(doctor(model, labels=labels))
    assert fm.transcripts(healthy, task.audio(), task.tokenizer, max_new_tokens=16) == task.texts


def test_14_start_token_twice(task, padded, healthy):
    labels = padded.input_ids.masked_fill(padded.attention_mask == 0, IGNORE_INDEX)  # [CLS] kept
    model = task.model()
    fm.train_briefly(model, {**task.audio(), "labels": labels})
    said = fm.transcripts(model, task.audio(), task.tokenizer, skip_special_tokens=False)
    assert all(text.startswith("[CLS] [CLS] ") for text in said)
    assert Kind.START_IN_LABELS in _kinds(doctor(model, labels=labels))
    once = fm.transcripts(healthy, task.audio(), task.tokenizer, skip_special_tokens=False)
    assert all(text.startswith("[CLS] ") and not text.startswith("[CLS] [CLS]") for text in once)


def test_15_labels_longer_than_the_position_table(task):
    model = task.model()
    labels = torch.full((1, 600), 5)
    labels[0, -1] = task.tokenizer.sep_token_id
    audio = {"input_values": task.batch["input_values"][:1]}
    crashed = fm.attempt(model, **audio, labels=labels)
    assert "The expanded size of the tensor (600) must match the existing size (512)" in str(
        crashed.error
    )
    assert Kind.LABELS_TOO_LONG in _kinds(doctor(model, labels=labels))
    gpt2 = build_model(
        fm.tiny_encoder_config(),
        GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=2, n_positions=64),
    )
    gpt2_crash = fm.attempt(gpt2, **audio, decoder_input_ids=torch.full((1, 80), 5))
    assert isinstance(gpt2_crash.error, IndexError)
    assert not fm.attempt(model, **audio, labels=labels[:, :512]).failed


def test_16_decoder_inputs_equal_to_the_labels(task, padded, healthy):
    leaky = {
        **task.audio(),
        "decoder_input_ids": padded.input_ids,
        "labels": padded.input_ids.masked_fill(padded.attention_mask == 0, IGNORE_INDEX),
    }
    model = task.model()
    losses = fm.train_briefly(model, leaky, loss_fn=fm.model_loss)
    said = fm.transcripts(
        model, task.audio(), task.tokenizer, skip_special_tokens=False, max_new_tokens=8
    )
    assert losses[-1] < 0.1 and all(text == " ".join(["[CLS]"] * 9) for text in said)
    assert Kind.LABELS_NOT_SHIFTED in _kinds(doctor(model, batch=leaky))
    assert doctor(healthy, batch=task.batch) == []


# --- training ----------------------------------------------------------------------------------


def _dataset():
    return load_corpus("tiny")["train"].select(range(4))


def test_17_remove_unused_columns(task, tmp_path):
    model = task.model()
    arguments = dict(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    default = Seq2SeqTrainingArguments(**arguments)
    trainer = Seq2SeqTrainer(
        model=model, args=default, train_dataset=_dataset(), data_collator=task.collator()
    )
    dropped = fm.attempt(trainer.train)
    assert "No columns in the dataset match the model's forward method signature" in str(
        dropped.error
    )
    findings = doctor(model, training_args=default, dataset_columns=_dataset().column_names)
    assert Kind.COLUMNS_REMOVED in _kinds(findings)
    kept = Seq2SeqTrainingArguments(**arguments, remove_unused_columns=False)
    trainer = Seq2SeqTrainer(
        model=model, args=kept, train_dataset=_dataset(), data_collator=task.collator()
    )
    assert not fm.attempt(trainer.train).failed


def test_18_freeze_feature_encoder_needs_a_feature_encoder(task):
    whisper = build_model(
        "whisper-tiny.en", fm.tiny_decoder_config(len(task.tokenizer)), pretrained=("encoder",)
    )
    frozen = fm.attempt(whisper.freeze_feature_encoder)
    assert "'WhisperEncoder' object has no attribute 'freeze_feature_encoder'" in str(frozen.error)
    wav2vec2 = task.model()
    wav2vec2.freeze_feature_encoder()
    assert not any(p.requires_grad for p in wav2vec2.encoder.feature_extractor.parameters())
    for layer in (whisper.encoder.conv1, whisper.encoder.conv2):  # Whisper's own conv front end
        layer.requires_grad_(False)
    assert any(p.requires_grad for p in whisper.encoder.layers.parameters())


def _ddp_steps(model, batch, steps=3, **ddp_options):
    with fm.one_process_group():
        wrapped = DistributedDataParallel(model, **ddp_options)
        optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
        for _ in range(steps):
            wrapped(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()


def test_19_layerdrop_with_distributed_training(task, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = task.model(layerdrop=0.5).train()
    batch = _one_second(task)
    crashed = fm.attempt(_ddp_steps, model, batch)
    assert "Expected to have finished reduction in the prior iteration" in str(crashed.error)
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    monkeypatch.setattr(Seq2SeqTrainingArguments, "world_size", property(lambda self: 2))
    assert Kind.LAYERDROP_DDP in _kinds(doctor(model, training_args=args))
    torch.manual_seed(0)
    assert not fm.attempt(
        _ddp_steps, task.model(layerdrop=0.5).train(), batch, find_unused_parameters=True
    ).failed
    assert not fm.attempt(_ddp_steps, task.model(layerdrop=0.0).train(), batch).failed


# --- generating and evaluating -----------------------------------------------------------------


def test_20_generation_never_stops_without_eos(task, healthy):
    healthy.generation_config.eos_token_id = None
    try:
        rambling = fm.transcripts(healthy, task.audio(), task.tokenizer, max_new_tokens=16)
        for said, text in zip(rambling, task.texts, strict=True):  # the sentence, then more
            assert said.startswith(text) and len(said.split()) > len(text.split())
        assert Kind.GENERATE_HAS_NO_EOS in _kinds(doctor(healthy))
    finally:
        healthy.generation_config.eos_token_id = task.tokenizer.sep_token_id
    assert fm.transcripts(healthy, task.audio(), task.tokenizer, max_new_tokens=16) == task.texts
    # a real BERT checkpoint has no eos_token_id at all
    warm = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
        pretrained.resolve("w2v2-synth-ctc"), pretrained.resolve("minilm-l6")
    )
    assert warm.generation_config.eos_token_id is None


def test_21_transcripts_cut_at_twenty_tokens(task):
    long = fm.one_long_clip(task)
    model = long.model()
    fm.train_briefly(model, long.batch)
    cut = fm.attempt(model.generate, **long.audio())  # no length given anywhere
    assert "model-agnostic default `max_length` (=21)" in cut.warnings[0]
    heard = long.tokenizer.decode(cut.value[0], skip_special_tokens=True)
    assert len(heard.split()) == 20 and long.texts[0].startswith(heard)
    assert Kind.TRANSCRIPTS_CUT in _kinds(doctor(model, labels=long.batch["labels"]))
    whole = fm.transcripts(model, long.audio(), long.tokenizer, max_new_tokens=64)
    assert whole == long.texts


def test_22_compute_metrics_decoding_minus_100(task, healthy, tmp_path):
    def compute_metrics(prediction):  # what many scripts write
        texts = task.tokenizer.batch_decode(prediction.label_ids, skip_special_tokens=True)
        return {"n": len(texts)}

    arguments = dict(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=2,
        report_to=[],
        use_cpu=True,
        predict_with_generate=True,
        generation_max_length=16,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = Seq2SeqTrainer(
        model=healthy,
        args=Seq2SeqTrainingArguments(**arguments),
        data_collator=task.collator(),
        compute_metrics=compute_metrics,
    )
    crashed = fm.attempt(trainer.evaluate, _dataset())
    assert isinstance(crashed.error, OverflowError)

    def fixed_metrics(prediction):
        label_ids = np.where(
            prediction.label_ids != IGNORE_INDEX, prediction.label_ids, task.tokenizer.pad_token_id
        )
        return {"n": len(task.tokenizer.batch_decode(label_ids, skip_special_tokens=True))}

    trainer.compute_metrics = fixed_metrics
    assert fm.attempt(trainer.evaluate, _dataset()).value["eval_n"] == 4


def test_attempt_keeps_the_error_the_warnings_and_the_log():
    def noisy():
        transformers.utils.logging.get_logger("transformers.test").warning("logged")
        import warnings

        warnings.warn("warned", UserWarning, stacklevel=1)
        print("printed")
        raise ValueError("broken")

    outcome = fm.attempt(noisy)
    assert outcome.error_text == "ValueError: broken" and outcome.failed
    assert outcome.warnings == ("warned",) and outcome.log == ("logged",)
    assert outcome.printed == "printed\n"
    assert str(outcome) == "warning: warned\nValueError: broken"
    assert not fm.attempt(lambda: 1).failed and fm.attempt(lambda: 1).value == 1


def test_doctor_has_a_check_for_every_entry_but_the_three_that_show_only_in_training():
    # 2: an untrained cross-attention; 18: a method call; 22: the user's compute_metrics
    assert set(caught_entries()) == set(FAILURE_MODES) - {2, 18, 22}
