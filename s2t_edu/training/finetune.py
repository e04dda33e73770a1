"""Fine-tune a speech encoder-decoder from the command line, with checkpoints and resume.

    python -m s2t_edu.finetune --encoder whisper-tiny.en --decoder minilm-l6 \\
        --corpus course --steps 600 --output-dir runs/warm

The steps are :func:`s2t_edu.training.loop.training_loop`'s; this adds what a real run needs: a
progress bar with loss and throughput (audio seconds per second), periodic validation WER,
metrics (``metrics.json``, ``metrics.csv``) and curves (``curves.png``), atomic checkpoints,
and resume: run the same command again after a crash or ``kill -9`` and it continues from the
last checkpoint to the same final weights as an uninterrupted run.

Profiles: on CPU (default) a pretrained encoder is frozen and its outputs cached once
(``s2t_edu.training.encoder_cache``); on CUDA it trains end to end with bf16 autocast, TF32,
length-grouped batches and data loader workers. ``--end-to-end --group-by-length --precision
bf16`` ask for the same on CPU (slow, but the GPU profile's code path, which the tests run).
An encoder that starts random always trains end to end (a frozen random encoder has nothing
to give). Several GPUs or machines: ``accelerate launch -m s2t_edu.finetune ...`` with the
same arguments: ``--batch-size`` stays the clips of one optimizer step, shared out over the
processes, so N processes train the model one process would (README, "More than one GPU /
machine"; ``s2t_edu.training.distributed``).

``--init`` says which parts start from pretrained weights: ``warm`` (encoder and decoder),
``encoder-warm`` (encoder only), ``decoder-warm`` (decoder only) or ``random`` (the same
architecture, every weight random). Cross-attention (and the projection) start random in every
arm, unless the decoder checkpoint already has cross-attention.

``--init-from DIR`` then replaces every weight with those of a saved composite (``DIR`` is the
``model/`` folder an earlier run wrote): a second stage, e.g. a short end-to-end run after a
long, cheap one on cached encoder frames. Only the weights carry over; the optimizer, schedule
and step count start afresh, and resuming the second stage works as for any run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import itertools
import json
import math
import operator
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import gather_object
from tqdm.auto import tqdm
from transformers import AutoFeatureExtractor, AutoTokenizer

from s2t_edu.data.cache import check_free_space, disk_full_error, is_disk_full
from s2t_edu.data.collator import SpeechSeq2SeqCollator
from s2t_edu.data.corpus import corpus_dir, load_corpus
from s2t_edu.errors import S2TEduError
from s2t_edu.labels import set_special_ids
from s2t_edu.model import build_model, load_speech_encoder_decoder
from s2t_edu.pretrained.whisper import shorten_whisper_window, whisper_feature_extractor
from s2t_edu.pretrained.zoo import resolve
from s2t_edu.training.distributed import (
    check_batch_size,
    check_launch,
    check_mixed_precision,
    launcher_pid,
    output_dir_lock,
    share_of_batch,
    stop_together,
    token_mean_over_processes,
)
from s2t_edu.training.encoder_cache import CachedFramesCollator, CachedSplit, cached_encoder_outputs
from s2t_edu.training.loop import (
    PRECISIONS,
    autocast_for,
    batch_stream,
    compute_loss,
    evaluate,
    freeze_encoder,
    prepare_training,
    resolved_precision,
    rng_state,
    set_rng_state,
    to_device,
    training_loop,
)

# --init name -> the parts that start from pretrained weights
INITS = {
    "warm": ("encoder", "decoder"),
    "encoder-warm": ("encoder",),
    "decoder-warm": ("decoder",),
    "random": (),
}
RENAMED_INITS = {"decoder-only": "decoder-warm"}  # old name -> new name (still accepted)
DEVICES = ("auto", "cpu", "cuda")
SPLITS = ("train", "validation", "test", "test_unseen_voice")


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on: the command line's options, one field each."""

    output_dir: str
    encoder: str = "whisper-tiny.en"
    decoder: str = "minilm-l6"
    init: str = "warm"
    init_from: str | None = None  # a saved composite whose weights the run starts from
    corpus: str = "course"
    corpus_seed: int = 0
    max_clips: int | None = None
    target_column: str = "text"  # the corpus column the decoder learns to write
    freeze_feature_encoder: bool = False  # wav2vec2-family: keep the conv feature encoder fixed
    freeze_word_embeddings: bool = False  # the decoder's word embeddings (tied to its output layer)
    end_to_end: bool | None = None  # None: decided per device and init (see ``for_device``)
    group_by_length: bool | None = None  # None: on CUDA only
    precision: str = "auto"
    window: float = 5.0
    steps: int = 0
    minutes: float = 0.0
    batch_size: int = 16  # clips per optimizer step, over all processes
    lr: float = 1e-3
    warmup_steps: int = 50
    max_grad_norm: float = 1.0
    eval_every: int = 100
    eval_clips: int = 100
    eval_batch_size: int = 32
    save_every: int = 100
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    save_model: bool = True
    quiet: bool = False

    def __post_init__(self):
        check_settings(self)  # a Settings that exists is one a run can use

    @property
    def pretrained(self) -> tuple[str, ...]:
        return INITS[self.init]

    @property
    def trained(self) -> tuple[str, ...]:
        """The parts whose weights change (cross-attention always, the encoder end to end only)."""
        return (("encoder",) if self.end_to_end else ()) + ("decoder", "cross_attention")

    def for_device(self, device: torch.device) -> Settings:
        """The automatic choices made: the GPU profile on CUDA, the CPU profile elsewhere."""
        cuda = device.type == "cuda"
        end_to_end = self.end_to_end
        if end_to_end is None:
            end_to_end = cuda or "encoder" not in self.pretrained
        group = cuda if self.group_by_length is None else self.group_by_length
        return dataclasses.replace(
            self,
            end_to_end=end_to_end,
            group_by_length=group,
            precision=resolved_precision(device, self.precision),
        )


