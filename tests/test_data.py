"""The synthetic corpus: reproducible bytes, honest splits, and a cache that survives accidents."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from s2t_edu.data import corpus as data
from s2t_edu.data.cache import MANIFEST, is_intact
from s2t_edu.data.sentences import ascii_german, to_german, vocabulary
from s2t_edu.errors import S2TEduError


def _manifest(directory: Path) -> dict:
    return json.loads((directory / MANIFEST).read_text())


def _build_in(cache: Path, monkeypatch, seed: int = 0) -> Path:
    monkeypatch.setenv("S2T_EDU_CACHE", str(cache))
    return data.build_corpus("tiny", seed=seed)


@pytest.fixture(scope="module")
def reference_corpus(tmp_path_factory) -> Path:
    """The tiny seed-0 corpus, built once for this module in a private cache."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _build_in(tmp_path_factory.mktemp("reference"), monkeypatch)


@pytest.fixture
def corpus(reference_corpus, monkeypatch):
    monkeypatch.setenv("S2T_EDU_CACHE", str(reference_corpus.parent))
    return data.load_corpus("tiny")


def test_plan_is_a_pure_function_of_the_seed():
    assert data.corpus_plan("tiny", 0) == data.corpus_plan("tiny", 0)
    assert data.corpus_plan("tiny", 0) != data.corpus_plan("tiny", 1)


def test_same_seed_same_bytes_other_seed_other_bytes(reference_corpus, tmp_path, monkeypatch):
    again = _build_in(tmp_path / "again", monkeypatch)
    assert again != reference_corpus
    # the manifest holds the SHA-256 of every file: equal manifests = identical corpora
    assert _manifest(again) == _manifest(reference_corpus)
    other = _build_in(tmp_path / "other", monkeypatch, seed=1)
    other_hashes = {entry["sha256"] for entry in _manifest(other).values()}
    reference_hashes = {entry["sha256"] for entry in _manifest(reference_corpus).values()}
    assert not other_hashes & reference_hashes  # not one file in common


def test_splits_sizes_and_columns(corpus):
    sizes = data.CORPUS_SIZES["tiny"]
    assert {name: len(corpus[name]) for name in corpus} == {
        **sizes,
        "test_unseen_voice": sizes["test"],
    }
    row = corpus["train"][0]
    audio = row["audio"]
    assert audio["sampling_rate"] == 16000
    assert audio["array"].dtype == np.float32 and audio["array"].ndim == 1
    assert row["duration"] == pytest.approx(len(audio["array"]) / 16000, abs=1e-3)
    assert 0.01 < np.abs(audio["array"]).max() <= 1.0
    assert Path(audio["path"]).is_file()


def test_text_uses_only_the_grammar_vocabulary(corpus):
    words = {w for split in corpus for text in corpus[split]["text"] for w in text.split()}
    assert words <= vocabulary()
    assert all(5 <= len(t.split()) <= 10 for t in corpus["train"]["text"])


def test_german_columns_translate_the_text_column(corpus):
    """text_de is the grammar's German of text; text_de_ascii spells its umlauts out."""
    for split in corpus:
        rows = corpus[split].remove_columns(["audio"])
        for row in rows:
            assert row["text_de"] == to_german(row["text"])
            assert row["text_de_ascii"] == ascii_german(row["text_de"])
            assert row["text_de_ascii"].isascii()
    assert any(row["text_de"] != row["text_de_ascii"] for row in corpus["train"])


def test_test_sentences_never_appear_in_training(corpus):
    train, validation = set(corpus["train"]["text"]), set(corpus["validation"]["text"])
    test = set(corpus["test"]["text"])
    assert not test & train and not test & validation and not train & validation
    assert corpus["test_unseen_voice"]["text"] == corpus["test"]["text"]


def test_unseen_voice_split_is_really_unseen(corpus):
    train = corpus["train"]
    unseen = corpus["test_unseen_voice"]
    assert set(unseen["voice"]).isdisjoint(train["voice"])
    assert set(unseen["rate"]).isdisjoint(train["rate"])
    assert len(set(train["voice"])) > 1  # several training voices


def test_map_sees_decoded_audio(corpus):
    lengths = corpus["validation"].map(lambda row: {"n": len(row["audio"]["array"])})
    expected = [d * 16000 for d in corpus["validation"]["duration"]]
    np.testing.assert_allclose(list(lengths["n"]), expected, atol=1)  # duration is float32


