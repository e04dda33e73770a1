"""Whisper's encoder on short clips: a shorter input window, and a feature extractor to match.

Whisper's encoder always reads 30 s of log-mel frames, padded with silence. For the course's
2-4 s clips most of that work is on silence, so :func:`shorten_whisper_window` cuts the
encoder's window (5 s by default in the course) and :func:`whisper_feature_extractor` makes
features of the same length.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import AutoFeatureExtractor, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from s2t_edu.errors import S2TEduError
from s2t_edu.pretrained.zoo import resolve


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
    always attended over 30 s, mostly padding), so outputs change (untuned greedy WER on the
    course's test clips: 43.3% at 30 s, 49.6% at 5 s; ``benchmarks/whisper_wer.py``). Audio longer than
    the window must be cut; make features with :func:`whisper_feature_extractor`.
    ``model``: a WhisperEncoder, or any model whose ``get_encoder()`` is one (Whisper, a
    SpeechEncoderDecoderModel); changed in place, config included, so it saves and reloads.
    """
    encoder = model
    if not isinstance(model, WhisperEncoder) and callable(getattr(model, "get_encoder", None)):
        encoder = model.get_encoder()  # Whisper or a SpeechEncoderDecoderModel around one
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
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= 30:
        raise S2TEduError(
            "the feature extractor's window must be a whole number of seconds from 1 to 30 "
            "(Whisper's encoder was trained on 30 s windows and has no positions beyond them)",
            "pass seconds such as 5 or 10",
            seconds,
        )
    if not isinstance(source, WhisperFeatureExtractor):
        source = whisper_extractor_from(source)
    settings = {**source.to_dict(), "chunk_length": seconds}
    for derived in ("n_samples", "nb_max_frames", "feature_extractor_type"):
        settings.pop(derived, None)  # recomputed from chunk_length
    return WhisperFeatureExtractor(**settings)


def whisper_extractor_from(source) -> WhisperFeatureExtractor:
    """The ``WhisperFeatureExtractor`` saved with a checkpoint (zoo name, directory or hub id)."""
    if not isinstance(source, str | Path):
        raise S2TEduError(
            "whisper_feature_extractor needs a WhisperFeatureExtractor or a checkpoint name",
            'pass e.g. "whisper-tiny.en" or model_dir',
            type(source).__name__,
        )
    directory = resolve(str(source))  # a missing name or folder is explained there
    try:
        extractor = AutoFeatureExtractor.from_pretrained(directory)
    except (OSError, ValueError) as error:
        raise S2TEduError(
            f"no feature extractor could be loaded from {source!r} ({type(error).__name__})",
            'pass a Whisper checkpoint directory or zoo name such as "whisper-tiny.en"',
            source,
        ) from error
    if not isinstance(extractor, WhisperFeatureExtractor):
        raise S2TEduError(
            f"{source!r} holds a {type(extractor).__name__}, not a WhisperFeatureExtractor",
            'pass a Whisper checkpoint such as "whisper-tiny.en"',
            source,
        )
    return extractor
