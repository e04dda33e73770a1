"""Freeze the speech encoder and compute its outputs once: training then only runs the decoder.

Why: on a CPU the encoder is most of the cost of a training step, and a *frozen* encoder gives
the same output for a clip at every epoch. So we run it once per clip, store the frames, and
train the decoder (its cross-attention included) and the projection on the stored frames —
the standard "precomputed features" technique (used for linear probes and for adapters on
top of frozen speech models). What it gives up: the encoder cannot adapt to the task, and
no data augmentation (wav2vec2's SpecAugment included) can change the audio between epochs.
A GPU run trains end to end instead.

The model needs nothing special to use them: ``SpeechEncoderDecoderModel(encoder_outputs=...)``
skips the encoder and applies ``enc_to_dec_proj`` (if any) to what it is given, and
``generate(encoder_outputs=...)`` decodes from them.

Two kinds of encoder can be cached, because for both a clip's frames do not depend on the
other clips of its batch:

- fixed-window encoders (Whisper's): every clip is padded to the same window and gives the
  same number of frames; no mask.
- wav2vec2-family encoders with a *layer-norm* feature encoder (``feat_extract_norm="layer"``,
  e.g. the zoo's ``w2v2-synth-ctc``) and a feature extractor that returns an attention mask:
  layer norm works on one frame at a time and the mask keeps padding out of the transformer, so
  a clip encoded alone gives the frames it gets inside a padded batch (tests/test_encoder_cache.py
  checks it numerically). Each clip's frames are stored unpadded; the collator pads a batch
  with zeros and passes the clips' *audio* mask, from which the model makes the frame mask
  itself (``_get_feature_vector_attention_mask``), exactly as it does from audio.

Refused: group-norm feature encoders (wav2vec2-base and its kin). Group norm normalises each
channel over the whole padded clip, and these models were trained on zero-padded batches
*without* a mask (transformers PR #10117): a clip's frames change with the padding its batch
gives it, so no stored frames can equal what end-to-end training sees.

The cache key holds a fingerprint of the encoder's weights, so a different checkpoint, random
seed or window never reuses stale frames.
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
from s2t_edu.frames import encoder_output_lengths

FEATURES_VERSION = 2  # 2: frames stored unpadded, clip after clip, with every text column
TEXT_COLUMNS_EXCLUDED = ("id", "voice")  # string columns that are not texts to learn


def encoder_fingerprint(encoder: torch.nn.Module) -> str:
    """SHA-256 of every weight and buffer of ``encoder`` (names and values): its identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def is_fixed_window(encoder) -> bool:
    """Whisper-type encoders: every clip is padded to one window, so all give the same frames."""
    return getattr(encoder.config, "model_type", None) == "whisper"


def check_cacheable(encoder, feature_extractor) -> None:
    """Raise unless a clip's frames are the same alone and in any padded batch (see above)."""
    if is_fixed_window(encoder):
        return
    norm = getattr(encoder.config, "feat_extract_norm", None)
    why = None
    if norm is None:
        why = (
            "it is neither a fixed-window encoder such as Whisper's nor a wav2vec2-family one "
            "with a layer-norm feature encoder"
        )
    elif norm != "layer":
        why = (
            f"its feature encoder uses {norm} norm, which normalises over the whole padded clip; "
            "such models were trained without an attention mask (transformers PR #10117), so a "
            "clip's frames change with its batch's padding. Cached frames need a fixed-window "
            "encoder (Whisper) or a layer-norm feature encoder"
        )
    elif not getattr(feature_extractor, "return_attention_mask", False):
        why = (
            "its feature extractor returns no attention mask, so end-to-end batches would let "
            "padding into the frames that cached (unpadded) clips never see"
        )
    if why:
        raise S2TEduError(
            f"this encoder's outputs cannot be cached: {why}",
            "train end to end instead (python -m s2t_edu.finetune --end-to-end)",
            f"{type(encoder).__name__} (feat_extract_norm={norm!r})",
        )


@torch.no_grad()
def encode_clips(
    encoder, feature_extractor, arrays: list, batch_size: int = 16, description: str = "encoding"
) -> list[np.ndarray]:
    """Each clip's encoder output frames, (frames, width) float32, for a list of 16 kHz arrays.

    A fixed-window encoder reads ``batch_size`` clips at a time (all padded to its window
    anyway); any other encoder reads each clip alone, unpadded, so no padding or mask enters.
    """
    fixed = is_fixed_window(encoder)
    if fixed:
        window = feature_extractor.n_samples
        too_long = [i for i, a in enumerate(arrays) if len(a) > window]
        if too_long:
            raise S2TEduError(
                f"{len(too_long)} clip(s) are longer than the encoder's "
                f"{window / SAMPLING_RATE:g} s window and would be cut",
                "use a longer --window (seconds), e.g. the longest clip rounded up",
                f"clip {too_long[0]}: {len(arrays[too_long[0]]) / SAMPLING_RATE:.2f} s",
            )
    step = batch_size if fixed else 1
    input_name = feature_extractor.model_input_names[0]  # input_features / input_values
    encoder.eval()
    out = []
    with tqdm(total=len(arrays), desc=description, unit="clip") as bar:
        for start in range(0, len(arrays), step):
            chunk = arrays[start : start + step]
            features = feature_extractor(chunk, sampling_rate=SAMPLING_RATE, return_tensors="pt")
            frames = encoder(features[input_name]).last_hidden_state.float().numpy()
            out += list(frames)
            bar.update(len(chunk))
    return out


def frame_counts(encoder, samples: list[int]) -> list[int]:
    """Frames the encoder gives clips of ``samples`` samples (the window's for Whisper)."""
    if is_fixed_window(encoder):
        return [encoder.config.max_source_positions] * len(samples)
    return encoder_output_lengths(encoder.config, torch.tensor(samples)).tolist()