# ---------------------------------------------------------------- settings, checked once
# Every numeric option: the values that mean something, and the one-line fix. Checked when a
# Settings is built (parse_args builds one first), so a bad value stops the run before any
# model, corpus or output folder is touched.
NUMBER_RULES = {
    # field: (comparison, bound, fix)
    "corpus_seed": (">=", 0, "use --corpus-seed 0 (or another whole number >= 0)"),
    "max_clips": (">=", 1, "use --max-clips N with N >= 1, or leave it out to use every clip"),
    "steps": (">=", 0, "use --steps N with N >= 1 (or 0 with --minutes M: the clock decides)"),
    "minutes": (">=", 0, "use --minutes M with M > 0 (or 0 with --steps N: they decide)"),
    "batch_size": (">=", 1, "use --batch-size 16 (clips per optimizer step)"),
    "lr": (">", 0, "use --lr 1e-3 (the peak learning rate; 1e-3 measured best for warm starts)"),
    "warmup_steps": (">=", 0, "use --warmup-steps 50 (0: no warm-up)"),
    "max_grad_norm": (">=", 0, "use --max-grad-norm 1.0 (0: no clipping)"),
    "eval_every": (">=", 0, "use --eval-every 100 (0: no validation during training)"),
    "eval_clips": (">=", 0, "use --eval-clips 100 (0: the whole validation split)"),
    "eval_batch_size": (">=", 1, "use --eval-batch-size 32"),
    "save_every": (">=", 0, "use --save-every 100 (0: one checkpoint, at the end)"),
    "seed": (">=", 0, "use --seed 0 (or another whole number >= 0)"),
    "workers": (">=", 0, "use --workers 0 (batches made in the training process) or more"),
}
COMPARE = {">": operator.gt, ">=": operator.ge}
WHISPER_SECONDS = 30  # the longest window of every Whisper checkpoint (1500 encoder positions)


