"""The zoo's fine-tuned composites: recipe, pack/assemble, the page's inference lines, scores.

The page (transformers' SpeechEncoderDecoderModel documentation) runs, for
facebook/wav2vec2-xls-r-300m-en-to-15::

    model = SpeechEncoderDecoderModel.from_pretrained(name)
    processor = Wav2Vec2Processor.from_pretrained(name)
    input_values = processor(ds[0]["audio"]["array"], return_tensors="pt").input_values
    generated_ids = model.generate(input_values)
    generated_text = processor.batch_decode(generated_ids, skip_special_tokens=True)[0]
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from train_helpers import write_tiny_checkpoints
from transformers import (
    AutoFeatureExtractor,
    AutoProcessor,
    AutoTokenizer,
    BertTokenizer,
    SpeechEncoderDecoderModel,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Processor,
)

from s2t_edu.data import sentences as grammar
from s2t_edu.data.corpus import TRAIN_VOICES, corpus_plan, load_corpus
from s2t_edu.data.sentences import ascii_german
from s2t_edu.errors import S2TEduError
from s2t_edu.frames import encoder_output_lengths
from s2t_edu.metrics import wer
from s2t_edu.model import load_speech_encoder_decoder
from s2t_edu.pretrained import finetuned
from s2t_edu.pretrained.zoo import ZOO, resolve
from s2t_edu.training import finetune

ASR, ST = "w2v2-minilm-synth", "w2v2-minilm-en-de-synth"


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize("name", [ASR, ST])
def test_recipe_is_two_finetune_command_lines_the_second_from_the_first(name, tmp_path):
    """Stage 1: frozen, cached encoder; stage 2: end to end on raw audio from stage 1's model/
    folder. The same tensors stay frozen in both (pack() relies on it)."""
    recipe = finetuned.recipe_of(name)
    first, second = (
        finetune.parse_args(recipe.stage_args(tmp_path, i)) for i in range(len(recipe.stages))
    )
    for settings, stage in zip((first, second), recipe.stages, strict=True):
        assert settings.encoder == "w2v2-synth-ctc" and settings.decoder == "minilm-l6"
        assert settings.freeze_word_embeddings and settings.init == "warm"
        assert settings.target_column == {ASR: "text", ST: "text_de_ascii"}[name]
        assert (settings.steps, settings.lr, settings.batch_size) == (
            stage.steps,
            stage.lr,
            stage.batch_size,
        )
    assert first.end_to_end is False and first.init_from is None
    assert second.end_to_end and second.freeze_feature_encoder
    assert Path(second.init_from) == Path(first.output_dir) / "model"
    assert recipe.command == f"python tools/finetune_zoo.py {name}"


def test_an_unknown_entry_is_refused():
    with pytest.raises(S2TEduError, match="not a fine-tuned zoo entry"):
        finetuned.recipe_of("w2v2-minilm")


# ---------------------------------------------------------------- pack and assemble
@pytest.fixture(scope="module")
def start():
    return finetuned.starting_model(finetuned.recipe_of(ST))


@pytest.fixture(scope="module")
def packed(start, tmp_path_factory):
    """A stand-in for a trained model: every trainable tensor moved, then packed."""
    model = start[0]
    trained = SpeechEncoderDecoderModel(config=model.config)
    trained.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.01)
    # what --freeze-* kept fixed is put back, as training would have left it
    frozen = finetuned.frozen_names(model)
    trained.load_state_dict(
        {k: v for k, v in model.state_dict().items() if k in frozen}, strict=False
    )
    source = tmp_path_factory.mktemp("committed")
    finetuned.pack(trained, model, source)
    (source / "README.md").write_text("# card\n")
    return trained, source


def test_pack_keeps_only_what_training_changed_in_float16(start, packed):
    model = start[0]
    trained, source = packed
    stored = load_file(source / finetuned.TRAINED_FILE)
    assert all(t.dtype == torch.float16 for t in stored.values())
    assert "decoder.bert.embeddings.word_embeddings.weight" not in stored
    assert not any("feature_extractor.conv_layers" in name for name in stored)
    assert "decoder.bert.encoder.layer.0.crossattention.self.query.weight" in stored
    total = sum(p.numel() for p in model.parameters())
    frozen = model.decoder.get_input_embeddings().weight.numel() + sum(
        p.numel() for p in model.encoder.feature_extractor.parameters()
    )
    assert sum(t.numel() for t in stored.values()) == total - frozen


def test_pack_refuses_a_run_that_changed_a_frozen_tensor(start, tmp_path):
    model = start[0]
    trained = SpeechEncoderDecoderModel(config=model.config)
    trained.load_state_dict(model.state_dict())
    with torch.no_grad():
        trained.decoder.get_input_embeddings().weight[0, 0] += 1
    with pytest.raises(S2TEduError, match="should have stayed frozen"):
        finetuned.pack(trained, model, tmp_path)


def test_assembled_checkpoint_loads_the_plain_way_with_the_trained_weights(packed, tmp_path):
    trained, source = packed
    directory = finetuned.assemble_into(tmp_path / "model", source, finetuned.recipe_of(ST))
    model = SpeechEncoderDecoderModel.from_pretrained(directory)
    expected = trained.state_dict()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], atol=1e-3, rtol=1e-3)
    assert model.generation_config.max_new_tokens == finetuned.MAX_NEW_TOKENS
    processor = AutoProcessor.from_pretrained(directory)
    assert isinstance(processor, Wav2Vec2Processor)
    assert isinstance(processor.feature_extractor, Wav2Vec2FeatureExtractor)
    assert isinstance(processor.tokenizer, BertTokenizer)
    assert (directory / "README.md").read_text() == "# card\n"


def test_assembly_refuses_tensors_of_another_architecture(packed, tmp_path):
    _, source = packed
    stored = load_file(source / finetuned.TRAINED_FILE)
    del stored["enc_to_dec_proj.weight"]
    save_file(stored, tmp_path / finetuned.TRAINED_FILE)
    with pytest.raises(S2TEduError, match="does not fit"):
        finetuned.assemble_into(tmp_path / "model", tmp_path, finetuned.recipe_of(ST))


def test_translation_scores_on_known_pairs():
    references = ["der hund hat den ball gefunden", "ich habe gestern geschlafen"]
    perfect = finetuned.translation_scores(references, references)
    assert perfect == {"bleu": 100.0, "chrf": 100.0, "exact_match": 1.0}
    partial = finetuned.translation_scores(references, [references[0], "ich habe geschlafen"])
    assert partial["exact_match"] == 0.5 and 0 < partial["bleu"] < 100 and partial["chrf"] > 50


# ---------------------------------------------------------------- the committed entries
def _tiny_test_split():
    """The tiny corpus's test split: the course test split's first 8 sentences (never in the
    course's training split), spoken by training voices (drawn after the train clips', so not
    the same voice for each sentence as in the course corpus)."""
    tiny, course = corpus_plan("tiny", 0), corpus_plan("course", 0)
    tiny_test = [row for row in tiny if row["split"] == "test"]
    course_test = [row["text"] for row in course if row["split"] == "test"]
    assert [row["text"] for row in tiny_test] == course_test[:8]
    assert {row["voice"] for row in tiny_test} <= set(TRAIN_VOICES)
    return load_corpus("tiny")["test"]


@pytest.fixture(scope="module")
def test_clips():
    return _tiny_test_split()


@pytest.mark.parametrize("name", [ASR, ST])
def test_resolve_gives_a_directory_both_loaders_accept(name):
    directory = resolve(name)
    assert resolve(name) == directory  # assembled once, then reused
    model = SpeechEncoderDecoderModel.from_pretrained(directory)
    assert model.config.encoder.model_type == "wav2vec2"
    assert model.config.decoder.model_type == "bert"
    assert sum(p.numel() for p in model.parameters()) == ZOO[name].params
    weights = sum(f.stat().st_size for f in Path(directory).glob("*.safetensors"))
    assert abs(weights / 1e6 - ZOO[name].disk_mb) < 2
    assert isinstance(AutoProcessor.from_pretrained(directory), Wav2Vec2Processor)


def _page_lines(name, audio):
    # the page's inference lines, with the zoo name in place of the hub id
    model = SpeechEncoderDecoderModel.from_pretrained(resolve(name))
    processor = Wav2Vec2Processor.from_pretrained(resolve(name))
    input_values = processor(audio, return_tensors="pt").input_values
    generated_ids = model.generate(input_values)
    return processor.batch_decode(generated_ids, skip_special_tokens=True)[0]


def test_the_page_lines_transcribe_english(test_clips):
    row = test_clips[1]  # a clip the checkpoint gets right (7 of these 8 are exact)
    assert _page_lines(ASR, row["audio"]["array"]) == row["text"] == "they worked behind the house"


def test_the_page_lines_translate_into_german(test_clips):
    """German word order learned: an auxiliary agreeing in second or third place, the
    participle last; for this clip the whole reference (measured when committed: half of
    these 8 clips come out exactly right, 39% of the 200 test clips)."""
    row = test_clips[1]
    output = _page_lines(ST, row["audio"]["array"])
    assert output == row["text_de_ascii"] == "sie haben hinter dem haus gearbeitet"
    german = output.split()
    participles = {ascii_german(p.split()[-1]) for p, _, _ in grammar.VERBS_DE.values()}
    auxiliaries = {form for forms in grammar.AUXILIARIES_DE.values() for form in forms.values()}
    assert german[-1] in participles
    assert german[1] in auxiliaries or german[2] in auxiliaries
    assert german[:2] == ["sie", "haben"]  # "they", plural: the subject and its auxiliary


def _scores(name, clips):
    model = SpeechEncoderDecoderModel.from_pretrained(resolve(name))
    processor = AutoProcessor.from_pretrained(resolve(name))
    return finetuned.score(model, processor, list(clips), finetuned.recipe_of(name), batch_size=8)


def test_speech_recognition_scores_on_eight_held_out_clips(test_clips):
    """The entry's target, greedy WER <= 5%, on a few held-out clips. Measured when committed:
    0.034 on these 8 clips (2 of 59 words wrong) and 0.044 on the 200 test clips (its card)."""
    scores = _scores(ASR, test_clips)
    assert scores["wer"] <= 0.05


def test_translation_scores_on_eight_held_out_clips(test_clips):
    """Measured when committed: chrF 83.8, BLEU 65.3, WER 0.21, exact match 4 of 8 on these
    8 clips (chrF 83.2, BLEU 65.3, exact match 39% on the 200 test clips: its card)."""
    scores = _scores(ST, test_clips)
    assert scores["chrf"] >= 75 and scores["bleu"] >= 55 and scores["wer"] <= 0.3
    assert scores["exact_match"] >= 0.25


def test_batched_scoring_equals_one_clip_at_a_time(test_clips):
    """Padding with the attention mask changes nothing: the batched scores are the page's."""
    model = SpeechEncoderDecoderModel.from_pretrained(resolve(ASR))
    processor = AutoProcessor.from_pretrained(resolve(ASR))
    audios = [row["audio"]["array"] for row in test_clips][:4]
    batched = finetuned.generate_texts(model, processor, audios, batch_size=4)
    single = [finetuned.generate_texts(model, processor, [a], batch_size=1)[0] for a in audios]
    assert batched == single
    assert wer([r["text"] for r in list(test_clips)[:4]], single) <= 0.05  # measured: 1 of 28


