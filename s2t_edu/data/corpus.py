"""A synthetic English speech corpus, built offline with espeak-ng, plus a loader for hub data.

Why synthetic: the course must run without a network, and no pip package ships a labelled
speech corpus. espeak-ng speaks sentences from our own small grammar (``sentences.py``) in
several voices, rates and pitches; the clips are 16 kHz mono FLAC files in the cache.

Splits, chosen so each one answers one question about a trained model:

- ``train`` / ``validation``: seen voices, different sentences each;
- ``test``: seen voices, sentences that never occur in train or validation (did it learn the
  language, or memorise sentences?);
- ``test_unseen_voice``: the *same* sentences as ``test``, spoken by a voice at a rate never
  used in training — the gap between the two test WERs is the cost of a new speaker.

Columns: ``id``, ``audio``, ``text`` (the English transcript), ``voice``, ``rate``, ``pitch``,
``duration``, and the same sentence in German for speech translation: ``text_de`` (with ä, ö,
ü, ß) and ``text_de_ascii`` (written ae, oe, ue, ss: the target of the translation model, whose
uncased tokenizer would strip the umlauts' dots). The German is derived from the English text
by ``sentences.to_german`` when a split is loaded, so it draws no random numbers and adding it
changed neither the sentences nor the audio of any corpus already built.

Audio column design: ``datasets.Audio()`` cannot decode here (it needs torchcodec + FFmpeg,
and even ``Audio(decode=False)`` needs torchcodec to encode), so ``audio`` is a plain struct
``{"path"}`` and a ``with_transform`` adds ``array`` (float32, 16 kHz) and ``sampling_rate``
when rows are read — the usual shape, ``ds["train"][0]["audio"]["array"]``, without storing
every array in memory. ``.map`` sees the decoded arrays too.
"""

from __future__ import annotations

# ``datasets`` is imported inside the functions that build Dataset objects: it takes ~0.7 s,
# and the rest of this module (the cache, the synthesis) is used without it.
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import soundfile
from tqdm.auto import tqdm

from s2t_edu.data.audio import SAMPLING_RATE, load_audio
from s2t_edu.data.cache import build_once, cache_root
from s2t_edu.data.sentences import ascii_german, to_german, unique_sentences
from s2t_edu.data.tts import synthesize_many
from s2t_edu.errors import S2TEduError

CORPUS_VERSION = 1  # bump when the grammar, voices or audio format change: new cache dirs
SPLITS = ("train", "validation", "test", "test_unseen_voice")
# Clips per split; test_unseen_voice re-speaks the test sentences, so it has len(test) clips.
CORPUS_SIZES = {
    "tiny": {"train": 40, "validation": 8, "test": 8},  # tests: builds in seconds
    "course": {"train": 2000, "validation": 200, "test": 200},  # a CPU learns it in minutes
    "large": {"train": 20000, "validation": 1000, "test": 1000},  # GPU runs
}
TRAIN_VOICES = ("en", "en-us", "en-gb-x-rp")
TRAIN_RATES = (140, 155, 170, 185)  # words per minute
TRAIN_PITCHES = (35, 45, 55, 65)
UNSEEN_VOICE = {"voice": "en-gb-scotland", "rate": 210, "pitch": 50}  # none of these in train
_CHUNK = 64  # utterances per round trip to the TTS process (and per progress-bar step)


def corpus_dir(size: str = "tiny", seed: int = 0) -> Path:
    """Where the corpus of this size and seed lives in the cache (built or not)."""
    _check_size(size)
    _check_seed(seed)
    return cache_root() / f"corpus-{size}-seed{seed}-v{CORPUS_VERSION}"


def _check_size(size: str) -> None:
    if not isinstance(size, str) or size not in CORPUS_SIZES:
        raise S2TEduError(
            "unknown corpus size", f"use one of {sorted(CORPUS_SIZES)} (tiny for a quick try)", size
        )


def _check_seed(seed: int) -> None:
    # The seed names a cache folder and seeds the grammar: only a whole number is meaningful.
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise S2TEduError("the corpus seed must be a whole number >= 0", "pass seed=0", seed)


