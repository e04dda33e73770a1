"""The zoo's fine-tuned composites: recipe, compact checkpoint, and the build on first use.

Two ``SpeechEncoderDecoderModel`` checkpoints of the shape the transformers documentation
page runs (a wav2vec2-family encoder, a BERT decoder, a ``Wav2Vec2Processor``):

- ``w2v2-minilm-synth``: speech recognition (English speech -> English text);
- ``w2v2-minilm-en-de-synth``: speech translation (English speech -> German text), the shape of
  the page's ``wav2vec2-xls-r-300m-en-to-15``. The architecture is the same; only the labels
  differ (the corpus column ``text_de_ascii`` instead of ``text``).

Both start from the zoo's ``w2v2-synth-ctc`` encoder and ``minilm-l6`` decoder and are trained
by ``python -m s2t_edu.finetune`` (the course's one training loop) in two stages
(:func:`two_stages`): the decoder side on the frozen encoder's cached frames, then end to end
on raw 16 kHz ``input_values`` from those weights. Every stage keeps the conv feature encoder
and the decoder's word embeddings frozen. Why frozen: those
tensors then stay equal to the committed ``w2v2-synth-ctc`` and the pip-shipped MiniLM, so the
repository stores only the tensors training changed (``trained.safetensors``, float16: about
half the size of the whole model in float16) and :func:`assemble` rebuilds the full checkpoint
from the three sources into the s2t_edu cache on first use (seconds, with a progress bar). The
word embeddings are tied to the output layer, so the output layer's weight is frozen too; its
bias and the transform before it train.

``resolve(name)`` returns that assembled directory: ``SpeechEncoderDecoderModel.from_pretrained``
and ``AutoProcessor.from_pretrained`` both load it (the processor is a ``Wav2Vec2Processor``:
the encoder's ``Wav2Vec2FeatureExtractor`` + MiniLM's ``BertTokenizer``). The recipe of each
entry is a :class:`Recipe`; ``python tools/finetune_zoo.py NAME`` trains, packs, scores and
writes the model card.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from s2t_edu.data.cache import build_once, cache_root
from s2t_edu.errors import S2TEduError

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
TRAINED_FILE = "trained.safetensors"  # the tensors fine-tuning changed, float16
CARD_FILES = ("README.md", "training.json")  # copied next to the assembled weights
ENCODER, DECODER = "w2v2-synth-ctc", "minilm-l6"  # the sources every entry starts from
# generate's length limit for these entries, written into their generation_config so the
# page's bare ``model.generate(input_values)`` is not cut at transformers' default of 20 tokens
# (the longest German target of the large corpus is 30 tokens with its end token).
MAX_NEW_TOKENS = 48
ASSEMBLY_VERSION = 1  # bump when assemble() writes something different: new cache dirs


@dataclass(frozen=True)
class Stage:
    """One ``python -m s2t_edu.finetune`` run of a recipe."""

    name: str  # its folder in the work directory
    end_to_end: bool  # False: encoder frozen, its frames computed once (cached); True: raw audio
    steps: int
    lr: float
    batch_size: int
    warmup_steps: int
    eval_every: int
    eval_clips: int = 100
    save_every: int = 100


@dataclass(frozen=True)
class Recipe:
    """How one fine-tuned zoo entry is made: its stages, each a ``python -m s2t_edu.finetune``
    run, the second starting from the first's saved weights (``--init-from``)."""

    name: str
    task: str  # "transcribe" or "translate"
    target_column: str  # the corpus column the decoder learns to write
    stages: tuple[Stage, ...]
    corpus: str = "course"
    seed: int = 0
    threads: int = 1  # one thread each: two entries train side by side on 2 cores

    def stage_dir(self, work_dir: str | Path, index: int) -> Path:
        return Path(work_dir) / f"{index + 1}-{self.stages[index].name}"

    def stage_args(self, work_dir: str | Path, index: int) -> list[str]:
        """The command line of ``python -m s2t_edu.finetune`` for stage ``index``."""
        stage = self.stages[index]
        options = {
            "encoder": ENCODER,
            "decoder": DECODER,
            "init": "warm",
            "corpus": self.corpus,
            "target-column": self.target_column,
            "precision": "fp32",
            "device": "cpu",
            "steps": stage.steps,
            "batch-size": stage.batch_size,
            "lr": stage.lr,
            "warmup-steps": stage.warmup_steps,
            "eval-every": stage.eval_every,
            "eval-clips": stage.eval_clips,
            "save-every": stage.save_every,
            "seed": self.seed,
            "workers": 0,
            "output-dir": self.stage_dir(work_dir, index),
        }
        if index:  # a later stage starts from the weights the one before saved
            options["init-from"] = self.stage_dir(work_dir, index - 1) / "model"
        # The same tensors stay frozen in every stage (pack() checks it): the word embeddings
        # always, the conv feature encoder end to end (a cached stage freezes the whole encoder).
        flags = ["--end-to-end", "--freeze-feature-encoder"] if stage.end_to_end else []
        flags = flags or ["--no-end-to-end"]
        flags.append("--freeze-word-embeddings")
        return [*flags, *(item for k, v in options.items() for item in (f"--{k}", str(v)))]

    @property
    def command(self) -> str:
        """The one recorded command that makes this entry's committed folder."""
        return f"python tools/finetune_zoo.py {self.name}"


