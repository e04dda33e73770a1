"""Freeze the speech encoder and compute its outputs once: training then only runs the decoder.

Why: on a CPU the encoder is most of the cost of a training step, and a *frozen* encoder gives
the same output for a clip at every epoch. So we run it once per clip, store the frames, and
train the decoder (its cross-attention included) and the projection on the stored frames —
the standard "precomputed features" technique (used for linear probes and for adapters on
top of frozen speech models). What it gives up: the encoder cannot adapt to the task, and
no data augmentation can change the audio between epochs. A GPU run trains end to end instead.

The model needs nothing special to use them: ``SpeechEncoderDecoderModel(encoder_outputs=...)``
skips the encoder and applies ``enc_to_dec_proj`` (if any) to what it is given, and
``generate(encoder_outputs=...)`` decodes from them.

Only fixed-window encoders (Whisper's) are cached here: every clip gives the same number of
frames, so the stored arrays are rectangular and no frame mask is needed. The cache key holds
a fingerprint of the encoder's weights, so a different checkpoint, random seed or window
never reuses stale frames.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from s2t_edu.data.audio import SAMPLING_RATE
from s2t_edu.data.cache import CACHE_FIX, build_once, cache_root, check_free_space
from s2t_edu.data.corpus import load_corpus
from s2t_edu.errors import S2TEduError

FEATURES_VERSION = 1  # bump when the stored format changes


def encoder_fingerprint(encoder: torch.nn.Module) -> str:
    """SHA-256 of every weight and buffer of ``encoder`` (names and values): its identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_fixed_window(encoder) -> None:
    """Only Whisper-type encoders (fixed input window, no mask) can be cached as rectangles."""
    if getattr(encoder.config, "model_type", None) != "whisper":
        raise S2TEduError(
            "cached encoder outputs need a fixed-window encoder such as Whisper's "
            "(wav2vec2-style encoders give a different number of frames per clip)",
            "train end to end instead (python -m s2t_edu.finetune --end-to-end)",
            type(encoder).__name__,
        )


@torch.no_grad()
def encode_clips(
    encoder, feature_extractor, arrays: list, batch_size: int = 16, description: str = "encoding"
) -> np.ndarray:
    """Encoder output frames (clips, frames, width) for a list of 16 kHz arrays, float32."""
    window = feature_extractor.n_samples
    too_long = [i for i, a in enumerate(arrays) if len(a) > window]
    if too_long:
        raise S2TEduError(
            f"{len(too_long)} clip(s) are longer than the encoder's {window / SAMPLING_RATE:g} s window "
            "and would be cut",
            "use a longer --window (seconds), e.g. the longest clip rounded up",
            f"clip {too_long[0]}: {len(arrays[too_long[0]]) / SAMPLING_RATE:.2f} s",
        )
    encoder.eval()
    out = []
    with tqdm(total=len(arrays), desc=description, unit="clip") as bar:
        for start in range(0, len(arrays), batch_size):
            chunk = arrays[start : start + batch_size]
            features = feature_extractor(chunk, sampling_rate=SAMPLING_RATE, return_tensors="pt")
            out.append(encoder(features.input_features).last_hidden_state.float().numpy())
            bar.update(len(chunk))
    return np.concatenate(out)


def stored_bytes(encoder, clips: int) -> int:
    """Bytes the cached frames of ``clips`` clips take: (frames, width) float32 each, plus a
    generous 512 bytes of JSON (id, text, duration) per clip."""
    frames, width = encoder.config.max_source_positions, encoder.config.d_model
    return clips * (frames * width * 4 + 512)


def _build(
    directory: Path, encoder, feature_extractor, corpus_size, corpus_seed, max_clips
) -> None:
    # The corpus is loaded here, by the one process that builds: the others only read frames.
    corpus = load_corpus(corpus_size, corpus_seed)
    if max_clips is not None:
        corpus = {s: d.select(range(min(max_clips, len(d)))) for s, d in corpus.items()}
    needed = stored_bytes(encoder, sum(len(rows) for rows in corpus.values()))
    # Encoding takes ~30 ms a clip: better to stop now than after minutes of work.
    check_free_space(f"the encoder outputs of corpus {corpus_size!r}", directory, needed, CACHE_FIX)
    for split, rows in corpus.items():
        arrays, meta = [], []
        for row in rows:
            arrays.append(row["audio"]["array"])
            meta.append({"id": row["id"], "text": row["text"], "duration": row["duration"]})
        frames = encode_clips(encoder, feature_extractor, arrays, description=f"encoding {split}")
        np.save(directory / f"{split}.npy", frames)
        (directory / f"{split}.json").write_text(json.dumps(meta))


def cached_encoder_outputs(
    encoder,
    feature_extractor,
    corpus_size: str = "course",
    corpus_seed: int = 0,
    max_clips: int | None = None,
) -> Path:
    """Compute the frozen ``encoder``'s frames for every split of a corpus once; the directory.

    ``feature_extractor`` must match the encoder's window (``WhisperFeatureExtractor(chunk_length=
    seconds)`` after :func:`s2t_edu.pretrained.whisper.shorten_whisper_window`). ``max_clips`` keeps the
    first clips of each split (quick demos). Building takes ~30 ms per clip on 2 CPU cores for
    Whisper tiny with a 5 s window; it first checks the disk has room for the result
    (:func:`stored_bytes`), and a disk that fills up anyway leaves no half-built folder.
    """
    check_fixed_window(encoder)
    if encoder.config.max_source_positions * 2 != feature_extractor.nb_max_frames:
        raise S2TEduError(
            "the feature extractor's window does not match the encoder's",
            "make it with WhisperFeatureExtractor(chunk_length=seconds) for the encoder's window",
            (feature_extractor.nb_max_frames, encoder.config.max_source_positions * 2),
        )
    limit = "all" if max_clips is None else f"first{max_clips}"
    name = (
        f"encoder-outputs-v{FEATURES_VERSION}-{corpus_size}-seed{corpus_seed}-{limit}-"
        f"{encoder_fingerprint(encoder)[:16]}"
    )
    return build_once(
        cache_root() / name,
        lambda tmp: _build(tmp, encoder, feature_extractor, corpus_size, corpus_seed, max_clips),
    )


class CachedSplit(torch.utils.data.Dataset):
    """One split of cached frames: rows ``{"encoder_hidden_states", "text", "duration"}``."""

    def __init__(self, directory: Path, split: str):
        self.frames = np.load(Path(directory) / f"{split}.npy", mmap_mode="r")
        self.meta = json.loads((Path(directory) / f"{split}.json").read_text())

    def __len__(self) -> int:
        return len(self.meta)

    def __getitem__(self, index: int) -> dict:
        row = dict(self.meta[index])
        row["encoder_hidden_states"] = torch.from_numpy(np.array(self.frames[index]))
        return row


class CachedFramesCollator:
    """Rows of :class:`CachedSplit` → ``{"encoder_outputs", "labels"}`` for the model's forward.

    Labels are made exactly as :class:`s2t_edu.data.collator.SpeechSeq2SeqCollator` makes them
    (no start token, EOS last, padding -100); frames need no padding (fixed window).
    """

    def __init__(self, label_collator):
        self.label_collator = label_collator  # a SpeechSeq2SeqCollator: only its labels are used

    def __call__(self, rows: list[dict]) -> dict:
        frames = torch.stack([row["encoder_hidden_states"] for row in rows])
        return {
            # a plain tuple: the model wraps it in BaseModelOutput; Trainer moves tuples to device
            "encoder_outputs": (frames,),
            "labels": self.label_collator.label_batch([row["text"] for row in rows]),
        }