def test_crash_mid_build_leaves_nothing_and_rebuild_works(reference_corpus, tmp_path, monkeypatch):
    real_write, written = data._write_clip, []

    def write_then_crash(directory, row, samples, rate):
        if len(written) == 5:
            raise KeyboardInterrupt  # what Ctrl-C raises
        written.append(row["id"])
        return real_write(directory, row, samples, rate)

    monkeypatch.setattr(data, "_write_clip", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _build_in(tmp_path, monkeypatch)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.setattr(data, "_write_clip", real_write)
    assert _manifest(_build_in(tmp_path, monkeypatch)) == _manifest(reference_corpus)


# s2t_edu/__init__.py imports torch and transformers (5-10 s per process); these subprocesses
# only need the data modules, so they register a bare package object instead of running it.
_BARE_PACKAGE = (
    "import sys, types\n"
    "package = types.ModuleType('s2t_edu')\n"
    f"package.__path__ = [{str(Path(data.__file__).parents[1])!r}]\n"
    "sys.modules['s2t_edu'] = package\n"
)


def _python(code: str, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "S2T_EDU_CACHE": str(cache)}
    command = [sys.executable, "-c", _BARE_PACKAGE + code]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE)


def test_sigkill_mid_build_then_rebuild(reference_corpus, tmp_path, monkeypatch):
    process = _python(
        "from s2t_edu.data.corpus import build_corpus\nbuild_corpus('tiny')", tmp_path
    )
    deadline = time.time() + 60
    while not list(tmp_path.glob(".corpus-*building*/audio/*/*.flac")):
        assert process.poll() is None and time.time() < deadline, "build never started"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (
        tmp_path / reference_corpus.name
    ).exists()  # no half-built corpus where readers look
    assert list(tmp_path.glob(".corpus-*building*"))  # SIGKILL skipped the cleanup...
    rebuilt = _build_in(tmp_path, monkeypatch)
    assert _manifest(rebuilt) == _manifest(reference_corpus)
    assert not list(tmp_path.glob(".corpus-*building*"))  # ...and the next build reclaimed it
    assert rebuilt.stat().st_mode & 0o755 == 0o755  # finished caches are readable by all


def test_concurrent_builders_build_once(reference_corpus, tmp_path):
    log = tmp_path / "builds.log"
    code = (
        "from s2t_edu.data import corpus as data\n"
        "real = data._build\n"
        "def logged(*args):\n"
        f"    open({str(log)!r}, 'a').write('built\\n')\n"
        "    real(*args)\n"
        "data._build = logged\n"
        "print(data.build_corpus('tiny'))\n"
    )
    processes = [_python(code, tmp_path / "cache") for _ in range(2)]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read().decode()
    assert log.read_text() == "built\n"  # the second builder waited and reused the first's
    target = tmp_path / "cache" / reference_corpus.name
    assert is_intact(target) and _manifest(target) == _manifest(reference_corpus)
    assert not list((tmp_path / "cache").glob("*building*"))


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_damaged_cache_is_detected_and_rebuilt(reference_corpus, tmp_path, monkeypatch, damage):
    corpus_dir = _build_in(tmp_path, monkeypatch)
    clip = sorted(corpus_dir.glob("audio/train/*.flac"))[3]
    if damage == "delete":
        clip.unlink()
    else:
        clip.write_bytes(clip.read_bytes()[:100])
    assert not is_intact(corpus_dir)
    dataset = data.load_corpus("tiny")  # rebuilds before reading
    assert dataset["train"][3]["audio"]["array"].size > 0
    assert _manifest(corpus_dir) == _manifest(reference_corpus)


def test_load_speech_dataset_by_size_and_split(reference_corpus, monkeypatch):
    monkeypatch.setenv("S2T_EDU_CACHE", str(reference_corpus.parent))
    test = data.load_speech_dataset("tiny", split="test")
    assert len(test) == data.CORPUS_SIZES["tiny"]["test"]
    with pytest.raises(S2TEduError, match="unknown split"):
        data.load_speech_dataset("tiny", split="dev")


def test_hub_name_offline_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(S2TEduError, match="needs the network"):
        data.load_speech_dataset("hf-internal-testing/librispeech_asr_dummy", split="validation")


@pytest.mark.parametrize("name", ["huge", "librispeech"])
def test_unknown_names(name):
    with pytest.raises(S2TEduError):
        data.load_speech_dataset(name)


def test_hub_style_audio_column_is_decoded_with_soundfile():
    # A datasets.Audio() column, as hub datasets have; datasets itself would need torchcodec.
    import io

    import soundfile
    from datasets import Audio, Dataset, Features, Value

    buffer = io.BytesIO()
    soundfile.write(buffer, np.full(8000, 0.25, dtype=np.float32), 8000, format="FLAC")
    plain = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}})
    dataset = Dataset.from_dict({"audio": [{"bytes": buffer.getvalue(), "path": "a.flac"}]}, plain)
    dataset = dataset.cast(Features({"audio": Audio()}))
    audio = data._read_audio_with_soundfile(dataset)[0]["audio"]
    assert audio["sampling_rate"] == 16000 and audio["array"].shape == (16000,)  # 1 s, resampled
    assert audio["array"][4000:12000] == pytest.approx(0.25, abs=1e-3)
