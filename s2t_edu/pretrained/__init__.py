"""Pretrained parts that work offline: the zoo, and what Whisper's encoder needs on short clips.

zoo.py          resolve(name) -> a local directory for from_pretrained; catalog(); ZOO
whisper.py      shorten_whisper_window, whisper_feature_extractor
ct2_whisper.py  Whisper tiny.en converted from the CTranslate2 files a pip package ships
w2v2_ctc.py     the recipe of the zoo's self-trained wav2vec2 (tools/pretrain_ctc.py runs it)
finetuned.py    the zoo's fine-tuned composites: recipes, packing, assembly on first use, scores
checkpoints/    the checkpoints this project trained itself
"""

from s2t_edu.pretrained.whisper import shorten_whisper_window, whisper_feature_extractor
from s2t_edu.pretrained.zoo import ZOO, ZooEntry, catalog, resolve, to_markdown

__all__ = [
    "ZOO",
    "ZooEntry",
    "catalog",
    "resolve",
    "shorten_whisper_window",
    "to_markdown",
    "whisper_feature_extractor",
]