def two_stages(
    decoder_steps: int, end_to_end_steps: int, end_to_end_lr: float = 1e-4
) -> tuple[Stage, Stage]:
    """The recipe both entries follow (why: the model cards).

    1. ``cached-frames``: the encoder (``w2v2-synth-ctc``, already trained on this corpus) frozen
       and its frames computed once, so a step only runs the decoder: the new cross-attention
       and the projection learn to read the encoder, the decoder learns the task's sentences.
       A step costs about a third of an end-to-end step per clip (measured on one core:
       ~0.65 s for 16 clips against ~0.9 s for 8), so many of them, in batches of 16.
    2. ``end-to-end``: from stage 1's weights, the whole model but the conv feature encoder
       trains on raw 16 kHz ``input_values``, as the page's training example does, with a
       lower learning rate, so the encoder adapts to what the decoder needs. How much lower
       is the entry's choice, made on validation WER (its model card says what was measured).
    """
    return (
        Stage("cached-frames", False, decoder_steps, 1e-3, 16, 100, eval_every=500),
        Stage("end-to-end", True, end_to_end_steps, end_to_end_lr, 8, 30, eval_every=100),
    )


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        # Recognition: stage 2 at lr 1e-4 raised validation WER from 3.2% (end of stage 1) to
        # 3.6% (test: 4.2% -> 5.2%), so its encoder only fine-tunes gently, at 2e-5.
        Recipe("w2v2-minilm-synth", "transcribe", "text", two_stages(3200, 300, 2e-5)),
        Recipe("w2v2-minilm-en-de-synth", "translate", "text_de_ascii", two_stages(3200, 300)),
    )
}


def recipe_of(name: str) -> Recipe:
    """The :class:`Recipe` of a fine-tuned zoo entry (an unknown name is an error)."""
    if name not in RECIPES:
        raise S2TEduError("not a fine-tuned zoo entry", f"use one of {sorted(RECIPES)}", repr(name))
    return RECIPES[name]


def train_stage(recipe: Recipe, work_dir: str | Path, index: int) -> dict:
    """Run (or resume) one stage into its folder; a stage that already finished is read back.

    The CLI's final metrics. A finished folder written with other settings is refused (the
    CLI's resume check), never silently reused.
    """
    from s2t_edu.training import finetune

    settings = finetune.parse_args(recipe.stage_args(work_dir, index))
    out = recipe.stage_dir(work_dir, index)
    final_path = out / "final_metrics.json"
    if final_path.is_file() and (out / "model").is_dir():
        finetune.check_resume_settings(out, settings.for_device(torch.device("cpu")))
        final = json.loads(final_path.read_text())
        if final["steps"] == settings.steps:
            return final
    torch.set_num_threads(recipe.threads)
    return finetune.run(settings)


def train(recipe: Recipe, work_dir: str | Path) -> list[dict]:
    """Every stage of the recipe in order (each resumes if interrupted); their final metrics."""
    return [train_stage(recipe, work_dir, index) for index in range(len(recipe.stages))]