def stored_bytes(encoder, clips: int, frames: int | None = None) -> int:
    """Bytes the cached frames of ``clips`` clips take: ``frames`` frames in all (default: a
    fixed-window encoder's window per clip) of the encoder's width in float32, plus a
    generous 512 bytes of JSON (id, texts, duration) per clip."""
    if frames is None:
        frames = clips * encoder.config.max_source_positions
    width = getattr(encoder.config, "d_model", None) or encoder.config.hidden_size
    return frames * width * 4 + clips * 512


def _texts(row: dict) -> dict:
    """The row's text columns (transcript, translations), kept so any of them can be a target."""
    return {k: v for k, v in row.items() if isinstance(v, str) and k not in TEXT_COLUMNS_EXCLUDED}


def _build(
    directory: Path, encoder, feature_extractor, corpus_size, corpus_seed, max_clips
) -> None:
    # The corpus is loaded here, by the one process that builds: the others only read frames.
    corpus = load_corpus(corpus_size, corpus_seed)
    if max_clips is not None:
        corpus = {s: d.select(range(min(max_clips, len(d)))) for s, d in corpus.items()}
    samples = {
        s: [round(d * SAMPLING_RATE) for d in rows["duration"]] for s, rows in corpus.items()
    }
    clips = sum(len(v) for v in samples.values())
    frames = sum(sum(frame_counts(encoder, v)) for v in samples.values())
    # Encoding takes ~10-30 ms a clip: better to stop now than after minutes of work.
    needed = stored_bytes(encoder, clips, frames)
    check_free_space(f"the encoder outputs of corpus {corpus_size!r}", directory, needed, CACHE_FIX)
    for split, rows in corpus.items():
        arrays, meta = [], []
        for row in rows:
            array = row["audio"]["array"]
            arrays.append(array)
            meta.append({"id": row["id"], "duration": row["duration"], "samples": len(array)})
            meta[-1].update(_texts(row))
        encoded = encode_clips(encoder, feature_extractor, arrays, description=f"encoding {split}")
        for m, clip in zip(meta, encoded, strict=True):
            m["frames"] = len(clip)
        np.save(directory / f"{split}.npy", np.concatenate(encoded))
        (directory / f"{split}.json").write_text(json.dumps(meta))


def cached_encoder_outputs(
    encoder,
    feature_extractor,
    corpus_size: str = "course",
    corpus_seed: int = 0,
    max_clips: int | None = None,
) -> Path:
    """Compute the frozen ``encoder``'s frames for every split of a corpus once; the directory.

    ``feature_extractor`` is the encoder's: for Whisper, ``WhisperFeatureExtractor(chunk_length=
    seconds)`` after :func:`s2t_edu.pretrained.whisper.shorten_whisper_window`; for a
    wav2vec2-family encoder its ``Wav2Vec2FeatureExtractor`` (see :func:`check_cacheable`).
    ``max_clips`` keeps the first clips of each split (quick demos). Building takes ~30 ms per
    clip on 2 CPU cores for Whisper tiny with a 5 s window; it first checks the disk has room for
    the result (:func:`stored_bytes`), and a disk that fills up anyway leaves no half-built
    folder.
    """
    check_cacheable(encoder, feature_extractor)
    if (
        is_fixed_window(encoder)
        and encoder.config.max_source_positions * 2 != feature_extractor.nb_max_frames
    ):
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
    """One split of cached frames: rows ``{"encoder_hidden_states", "samples", "duration", ...}``
    plus every text column of the corpus (``text``, ``text_de``, ...)."""

    def __init__(self, directory: Path, split: str):
        self.frames = np.load(Path(directory) / f"{split}.npy", mmap_mode="r")
        self.meta = json.loads((Path(directory) / f"{split}.json").read_text())
        self.starts = np.concatenate([[0], np.cumsum([m["frames"] for m in self.meta])])

    def __len__(self) -> int:
        return len(self.meta)

    def __getitem__(self, index: int) -> dict:
        row = dict(self.meta[index])
        start, end = self.starts[index], self.starts[index + 1]
        row["encoder_hidden_states"] = torch.from_numpy(np.array(self.frames[start:end]))
        return row


class CachedFramesCollator:
    """Rows of :class:`CachedSplit` → ``{"encoder_outputs", "labels"}`` (+ ``attention_mask``).

    Labels are made exactly as :class:`s2t_edu.data.collator.SpeechSeq2SeqCollator` makes them
    (no start token, EOS last, padding -100) from its ``text_column``. Frames are padded with
    zeros to the batch's longest clip. Where that collator would pass an audio attention mask,
    this one passes the mask the clips' audio would have had, ``(clips, longest clip's
    samples)``: the model turns it into the frame mask itself, as it does end to end.
    """

    def __init__(self, label_collator):
        self.label_collator = label_collator  # a SpeechSeq2SeqCollator: its labels and mask rule

    def __call__(self, rows: list[dict]) -> dict:
        frames = torch.nn.utils.rnn.pad_sequence(
            [row["encoder_hidden_states"] for row in rows], batch_first=True
        )
        column = self.label_collator.text_column
        batch = {
            # a plain tuple: the model wraps it in BaseModelOutput; Trainer moves tuples to device
            "encoder_outputs": (frames,),
            "labels": self.label_collator.label_batch([row[column] for row in rows]),
        }
        if self.label_collator.return_attention_mask:
            samples = torch.tensor([row["samples"] for row in rows])
            batch["attention_mask"] = (
                torch.arange(int(samples.max()))[None, :] < samples[:, None]
            ).long()
        return batch