# ---------------------------------------------------------------- what the course saves
def test_a_whisper_composite_saved_by_the_finetune_cli_loads_and_transcribes(tmp_path):
    """Regression (issue 16): the CLI saved ``chunk_length: 5.0``; the reloaded Whisper
    feature extractor then failed on every call (pad_width must be of integral type)."""
    encoder, decoder = write_tiny_checkpoints(tmp_path / "tiny")
    out = tmp_path / "run"
    argv = [
        "--encoder", encoder, "--decoder", decoder, "--corpus", "tiny", "--max-clips", "4",
        "--steps", "2", "--batch-size", "2", "--eval-every", "0", "--eval-clips", "2",
        "--device", "cpu", "--quiet", "--window", "5", "--output-dir", str(out),
    ]  # fmt: skip
    assert finetune.main(argv) == 0
    saved = out / "model"
    config = json.loads((saved / "preprocessor_config.json").read_text())
    assert isinstance(config["chunk_length"], int) and config["chunk_length"] == 5
    extractor = AutoFeatureExtractor.from_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(saved)
    model = load_speech_encoder_decoder(saved)
    audio = load_corpus("tiny")["test"][0]["audio"]["array"]
    features = extractor(audio, sampling_rate=16_000, return_tensors="pt").input_features
    assert features.shape[-1] == 500  # 5 s of 10 ms frames, not Whisper's 30 s
    ids = model.generate(features, max_new_tokens=5, do_sample=False)
    text = tokenizer.batch_decode(ids, skip_special_tokens=True)[0]
    assert isinstance(text, str) and ids.shape[0] == 1
    assert np.isfinite(features.numpy()).all()