# ---------------------------------------------------------------- the starting point
def starting_model(recipe: Recipe):
    """``(model, feature_extractor, tokenizer)`` before training, frozen parts marked frozen.

    The same call the finetune CLI makes for the recipe (warm encoder and decoder, random
    cross-attention seeded by the recipe's seed), then the recipe's two freezes.
    """
    from s2t_edu.training.finetune import build_model_and_processors

    model, extractor, tokenizer = build_model_and_processors(
        ENCODER, DECODER, "warm", seed=recipe.seed
    )
    model.freeze_feature_encoder()
    model.decoder.get_input_embeddings().weight.requires_grad_(False)
    return model, extractor, tokenizer


def frozen_names(model) -> set[str]:
    """State-dict names that training never changes: frozen parameters (tied names included)
    and buffers (fixed by the config)."""
    frozen = {n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    return frozen | {n for n, _ in model.named_buffers(remove_duplicate=False)}


def alias_names(model) -> set[str]:
    """State-dict names that are a second name of an earlier tensor (tied weights: BERT's output
    bias is ``cls.predictions.bias`` and ``cls.predictions.decoder.bias``): stored once."""
    seen, aliases = set(), set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if tensor.data_ptr() in seen:
            aliases.add(name)
        seen.add(tensor.data_ptr())
    return aliases


# ---------------------------------------------------------------- pack and assemble
def trained_tensors(trained_model, start_model) -> dict[str, torch.Tensor]:
    """Every tensor of ``trained_model`` that assembly cannot take from the sources, float16.

    Frozen tensors must still equal the starting model's (else the run did not freeze them, and
    dropping them would lose training): that is checked, not assumed.
    """
    start, frozen = start_model.state_dict(), frozen_names(start_model)
    aliases = alias_names(trained_model)
    kept, changed_frozen = {}, []
    for name, tensor in trained_model.state_dict().items():
        if name in aliases:
            continue
        if name not in frozen:
            kept[name] = tensor.detach().to(torch.float16).contiguous()
        elif not torch.equal(tensor, start[name]):
            changed_frozen.append(name)
    if changed_frozen:
        raise S2TEduError(
            "tensors that should have stayed frozen changed during training",
            "train with --freeze-feature-encoder --freeze-word-embeddings (the recipe does)",
            ", ".join(changed_frozen[:5]),
        )
    return kept


def pack(trained_model, start_model, destination: str | Path) -> Path:
    """Write :func:`trained_tensors` to ``destination/trained.safetensors``; returns the path."""
    path = Path(destination) / TRAINED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(trained_tensors(trained_model, start_model), tmp)
    tmp.replace(path)
    return path


@contextlib.contextmanager
def quiet_transformers():
    """No load reports or per-file bars while assembling: the one progress bar says enough.
    (Loading the sources reports the cross-attention as new: assembly then overwrites it.)"""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def assemble_into(directory: str | Path, source: str | Path, recipe: Recipe) -> Path:
    """The full checkpoint (model, generation config, processor, card) in ``directory``.

    ``source`` holds ``trained.safetensors`` (and the card files, copied when present).
    """
    from transformers import Wav2Vec2Processor

    directory, source = Path(directory), Path(source)
    with quiet_transformers(), tqdm(total=4, desc=f"assembling {recipe.name}", unit="part") as bar:
        bar.set_postfix_str(f"{ENCODER} + {DECODER}")
        model, extractor, tokenizer = starting_model(recipe)
        bar.update()
        bar.set_postfix_str(TRAINED_FILE)
        trained = load_file(source / TRAINED_FILE)
        expected = set(model.state_dict())
        unknown = sorted(set(trained) - expected)
        missing = sorted(expected - set(trained) - frozen_names(model) - alias_names(model))
        if unknown or missing:
            raise S2TEduError(
                f"{TRAINED_FILE} does not fit the {recipe.name} architecture",
                f"rebuild it with: {recipe.command}",
                f"unknown {unknown[:3]}, missing {missing[:3]}",
            )
        model.load_state_dict({k: v.float() for k, v in trained.items()}, strict=False)
        model.generation_config.max_new_tokens = MAX_NEW_TOKENS
        bar.update()
        bar.set_postfix_str("model.safetensors")
        model.save_pretrained(directory)
        bar.update()
        bar.set_postfix_str("processor")
        Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(
            directory
        )
        for name in CARD_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, directory / name)
        bar.update()
    return directory


def committed_dir(name: str) -> Path:
    """The entry's folder in the package: ``trained.safetensors`` and its model card."""
    path = CHECKPOINTS / recipe_of(name).name
    if not (path / TRAINED_FILE).is_file():
        raise S2TEduError(
            f"the {name} checkpoint is missing from this installation",
            f"reinstall s2t_edu from the repository, or rebuild it (about an hour on 2 CPU "
            f"cores): {recipe_of(name).command}",
            str(path),
        )
    return path