def check_settings(settings: Settings) -> None:
    """Raise for the first option whose value means nothing (a negative step count, a NaN
    learning rate, an unknown --init, ...), naming the option, the value and the fix."""
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name not in NUMBER_RULES or (value is None and field.type.endswith("| None")):
            continue
        comparison, bound, fix = NUMBER_RULES[field.name]
        whole = field.type.startswith("int")
        if not (_is_number(value, whole) and COMPARE[comparison](value, bound)):
            flag = "--" + field.name.replace("_", "-")
            kind = "a whole number" if whole else "a number"
            raise S2TEduError(f"{flag} must be {kind} {comparison} {bound}", fix, value)
    window = settings.window
    if not _is_number(window, whole=False) or not (
        float(window).is_integer() and 1 <= window <= WHISPER_SECONDS
    ):
        raise S2TEduError(
            f"--window must be whole seconds from 1 to {WHISPER_SECONDS} (Whisper's encoder "
            f"reads {WHISPER_SECONDS} s at most)",
            f"use --window 5 (clips up to 5 s), or --window {WHISPER_SECONDS} for Whisper's "
            "full window",
            window,
        )
    if settings.init not in INITS:
        raise S2TEduError("unknown --init", f"use one of {list(INITS)}", settings.init)
    names = {
        "--output-dir": (settings.output_dir, "runs/demo"),
        "--encoder": (settings.encoder, "whisper-tiny.en"),
        "--decoder": (settings.decoder, "minilm-l6"),
        "--target-column": (settings.target_column, "text"),
    }
    if settings.init_from is not None:
        names["--init-from"] = (settings.init_from, "runs/stage1/model")
    for flag, (value, example) in names.items():
        if not isinstance(value, str | os.PathLike) or not str(value).strip():
            raise S2TEduError(
                f"{flag} is empty (or not a name)", f"e.g. {flag} {example}", repr(value)
            )


def _is_number(value, whole: bool) -> bool:
    """An int (``whole``) or a finite int/float; True/False are not numbers here."""
    if isinstance(value, bool):
        return False
    if whole:
        return isinstance(value, int)
    return isinstance(value, int | float) and math.isfinite(value)