def test_cross_attention_in_seconds_covers_the_clip_in_german_order(test_clips):
    model = SpeechEncoderDecoderModel.from_pretrained(resolve(ST))
    processor = AutoProcessor.from_pretrained(resolve(ST))
    row = test_clips[0]
    found = finetuned.cross_attention_in_seconds(model, processor, row, "text_de_ascii")
    samples = len(row["audio"]["array"])
    frames = int(encoder_output_lengths(model.config.encoder, torch.tensor([samples]))[0])
    assert found.weights.shape == (len(found.tokens), frames)
    np.testing.assert_allclose(found.weights.sum(axis=1), 1.0, atol=1e-4)
    assert found.seconds[1] == pytest.approx(0.02)  # 320 samples per wav2vec2 frame
    assert found.seconds[-1] <= samples / 16_000
    assert found.tokens[-1] == "[SEP]"
    german = processor.tokenizer.convert_tokens_to_string(found.tokens[:-1])
    assert german == row["text_de_ascii"]


# ---------------------------------------------------------------- the tool's records
def _zoo_tool():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "tools" / "finetune_zoo.py"
    spec = importlib.util.spec_from_file_location("finetune_zoo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stopped_run_records_the_step_it_started_from(tmp_path):
    """The card's wall time says which steps it leaves out: the tool reads the stage's newest
    checkpoint the way the CLI does (``LATEST`` naming a complete ``step-N`` folder)."""
    tool = _zoo_tool()
    assert tool.latest_step(tmp_path) == 0
    checkpoint = tmp_path / "checkpoints" / "step-000300"
    checkpoint.mkdir(parents=True)
    (tmp_path / "checkpoints" / "LATEST").write_text("step-000300\n")
    assert tool.latest_step(tmp_path) == 0  # no state.pt yet: an interrupted save
    (checkpoint / "state.pt").write_bytes(b"")
    assert tool.latest_step(tmp_path) == 300
    stage = {"stage_wall_seconds": 117.2, "end_to_end": False, "unrecorded_steps": 3100}
    assert "counted from step 3100 on" in tool.wall_sentence(stage)
    assert "counted from" not in tool.wall_sentence(stage | {"unrecorded_steps": 0})