def assemble(name: str) -> Path:
    """Build the full checkpoint of a fine-tuned zoo entry into the cache once; its directory.

    The cache folder's name carries a digest of the committed ``trained.safetensors``, so a
    retrained entry is assembled anew instead of reusing an old build.
    """
    source = committed_dir(name)
    digest = hashlib.sha256((source / TRAINED_FILE).read_bytes()).hexdigest()[:12]
    target = cache_root() / "zoo" / f"{name}-v{ASSEMBLY_VERSION}-{digest}"
    return build_once(target, lambda tmp: assemble_into(tmp, source, recipe_of(name)))


# ---------------------------------------------------------------- scores
def generate_texts(model, processor, audios: list, batch_size: int = 16) -> list[str]:
    """Greedy outputs for 16 kHz arrays: the page's ``processor`` -> ``generate`` ->
    ``batch_decode``, batched (padding with the attention mask wav2vec2 wants)."""
    texts = []
    model.eval()
    for start in range(0, len(audios), batch_size):
        inputs = processor(
            audios[start : start + batch_size],
            sampling_rate=processor.feature_extractor.sampling_rate,
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            ids = model.generate(
                inputs.input_values,
                attention_mask=inputs.attention_mask,
                do_sample=False,
                num_beams=1,
            )
        texts += processor.batch_decode(ids, skip_special_tokens=True)
    return texts


def translation_scores(references: list[str], hypotheses: list[str]) -> dict:
    """Corpus BLEU and chrF (sacrebleu, its default settings) and the exact-match rate."""
    import sacrebleu

    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
        "exact_match": round(
            sum(r == h for r, h in zip(references, hypotheses, strict=True)) / len(references), 4
        ),
    }


def score(model, processor, rows: list[dict], recipe: Recipe, batch_size: int = 16) -> dict:
    """The entry's scores on corpus rows: WER always, BLEU/chrF/exact match for translation.

    ``rows`` are corpus rows (``audio.array`` at 16 kHz and the recipe's target column).
    """
    from s2t_edu.metrics import wer

    references = [row[recipe.target_column] for row in rows]
    hypotheses = generate_texts(model, processor, [r["audio"]["array"] for r in rows], batch_size)
    result = {"clips": len(rows), "wer": round(wer(references, hypotheses), 4)}
    if recipe.task == "translate":
        result.update(translation_scores(references, hypotheses))
    result["examples"] = [
        {"reference": r, "output": h} for r, h in zip(references[:3], hypotheses[:3], strict=True)
    ]
    return result


# ---------------------------------------------------------------- where the decoder listens
@dataclass(frozen=True)
class AttentionInSeconds:
    """A cross-attention map with the audio's time on one axis, ready to draw."""

    weights: np.ndarray  # (tokens, frames), averaged over heads; each row sums to 1
    tokens: list[str]  # row i: the token predicted while looking there
    seconds: np.ndarray  # (frames,): where each encoder frame starts in the clip


def cross_attention_in_seconds(model, processor, row: dict, target_column: str, layer: int = -1):
    """Teacher-forced cross-attention of one corpus row, with frame start times in seconds.

    ``target_column``: ``"text"`` for the speech recogniser, ``"text_de_ascii"`` for the
    translator (whose rows follow German word order while the frames follow the English audio).
    The weights are ``s2t_edu.training.loop.cross_attention_map``'s; a wav2vec2 frame starts
    every product-of-conv-strides samples (320: 20 ms at 16 kHz).
    """
    from s2t_edu.data.collator import SpeechSeq2SeqCollator
    from s2t_edu.frames import conv_layers
    from s2t_edu.training.loop import cross_attention_map

    collator = SpeechSeq2SeqCollator(
        processor.feature_extractor, processor.tokenizer, text_column=target_column
    )
    weights, tokens = cross_attention_map(model, collator([row]), processor.tokenizer, layer=layer)
    hop = math.prod(stride for _, stride, _ in conv_layers(model.config.encoder))
    seconds = np.arange(weights.shape[1]) * hop / processor.feature_extractor.sampling_rate
    return AttentionInSeconds(weights, tokens, seconds)