def check_output_dir(out: Path) -> None:
    """``--output-dir`` is a folder or can become one: the nearest existing path on its way up
    is a folder this user may write into (checked before anything is loaded or written)."""
    existing = Path(out).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise S2TEduError(
            "--output-dir is a file, or lies inside one; it must be a folder",
            "choose a folder path for --output-dir (e.g. runs/demo); it is made if missing",
            f"{out} ({existing} is a file)",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise S2TEduError(
            "this user may not write into --output-dir (or the folder it would be made in)",
            "choose a folder you can write to (e.g. runs/demo in your home)",
            f"{out} (no write permission on {existing})",
        )


# Settings that change the result: resuming with any of them different would mix two runs.
RESUME_KEYS = (
    "encoder",
    "decoder",
    "init",
    "init_from",
    "corpus",
    "corpus_seed",
    "max_clips",
    "target_column",
    "freeze_feature_encoder",
    "freeze_word_embeddings",
    "end_to_end",
    "group_by_length",
    "precision",
    "window",
    "steps",
    "batch_size",
    "lr",
    "warmup_steps",
    "max_grad_norm",
    "seed",
)


# ---------------------------------------------------------------- model, tokenizer, features
def build_model_and_processors(
    encoder: str, decoder: str, init: str = "warm", window: float | None = 5.0, seed: int = 0
):
    """``(model, feature_extractor, tokenizer)``: a SpeechEncoderDecoderModel ready to train.

    ``init`` says which parts start from pretrained weights (see ``INITS``); random parts are
    seeded by ``seed``. ``window`` (whole seconds) shortens a Whisper encoder's 30 s input (see
    ``shorten_whisper_window``; None keeps all 30 s); the feature extractor is made to match.
    """
    init = RENAMED_INITS.get(init, init)
    if init not in INITS:
        raise S2TEduError("unknown --init", f"use one of {list(INITS)}", init)
    model = build_model(encoder, decoder, pretrained=INITS[init], seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve(decoder))
    extractor = AutoFeatureExtractor.from_pretrained(resolve(encoder))
    if model.config.encoder.model_type == "whisper" and window is not None:
        extractor = whisper_feature_extractor(extractor, window)
        shorten_whisper_window(model, window)
    set_special_ids(model, tokenizer)
    # generate would otherwise stop at the checkpoint's max_length (20 by default) before
    # max_new_tokens, cutting long transcripts
    model.generation_config.max_length = None
    return model, extractor, tokenizer


def check_init_from(path) -> Path:
    """``--init-from`` names a folder written by ``save_pretrained`` (config + safetensors)."""
    folder = Path(path)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise S2TEduError(
            "--init-from must be a saved SpeechEncoderDecoderModel folder (config.json and "
            "model.safetensors), such as the model/ folder an earlier run writes",
            "point --init-from at OUTPUT_DIR/model of a finished run",
            str(path),
        )
    return folder


def load_weights_from(model, path) -> None:
    """Copy every weight of the composite saved in ``path`` into ``model`` (same architecture).

    Only the weights: the optimizer, schedule and step count of this run start afresh (a
    second stage of training). A folder of another architecture is refused, naming the
    tensors that do not fit, instead of leaving some weights as they were.
    """
    saved = load_speech_encoder_decoder(check_init_from(path)).state_dict()
    ours = model.state_dict()
    missing, unexpected = sorted(set(ours) - set(saved)), sorted(set(saved) - set(ours))
    wrong = sorted(k for k in set(ours) & set(saved) if ours[k].shape != saved[k].shape)
    if missing or unexpected or wrong:
        raise S2TEduError(
            "--init-from holds a model of another architecture than --encoder/--decoder build",
            "use the same --encoder, --decoder (and --window) as the run that saved it",
            f"{path}: missing {missing[:3]}, unexpected {unexpected[:3]}, other shape {wrong[:3]}",
        )
    model.load_state_dict(saved)


def pick_device(name: str) -> torch.device:
    """``auto`` = CUDA if there is one, else CPU; an unknown or missing device is an error."""
    if name not in DEVICES:
        raise S2TEduError("unknown --device", f"use one of {list(DEVICES)}", name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise S2TEduError(
            "--device cuda, but torch sees no CUDA GPU (this torch build or machine has none)",
            "use --device cpu (or auto), or install a CUDA build of torch on a GPU machine",
            f"torch {torch.__version__}",
        )
    return torch.device(name)


def datasets_for(settings: Settings, model, extractor, tokenizer):
    """``(splits, collator)``: cached encoder frames (frozen encoder) or audio (end to end)."""
    labels = SpeechSeq2SeqCollator(extractor, tokenizer, text_column=settings.target_column)
    corpus = load_corpus(settings.corpus, settings.corpus_seed)
    if settings.target_column not in corpus["train"].column_names:
        texts = [c for c in corpus["train"].column_names if c.startswith("text")]
        raise S2TEduError(
            f"the {settings.corpus} corpus has no column {settings.target_column!r}",
            f"use --target-column with one of {texts} (text: the transcript)",
            settings.target_column,
        )
    if settings.end_to_end:
        if settings.max_clips:
            corpus = {
                s: d.select(range(min(settings.max_clips, len(d)))) for s, d in corpus.items()
            }
        return corpus, labels
    directory = cached_encoder_outputs(
        model.encoder, extractor, settings.corpus, settings.corpus_seed, settings.max_clips
    )
    return {s: CachedSplit(directory, s) for s in SPLITS}, CachedFramesCollator(labels)


def clip_durations(dataset) -> list[float]:
    """Seconds of audio of every clip (a corpus split or a cached one)."""
    if hasattr(dataset, "column_names"):
        return [float(d) for d in dataset["duration"]]
    return [float(m["duration"]) for m in dataset.meta]


# ---------------------------------------------------------------- checkpoints
def _trainable_state(model) -> dict:
    """Every weight that can change: a frozen encoder is rebuilt from its source on resume."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in frozen}


def tensor_bytes(obj) -> int:
    """Bytes of every tensor in a nested dict/list (what ``torch.save`` mostly writes)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


CHECKPOINT_FIX = (
    "free disk space (or use another --output-dir), then run the same command to resume"
)


def save_checkpoint(
    directory: Path, step: int, model, optimizer, scheduler, history, rng_states=None
) -> Path:
    """Write ``checkpoints/step-N`` atomically, then point ``LATEST`` at it and drop older ones.

    Everything goes into a temporary folder first; only a complete folder is renamed into
    place, and ``LATEST`` is replaced (also atomically) only after that. A crash or a full
    disk at any moment leaves the previous checkpoint and ``LATEST`` untouched; a full disk
    also removes the temporary folder and says how much space the checkpoint needs.
    ``rng_states``: every process's random state, in process order (default: this one's).
    """
    root = Path(directory) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    state = {
        "model": _trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_states if rng_states is not None else [rng_state()],
        "step": step,
        "elapsed": history[-1]["elapsed"] if history else 0.0,
        "history": history,
    }
    # The tensors plus the pickled rest (history, RNG states: a few hundred kB at most).
    needed = tensor_bytes(state) + 1_000_000
    what = f"the checkpoint of step {step}"
    intact = f"the last good checkpoint ({_latest_name(root)}) is intact"
    try:
        check_free_space(what, root, needed, CHECKPOINT_FIX)
        tmp.mkdir()
        torch.save(state, tmp / "state.pt")
        with open(tmp / "state.pt", "rb") as f:
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _write_atomic(root / "LATEST", final.name)
    except S2TEduError as error:  # not enough room: nothing was written
        raise S2TEduError(f"{error.problem}; {intact}", error.fix, error.seen) from None
    except (OSError, RuntimeError) as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(error):
            full = disk_full_error(what, root, needed, CHECKPOINT_FIX)
            raise S2TEduError(f"{full.problem}; {intact}", full.fix, full.seen) from error
        if isinstance(error, RuntimeError):
            raise
        raise S2TEduError(
            f"could not save {what} ({error.strerror or error}); {intact}",
            CHECKPOINT_FIX,
            str(root),
        ) from error
    for old in root.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _latest_name(root: Path) -> str | None:
    latest = root / "LATEST"
    return latest.read_text().strip() if latest.is_file() else None


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint ``LATEST`` names (temporary folders of an interrupted save are ignored)."""
    root = Path(directory) / "checkpoints"
    name = _latest_name(root)
    if name and (root / name / "state.pt").is_file():
        return root / name
    return None


def check_resume_settings(directory: Path, settings: Settings) -> None:
    """Refuse to resume into a directory written by a run with different settings."""
    saved_path = Path(directory) / "run_config.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    if saved.get("init") in RENAMED_INITS:
        saved["init"] = RENAMED_INITS[saved["init"]]
    now = dataclasses.asdict(settings)
    # A key the saved file lacks was written before that setting existed; such a run used what
    # is now the default, so only keys present on both sides are compared.
    changed = {k: (saved[k], now[k]) for k in RESUME_KEYS if k in saved and saved[k] != now[k]}
    if changed:
        raise S2TEduError(
            "--output-dir holds a run with different settings; resuming would mix two experiments",
            "use a new --output-dir, or repeat the original settings (see its run_config.json)",
            ", ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in changed.items()),
        )


# ---------------------------------------------------------------- metrics and plots
def write_metrics(directory: Path, history: list[dict]) -> None:
    """``metrics.json`` (every record) and ``metrics.csv`` (one row per step), atomically."""
    directory = Path(directory)
    _write_atomic(directory / "metrics.json", json.dumps(history, indent=1))
    fields = ["step", "loss", "lr", "audio_seconds_per_second", "elapsed", "eval_loss", "wer"]
    tmp = directory / ".metrics.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, directory / "metrics.csv")


def plot_curves(runs: dict[str, list[dict]], path: Path | None = None, title: str = ""):
    """Training loss and validation WER against step, one line per run; saved as a PNG if
    ``path`` is given. Returns the figure (a notebook displays it)."""
    # Imported here: matplotlib takes ~0.4 s to import and only the end of a run draws.
    # No pyplot: a bare Figure works the same in scripts and notebooks.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    for name, history in runs.items():
        left.plot([r["step"] for r in history], [r["loss"] for r in history], label=name, lw=1)
        evals = [r for r in history if "wer" in r]
        right.plot([r["step"] for r in evals], [r["wer"] for r in evals], "o-", label=name)
    left.set(xlabel="step", ylabel="training loss (nats/token)", yscale="log")
    right.set(xlabel="step", ylabel="validation WER", ylim=(0, None))
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


# ---------------------------------------------------------------- the run
def run(settings: Settings) -> dict:
    """Train (or resume) as ``settings`` say; returns the final metrics. See :func:`parse_args`.

    Under ``accelerate launch`` every process runs this; only the first writes anything
    (``s2t_edu.training.distributed`` has the rules that make N processes train as one).
    """
    out = Path(settings.output_dir)
    check_output_dir(out)
    device = pick_device(settings.device)
    corpus_dir(settings.corpus, settings.corpus_seed)  # an unknown size fails now, not later
    for name in (settings.encoder, settings.decoder):
        resolve(name)  # and so does an unknown model name
    if settings.init_from is not None:
        check_init_from(settings.init_from)
    settings = settings.for_device(device)
    if not settings.steps and not settings.minutes:
        raise S2TEduError("no budget", "pass --steps N and/or --minutes M")
    check_mixed_precision(settings.precision)
    # mixed_precision "no": the autocast is --precision's (autocast_for), never accelerate's too
    accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision="no")
    processes = accelerator.num_processes
    check_launch(processes)
    check_batch_size(settings.batch_size, processes)
    if latest_checkpoint(out) is not None:  # a run that never saved a step has nothing to mix
        check_resume_settings(out, settings)  # every process reads, so all stop together
    main = accelerator.is_main_process
    with contextlib.ExitStack() as run_scope:
        if main:
            out.mkdir(parents=True, exist_ok=True)
            run_scope.enter_context(output_dir_lock(out))
            _write_atomic(
                out / "run_config.json", json.dumps(dataclasses.asdict(settings), indent=1)
            )
        accelerator.wait_for_everyone()  # nobody reads the checkpoints before the lock is held
        final = _train(settings, out, accelerator, device)
    if processes > 1:
        accelerator.end_training()
    return final if main else {}


def _train(settings: Settings, out: Path, accelerator, device) -> dict:
    main = accelerator.is_main_process
    processes, rank = accelerator.num_processes, accelerator.process_index
    model, extractor, tokenizer = build_model_and_processors(
        settings.encoder, settings.decoder, settings.init, settings.window, settings.seed
    )
    if settings.init_from is not None:  # a later stage: the weights an earlier run saved
        load_weights_from(model, settings.init_from)
    if not settings.end_to_end:
        freeze_encoder(model)
    elif settings.freeze_feature_encoder:
        if not hasattr(model.encoder, "freeze_feature_encoder"):
            raise S2TEduError(
                "--freeze-feature-encoder: this encoder has no convolutional feature encoder "
                "(wav2vec2-family encoders have one; Whisper reads mel features)",
                "drop --freeze-feature-encoder",
                f"--encoder {settings.encoder} ({model.config.encoder.model_type})",
            )
        model.freeze_feature_encoder()  # the seed's training example does the same
    if settings.freeze_word_embeddings:  # tied: the output layer's weight stays fixed too
        model.decoder.get_input_embeddings().weight.requires_grad_(False)
    # One process per machine builds the caches (corpus, encoder outputs) while the others
    # wait, then they read them: no two processes ever write one cache entry. (On machines
    # sharing one cache folder, build_once's file lock keeps the second builder waiting too.)
    with accelerator.local_main_process_first():
        splits, collator = datasets_for(settings, model, extractor, tokenizer)
    train_set, eval_set = splits["train"], _first(splits["validation"], settings.eval_clips)
    check_batch_size(settings.batch_size, processes, len(train_set))
    durations = clip_durations(train_set)

    steps = settings.steps or None  # None: a time budget decides
    optimizer, scheduler = prepare_training(
        model, settings.lr, settings.warmup_steps, steps, settings.seed, accelerator.device
    )
    step, elapsed, history = 0, 0.0, []
    checkpoint = latest_checkpoint(out)
    seen = gather_object([checkpoint.name if checkpoint else None])
    if len(set(seen)) > 1:
        raise S2TEduError(
            "the processes see different checkpoints in --output-dir",
            "on several machines, put --output-dir on a filesystem they all share",
            ", ".join(f"process {r}: {name}" for r, name in enumerate(seen)),
        )
    if checkpoint is not None:  # resume: weights, optimizer moments, schedule, RNG, history
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        saved_rng = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        # Another number of processes may resume (the batches do not depend on it): process r
        # continues saved process (r mod saved)'s random stream, so dropout masks differ from
        # an uninterrupted run's; with the same number, everything continues exactly.
        set_rng_state(saved_rng[rank % len(saved_rng)])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        if main:
            print(f"resuming from {checkpoint.name}", file=sys.stderr)
            if len(saved_rng) != processes:
                print(
                    f"note: saved by {len(saved_rng)} process(es), resumed by {processes}: "
                    "same batches, new dropout masks",
                    file=sys.stderr,
                )
    last_saved = step
    model, optimizer = accelerator.prepare(model, optimizer)
    plain_model = accelerator.unwrap_model(model)

    # Every process walks the same global batches and takes its own share of each.
    lengths = durations if settings.group_by_length else None

    def global_batches():
        stream = batch_stream(len(train_set), settings.batch_size, settings.seed, lengths)
        return itertools.islice(stream, step, None)

    shares = share_of_batch(global_batches(), rank, processes, first_step=step + 1)
    loader = _loader(train_set, collator, shares, settings, device)
    audio_seconds = (sum(durations[i] for i in batch) for batch in global_batches())
    loss_fn = compute_loss
    if processes > 1:
        loss_fn = token_mean_over_processes(compute_loss, accelerator)

    def score(dataset) -> dict:
        """Every process scores its share of the batches; everyone gets the whole set's scores."""
        return evaluate(
            plain_model,
            dataset,
            collator,
            tokenizer,
            batch_size=settings.eval_batch_size,
            device=accelerator.device,
            text_column=settings.target_column,
            shard=(rank, processes),
            gather=gather_object if processes > 1 else None,
        )

    def scores(model):
        result = score(eval_set)
        return {"eval_loss": result["eval_loss"], "wer": result["wer"]}

    budget = settings.minutes * 60 if settings.minutes else float("inf")
    started = time.perf_counter() - elapsed
    launcher = launcher_pid()
    bar = tqdm(
        total=steps,
        initial=step,
        disable=not main or settings.quiet,
        desc="fine-tuning",
        unit="step",
        dynamic_ncols=True,
    )

    def save(step):
        nonlocal last_saved
        rng_states = gather_object([rng_state()])  # every process's, in process order
        if main:
            save_checkpoint(out, step, plain_model, optimizer, scheduler, history, rng_states)
            write_metrics(out, history)
        last_saved = step

    def after_step(record, model):
        if processes > 1:  # the batch's mean: the processes' rescaled losses, averaged
            loss = torch.tensor(record["loss"], device=accelerator.device)
            record["loss"] = accelerator.reduce(loss, "mean").item()
        record["audio_seconds_per_second"] = next(audio_seconds) / record["step_seconds"]
        record["elapsed"] = round(time.perf_counter() - started, 2)
        history.append(record)
        bar.update(1)
        bar.set_postfix(
            loss=f"{record['loss']:.3f}",
            audio_s_per_s=f"{record['audio_seconds_per_second']:.0f}",
            **({"wer": f"{record['wer']:.3f}"} if "wer" in record else {}),
        )
        if settings.save_every and record["step"] % settings.save_every == 0:
            save(record["step"])

    try:
        training_loop(
            model,
            (to_device(batch, accelerator.device) for batch in loader),
            optimizer,
            scheduler,
            steps=steps,
            loss_fn=loss_fn,
            max_grad_norm=settings.max_grad_norm,
            autocast=autocast_for(device, settings.precision),
            backward=accelerator.backward,
            evaluate=scores,
            eval_every=settings.eval_every,
            first_step=step + 1,
            stop=lambda: stop_together(
                accelerator, time.perf_counter() - started >= budget, launcher
            ),
            on_step=after_step,
        )
    except (torch.OutOfMemoryError, MemoryError) as error:
        per_process = -(-settings.batch_size // processes)
        raise S2TEduError(
            f"a batch of {per_process} clips per process does not fit in memory",
            f"lower --batch-size (e.g. --batch-size {max(processes, settings.batch_size // 2)}); "
            "on a GPU, --end-to-end needs far more memory than the cached-encoder profile",
            type(error).__name__,
        ) from error
    finally:
        bar.close()
    if history and history[-1]["step"] != last_saved:
        save(history[-1]["step"])
    return _finish(out, plain_model, splits, score, tokenizer, extractor, history, settings, main)


def _first(dataset, n):
    if not n or n >= len(dataset):
        return dataset
    if hasattr(dataset, "select"):
        return dataset.select(range(n))
    return torch.utils.data.Subset(dataset, range(n))


def _loader(train_set, collator, batches, settings, device):
    """This process's batches, in the planned order (``batches``: lists of clip indices)."""
    workers = settings.workers
    if workers is None:
        workers = 4 if device.type == "cuda" else 0
    return torch.utils.data.DataLoader(
        train_set,
        batch_sampler=batches,
        collate_fn=collator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        # Its own generator: a DataLoader iterator otherwise draws a seed from the global torch
        # RNG, so a resumed run would see different dropout masks than an uninterrupted one.
        generator=torch.Generator().manual_seed(settings.seed),
    )


def _finish(out, model, splits, score, tokenizer, extractor, history, settings, main) -> dict:
    """Final WER on test and test_unseen_voice (every process scores its share); the first
    process saves the model, metrics and curves."""
    final = {
        "steps": history[-1]["step"] if history else 0,
        "elapsed": history[-1]["elapsed"] if history else 0.0,
        "pretrained": list(settings.pretrained),
        "trained": list(settings.trained),
    }
    for split in ("test", "test_unseen_voice"):
        scores = score(splits[split])
        final[f"{split}_wer"], final[f"{split}_loss"] = scores["wer"], scores["eval_loss"]
        final[f"{split}_examples"] = scores["examples"]
    if not main:
        return final
    write_metrics(out, history)
    _write_atomic(out / "final_metrics.json", json.dumps(final, indent=1))
    plot_curves({settings.init: history}, out / "curves.png", title=str(out.name))
    if settings.save_model:
        model.save_pretrained(out / "model")
        tokenizer.save_pretrained(out / "model")
        extractor.save_pretrained(out / "model")
    return final


# ---------------------------------------------------------------- command line
HELP = {
    "encoder": "zoo name, directory or hub id",
    "decoder": "zoo name, directory or hub id",
    "init": "which parts start pretrained: warm (both), encoder-warm, decoder-warm, random",
    "init_from": "then take every weight from this saved composite (the model/ folder of an "
    "earlier run: a second stage); optimizer and schedule start afresh",
    "corpus": "tiny | course | large",
    "max_clips": "use the first N clips per split",
    "target_column": "corpus column the decoder learns to write (text: the transcript)",
    "freeze_feature_encoder": "wav2vec2-family encoders: do not train the conv feature encoder",
    "freeze_word_embeddings": "keep the decoder's word embeddings (and the output layer tied "
    "to them) at their pretrained values",
    "end_to_end": "train the encoder too (default: on CUDA, or when the encoder starts random)",
    "group_by_length": "sort each run of 50 batches by clip length, less padding "
    "(default: on CUDA only)",
    "precision": "bf16 autocast with the loss in fp32, or fp32 (auto: bf16 on CUDA, fp32 on CPU)",
    "window": "Whisper input window, whole seconds from 1 to 30",
    "steps": "optimizer steps (0: --minutes alone decides)",
    "minutes": "training-time budget (0: --steps alone decides)",
    "batch_size": "clips per optimizer step, shared out over all processes (accelerate launch)",
    "eval_batch_size": "clips per validation/test batch (several processes: each scores every "
    "N-th batch)",
    "lr": "peak learning rate (1e-3 measured best for warm starts)",
    "max_grad_norm": "clip the gradients' global norm to this (0: no clipping)",
    "eval_every": "validate every N steps and at the last (0: no validation during training)",
    "eval_clips": "validation clips scored each time (0: the whole validation split)",
    "save_every": "checkpoint every N steps (0: one checkpoint, at the end)",
    "workers": "data loader worker processes (default: 4 on CUDA, 0 on CPU)",
    "output_dir": "where checkpoints, metrics, curves and the model go (the same dir resumes)",
    "quiet": "no progress bar",
}


def parse_args(argv=None) -> Settings:
    """The command line as :class:`Settings` (one option per field, same defaults)."""
    p = argparse.ArgumentParser(
        prog="python -m s2t_edu.finetune", description=__doc__.split("\n")[0]
    )
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        help_ = HELP.get(field.name)
        if field.name == "output_dir":
            p.add_argument(flag, required=True, help=help_)
        elif field.name == "init":
            p.add_argument(
                flag, default=field.default, choices=[*INITS, *RENAMED_INITS], help=help_
            )
        elif field.name == "precision":
            p.add_argument(flag, default=field.default, choices=PRECISIONS, help=help_)
        elif field.name == "quiet":
            p.add_argument(flag, action="store_true", help=help_)
        elif field.type in ("bool | None", "bool"):
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=field.default, help=help_
            )
        else:
            kind = {"int": int, "int | None": int, "float": float}.get(field.type, str)
            p.add_argument(flag, type=kind, default=field.default, help=help_)
    values = vars(p.parse_args(argv))
    if values["init"] in RENAMED_INITS:
        new = RENAMED_INITS[values["init"]]
        print(f"note: --init {values['init']} is now called --init {new}", file=sys.stderr)
        values["init"] = new
    return Settings(**values)


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars
    try:
        final = run(parse_args(argv))
    except S2TEduError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if final:
        print(json.dumps({k: v for k, v in final.items() if not k.endswith("examples")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