def corpus_plan(size: str = "tiny", seed: int = 0) -> list[dict]:
    """Every clip to make: split, id, text, voice, rate, pitch — a pure function of the seed."""
    _check_size(size)
    _check_seed(seed)
    counts = CORPUS_SIZES[size]
    sentences = unique_sentences(sum(counts.values()), seed)
    # Test sentences first, so they do not change when only the train size changes.
    cut = {"test": sentences[: counts["test"]]}
    cut["validation"] = sentences[counts["test"] : counts["test"] + counts["validation"]]
    cut["train"] = sentences[counts["test"] + counts["validation"] :]
    cut["test_unseen_voice"] = cut["test"]
    rng = random.Random(f"s2t_edu-voices-{seed}")
    plan = []
    for split in SPLITS:
        for index, text in enumerate(cut[split]):
            if split == "test_unseen_voice":
                speaker = dict(UNSEEN_VOICE)
            else:
                speaker = {
                    "voice": rng.choice(TRAIN_VOICES),
                    "rate": rng.choice(TRAIN_RATES),
                    "pitch": rng.choice(TRAIN_PITCHES),
                }
            plan.append({"split": split, "id": f"{split}-{index:06d}", "text": text, **speaker})
    return plan


def _write_clip(directory: Path, row: dict, samples: np.ndarray, rate: int) -> dict:
    """Resample one utterance to 16 kHz, save it as FLAC, return its metadata row."""
    audio = load_audio(samples, SAMPLING_RATE, orig_sampling_rate=rate)
    # 16-bit FLAC is lossless for the int16 range; clip so a resampling overshoot cannot wrap
    audio = np.clip(audio, -1.0, 32767 / 32768)
    relative = Path("audio") / row["split"] / f"{row['id']}.flac"
    (directory / relative).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(directory / relative, audio, SAMPLING_RATE, format="FLAC", subtype="PCM_16")
    return {**row, "path": str(relative), "duration": round(len(audio) / SAMPLING_RATE, 4)}


def _build(directory: Path, size: str, seed: int) -> None:
    """Synthesise every clip of the plan into ``directory`` (an empty temporary dir)."""
    plan = corpus_plan(size, seed)
    rows = []
    with tqdm(total=len(plan), desc=f"speech corpus {size!r}", unit="clip") as bar:
        for start in range(0, len(plan), _CHUNK):
            chunk = plan[start : start + _CHUNK]
            requests = [(r["text"], r["voice"], r["rate"], r["pitch"]) for r in chunk]
            samples, rate = synthesize_many(requests)
            rows += [
                _write_clip(directory, r, s, rate) for r, s in zip(chunk, samples, strict=True)
            ]
            bar.update(len(chunk))
    for split in SPLITS:
        lines = [json.dumps(r, sort_keys=True) for r in rows if r["split"] == split]
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    settings = {"size": size, "seed": seed, "version": CORPUS_VERSION, "splits": CORPUS_SIZES[size]}
    (directory / "corpus.json").write_text(json.dumps(settings, indent=1, sort_keys=True))


def build_corpus(size: str = "tiny", seed: int = 0) -> Path:
    """Build the corpus once into the cache (safe against Ctrl-C and parallel builders)."""
    target = corpus_dir(size, seed)
    return build_once(target, lambda tmp: _build(tmp, size, seed))


