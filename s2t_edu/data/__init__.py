"""The course's data: synthetic speech made offline, audio loading, and training batches.

corpus.py     load_corpus(size): espeak-ng speaks the sentence grammar (sentences.py, tts.py)
audio.py      load_audio: any file or array -> float32 mono at 16 kHz
collator.py   SpeechSeq2SeqCollator: rows -> padded features, masks and -100 labels
cache.py      the build-once cache every corpus, checkpoint and encoder output lives in
"""

from s2t_edu.data.audio import load_audio
from s2t_edu.data.collator import SpeechSeq2SeqCollator
from s2t_edu.data.corpus import (
    CORPUS_SIZES,
    SPLITS,
    build_corpus,
    corpus_dir,
    load_corpus,
    load_speech_dataset,
    read_metadata,
)

__all__ = [
    "CORPUS_SIZES",
    "SPLITS",
    "SpeechSeq2SeqCollator",
    "build_corpus",
    "corpus_dir",
    "load_audio",
    "load_corpus",
    "load_speech_dataset",
    "read_metadata",
]