def read_metadata(directory: Path, split: str) -> list[dict]:
    """The rows of one split, with ``path`` made absolute."""
    lines = (Path(directory) / f"{split}.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line]
    for row in rows:
        row["path"] = str(Path(directory) / row["path"])
    return rows


def decode_audio_batch(batch: dict) -> dict:
    """``with_transform`` hook: add ``array`` + ``sampling_rate`` to each ``audio`` dict."""
    if "audio" in batch:  # absent after remove_columns(["audio"])
        batch["audio"] = [
            {**audio, "array": load_audio(audio["path"]), "sampling_rate": SAMPLING_RATE}
            for audio in batch["audio"]
        ]
    return batch


def _split_dataset(directory: Path, split: str):
    from datasets import Dataset, Features, Value

    rows = read_metadata(directory, split)
    features = Features(
        {
            "id": Value("string"),
            "audio": {"path": Value("string")},
            "text": Value("string"),
            "text_de": Value("string"),
            "text_de_ascii": Value("string"),
            "voice": Value("string"),
            "rate": Value("int32"),
            "pitch": Value("int32"),
            "duration": Value("float32"),
        }
    )
    for row in rows:  # German from the English: no random draws, no change to the audio
        row["text_de"] = to_german(row["text"])
        row["text_de_ascii"] = ascii_german(row["text_de"])
    columns = {name: [r[name] for r in rows] for name in features if name != "audio"}
    columns["audio"] = [{"path": r["path"]} for r in rows]
    return Dataset.from_dict(columns, features=features)


def load_corpus(size: str = "tiny", seed: int = 0):
    """The corpus as a ``datasets.DatasetDict`` (train, validation, test, test_unseen_voice).

    Built on first use; ``ds["train"][0]["audio"]["array"]`` is float32 at 16 kHz.
    """
    from datasets import DatasetDict

    directory = build_corpus(size, seed)
    splits = DatasetDict({split: _split_dataset(directory, split) for split in SPLITS})
    return splits.with_transform(decode_audio_batch)


def _offline() -> bool:
    flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(flag.strip().lower() in {"1", "true", "yes", "on"} for flag in flags)


def _load_hub_dataset(name: str, split: str | None, **kwargs):
    """``datasets.load_dataset`` with the audio column read by soundfile instead of torchcodec."""
    from datasets import load_dataset

    if _offline():
        raise S2TEduError(
            f"{name!r} is a Hugging Face Hub dataset and needs the network, but offline mode is on",
            f"use an offline corpus ({', '.join(CORPUS_SIZES)}), or unset HF_HUB_OFFLINE and "
            "HF_DATASETS_OFFLINE on a machine with internet access",
            name,
        )
    try:
        dataset = load_dataset(name, split=split, **kwargs)
    except (ConnectionError, OSError) as error:
        raise S2TEduError(
            f"could not download {name!r} ({type(error).__name__}: {error})",
            "check the internet connection and the dataset name, or use an offline corpus",
            name,
        ) from error
    return _read_audio_with_soundfile(dataset)


def _read_audio_with_soundfile(dataset):
    from datasets import Audio

    def decode(batch):
        if "audio" in batch:
            batch["audio"] = [_decode_hub_audio(audio) for audio in batch["audio"]]
        return batch

    columns = getattr(dataset, "column_names", None)
    names = columns if isinstance(columns, list) else next(iter(columns.values()), [])
    if "audio" not in names:
        return dataset
    return dataset.cast_column("audio", Audio(decode=False)).with_transform(decode)


def _decode_hub_audio(audio: dict) -> dict:
    source = io.BytesIO(audio["bytes"]) if audio.get("bytes") else audio["path"]
    samples, rate = soundfile.read(source, dtype="float32")
    array = load_audio(samples, SAMPLING_RATE, orig_sampling_rate=rate)
    return {"path": audio.get("path"), "array": array, "sampling_rate": SAMPLING_RATE}


def load_speech_dataset(name: str, split: str | None = None, **kwargs):
    """One entry point: a corpus size (``"tiny"``, ``"course"``, ``"large"``) or a hub name.

    Corpus sizes accept ``seed=``; hub names (e.g. ``"hf-internal-testing/librispeech_asr_dummy"``)
    pass ``split`` and ``**kwargs`` on to ``datasets.load_dataset`` and need the network.
    """
    if name in CORPUS_SIZES:
        corpus = load_corpus(name, **kwargs)
        if split is None:
            return corpus
        if split not in corpus:
            raise S2TEduError("unknown split", f"use one of {list(corpus)}", split)
        return corpus[split]
    if "/" not in name:
        raise S2TEduError(
            "not a corpus size nor a hub dataset name",
            f"use one of {sorted(CORPUS_SIZES)} or 'owner/dataset'",
            name,
        )
    return _load_hub_dataset(name, split, **kwargs)
