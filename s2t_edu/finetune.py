"""Fine-tune a speech encoder-decoder from the command line, with checkpoints and resume.

    python -m s2t_edu.finetune --encoder whisper-tiny.en --decoder minilm-l6 \\
        --corpus course --steps 600 --output-dir runs/warm

The steps are :mod:`s2t_edu.train`'s; this adds what a real run needs: a progress bar with
loss and throughput (audio seconds per second), periodic validation WER, metrics
(``metrics.json``, ``metrics.csv``) and curves (``curves.png``), atomic checkpoints, and resume:
run the same command again after a crash or ``kill -9`` and it continues from the last
checkpoint to the same final weights as an uninterrupted run.

Profiles: on CPU (default) the pretrained encoder is frozen and its outputs cached once
(``s2t_edu.encoder_cache``); on CUDA it trains end to end with bf16 autocast, TF32,
length-grouped batches and data loader workers. ``--end-to-end --group-by-length --precision
bf16`` ask for the same on CPU (slow, but the GPU profile's code path, which the tests run).
Several GPUs: ``accelerate launch -m s2t_edu.finetune ...`` (same arguments; ``--batch-size``
is per device).

``--init``: ``warm`` (pretrained encoder + pretrained decoder), ``decoder-only`` (random
encoder + pretrained decoder) or ``random`` (the same architecture, every weight random).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from .errors import S2TEduError
from .train import (
    PRECISIONS,
    autocast_for,
    batch_order,
    evaluate,
    freeze_encoder,
    make_optimizer,
    make_schedule,
    resolved_precision,
    rng_state,
    set_rng_state,
    set_seed,
    to_device,
    train_step,
)

INITS = ("warm", "decoder-only", "random")
DEVICES = ("auto", "cpu", "cuda")
# Settings that change the result: resuming with any of them different would mix two runs.
RESUME_KEYS = (
    "encoder",
    "decoder",
    "init",
    "corpus",
    "corpus_seed",
    "max_clips",
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
def build_model(
    encoder: str, decoder: str, init: str = "warm", window: float | None = 5.0, seed: int = 0
):
    """``(model, feature_extractor, tokenizer)``: a SpeechEncoderDecoderModel ready to train.

    ``init`` says which parts start from pretrained weights; random parts are seeded by ``seed``.
    ``window`` shortens a Whisper encoder's 30 s input (see ``shorten_whisper_window``).
    """
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForCausalLM,
        AutoTokenizer,
        SpeechEncoderDecoderModel,
        WhisperFeatureExtractor,
    )

    from .config import compose_config
    from .model import speech_encoder_from_config
    from .pretrained import _encoder_only, resolve, shorten_whisper_window

    if init not in INITS:
        raise S2TEduError("unknown --init", f"use one of {list(INITS)}", init)
    encoder_dir, decoder_dir = resolve(encoder), resolve(decoder)
    set_seed(seed)
    if init == "warm":
        speech = _encoder_only(AutoModel.from_pretrained(encoder_dir))
    else:
        speech = speech_encoder_from_config(AutoConfig.from_pretrained(encoder_dir))
    if init == "random":
        config = compose_config(speech.config, AutoConfig.from_pretrained(decoder_dir))
        text = AutoModelForCausalLM.from_config(config.decoder)
        model = SpeechEncoderDecoderModel(config=config, encoder=speech, decoder=text)
    else:
        model = SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
            None, decoder_dir, encoder_model=speech
        )
    tokenizer = AutoTokenizer.from_pretrained(decoder_dir)
    extractor = AutoFeatureExtractor.from_pretrained(encoder_dir)
    if speech.config.model_type == "whisper" and window:
        shorten_whisper_window(model, window)
        extractor = WhisperFeatureExtractor(**{**extractor.to_dict(), "chunk_length": window})
        extractor.n_samples = round(window * extractor.sampling_rate)  # ints: numpy pads by them
        extractor.nb_max_frames = extractor.n_samples // extractor.hop_length
    _set_special_tokens(model, tokenizer)
    return model, extractor, tokenizer


def _set_special_tokens(model, tokenizer) -> None:
    """Start = [CLS] (or BOS), end = [SEP] (or EOS), pad: set on config and generation_config."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    eos = tokenizer.sep_token_id if tokenizer.cls_token_id is not None else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    for target in (model.config, model.generation_config):
        target.decoder_start_token_id, target.eos_token_id, target.pad_token_id = start, eos, pad
    model.generation_config.max_length = None


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


def datasets_for(settings: dict, model, extractor, tokenizer):
    """``(splits, collator)``: cached encoder frames (frozen encoder) or audio (end to end)."""
    from .collator import SpeechSeq2SeqCollator
    from .data import load_corpus

    labels = SpeechSeq2SeqCollator(extractor, tokenizer)
    if settings["end_to_end"]:
        corpus = load_corpus(settings["corpus"], settings["corpus_seed"])
        if settings["max_clips"]:
            corpus = {
                s: d.select(range(min(settings["max_clips"], len(d)))) for s, d in corpus.items()
            }
        return corpus, labels
    from .encoder_cache import CachedFramesCollator, CachedSplit, cached_encoder_outputs

    directory = cached_encoder_outputs(
        model.encoder, extractor, settings["corpus"], settings["corpus_seed"], settings["max_clips"]
    )
    splits = {
        s: CachedSplit(directory, s) for s in ("train", "validation", "test", "test_unseen_voice")
    }
    return splits, CachedFramesCollator(labels)


# ---------------------------------------------------------------- checkpoints
def _trainable_state(model) -> dict:
    """Every weight that can change: a frozen encoder is rebuilt from its source on resume."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in frozen}


def save_checkpoint(directory: Path, step: int, model, optimizer, scheduler, history, elapsed):
    """Write ``checkpoints/step-N`` atomically, then point ``LATEST`` at it and drop older ones.

    Everything goes into a temporary folder first; only a complete folder is renamed into
    place, and ``LATEST`` is replaced (also atomically) only after that. A crash or a full
    disk at any moment leaves the previous checkpoint and ``LATEST`` untouched.
    """
    root = Path(directory) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        torch.save(
            {
                "model": _trainable_state(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "step": step,
                "elapsed": elapsed,
                "history": history,
            },
            tmp / "state.pt",
        )
        with open(tmp / "state.pt", "rb") as f:
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _write_atomic(root / "LATEST", final.name)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise S2TEduError(
            f"could not save the checkpoint of step {step} ({error.strerror or error}); "
            f"the last good checkpoint ({_latest_name(root)}) is intact",
            "free disk space (or use another --output-dir), then run the same command to resume",
            str(root),
        ) from error
    for old in root.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


def check_resume_settings(directory: Path, settings: dict) -> None:
    """Refuse to resume into a directory written by a run with different settings."""
    saved_path = Path(directory) / "run_config.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    # A key the saved file lacks was written before that setting existed; such a run used what
    # is now the default, so only keys present on both sides are compared.
    changed = {
        k: (saved[k], settings.get(k))
        for k in RESUME_KEYS
        if k in saved and saved[k] != settings.get(k)
    }
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
    from matplotlib.figure import Figure  # no pyplot: works the same in scripts and notebooks

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
def run(settings: dict) -> dict:
    """Train (or resume) as ``settings`` say; returns the final metrics. See :func:`parse_args`."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    out = Path(settings["output_dir"])
    device = pick_device(settings["device"])
    from .data import corpus_dir

    corpus_dir(settings["corpus"], settings["corpus_seed"])  # an unknown size fails now, not later
    # The GPU profile: train everything, length-grouped batches, bf16 autocast. Each can be
    # asked for on CPU too (slower, but the same code path, which is how the tests run it).
    if settings["end_to_end"] is None:
        settings["end_to_end"] = device.type == "cuda"
    if settings["group_by_length"] is None:
        settings["group_by_length"] = device.type == "cuda"
    settings["precision"] = resolved_precision(device, settings["precision"])
    if not settings["steps"] and not settings["minutes"]:
        raise S2TEduError("no budget", "pass --steps N and/or --minutes M")
    accelerator = Accelerator(cpu=device.type == "cpu")
    main = accelerator.is_main_process
    check_resume_settings(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    if main:
        _write_atomic(out / "run_config.json", json.dumps(settings, indent=1))

    model, extractor, tokenizer = build_model(
        settings["encoder"],
        settings["decoder"],
        settings["init"],
        settings["window"],
        settings["seed"],
    )
    if not settings["end_to_end"]:
        freeze_encoder(model)
    splits, collator = datasets_for(settings, model, extractor, tokenizer)
    train_set = splits["train"]
    eval_set = _first(splits["validation"], settings["eval_clips"])
    durations = [
        float(d)
        for d in (
            train_set["duration"]
            if hasattr(train_set, "column_names")
            else [m["duration"] for m in train_set.meta]
        )
    ]

    set_seed(settings["seed"])
    model.to(accelerator.device).train()
    optimizer = make_optimizer(model, settings["lr"])
    total = settings["steps"] or None
    scheduler = make_schedule(optimizer, settings["warmup_steps"], total)
    step, elapsed, history = 0, 0.0, []
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None:  # resume: weights, optimizer moments, schedule, RNG, history
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        if main:
            print(f"resuming from {checkpoint.name}", file=sys.stderr)
    model, optimizer = accelerator.prepare(model, optimizer)

    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = settings["batch_size"] * world
    steps_planned = settings["steps"] or 10**7
    order = batch_order(
        len(train_set),
        global_batch,
        settings["seed"],
        steps_planned,
        lengths=durations if settings["group_by_length"] else None,
    )
    batches = _loader(train_set, collator, order[step:], rank, world, settings, device)
    autocast = autocast_for(device, settings["precision"])
    budget = settings["minutes"] * 60 if settings["minutes"] else float("inf")
    bar = tqdm(
        total=settings["steps"] or None,
        initial=step,
        disable=not main or settings["quiet"],
        desc="fine-tuning",
        unit="step",
        dynamic_ncols=True,
    )
    started = time.perf_counter() - elapsed
    try:
        for indices, batch in zip(order[step:], batches, strict=False):
            if step >= steps_planned or elapsed >= budget:
                break
            tick = time.perf_counter()
            batch = to_device(batch, accelerator.device)
            loss = _step_or_advice(
                model, batch, optimizer, scheduler, settings, autocast, accelerator
            )
            step += 1
            elapsed = time.perf_counter() - started
            audio = sum(durations[i] for i in indices)
            record = {
                "step": step,
                "loss": loss,
                "lr": scheduler.get_last_lr()[0],
                "audio_seconds_per_second": audio / (time.perf_counter() - tick),
                "elapsed": round(elapsed, 2),
            }
            last = step == steps_planned or elapsed >= budget
            if settings["eval_every"] and (step % settings["eval_every"] == 0 or last) and main:
                scores = evaluate(
                    accelerator.unwrap_model(model),
                    eval_set,
                    collator,
                    tokenizer,
                    device=accelerator.device,
                )
                record.update(eval_loss=scores["eval_loss"], wer=scores["wer"])
                model.train()
            history.append(record)
            bar.update(1)
            bar.set_postfix(
                loss=f"{loss:.3f}",
                audio_s_per_s=f"{record['audio_seconds_per_second']:.0f}",
                **({"wer": f"{record['wer']:.3f}"} if "wer" in record else {}),
            )
            if main and (last or (settings["save_every"] and step % settings["save_every"] == 0)):
                save_checkpoint(
                    out,
                    step,
                    accelerator.unwrap_model(model),
                    optimizer,
                    scheduler,
                    history,
                    elapsed,
                )
                write_metrics(out, history)
    finally:
        bar.close()
    if not main:
        return {}
    return _finish(
        out,
        accelerator.unwrap_model(model),
        splits,
        collator,
        tokenizer,
        extractor,
        history,
        settings,
        accelerator.device,
    )


def _first(dataset, n):
    if not n or n >= len(dataset):
        return dataset
    return (
        dataset.select(range(n))
        if hasattr(dataset, "select")
        else torch.utils.data.Subset(dataset, range(n))
    )


def _loader(train_set, collator, order, rank, world, settings, device):
    """Batches in the planned order; each process takes its share of every global batch."""
    shards = [indices[rank::world] for indices in order]
    workers = (
        settings["workers"]
        if settings["workers"] is not None
        else (4 if device.type == "cuda" else 0)
    )
    return torch.utils.data.DataLoader(
        train_set,
        batch_sampler=shards,
        collate_fn=collator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        # Its own generator: a DataLoader iterator otherwise draws a seed from the global torch
        # RNG, so a resumed run would see different dropout masks than an uninterrupted one.
        generator=torch.Generator().manual_seed(settings["seed"]),
    )


def _step_or_advice(model, batch, optimizer, scheduler, settings, autocast, accelerator):
    """One train step; running out of memory becomes advice instead of an allocator trace."""
    try:
        return train_step(
            model,
            batch,
            optimizer,
            scheduler,
            settings["max_grad_norm"],
            autocast,
            backward=accelerator.backward,
        )
    except (torch.OutOfMemoryError, MemoryError) as error:
        raise S2TEduError(
            f"a batch of {settings['batch_size']} clips does not fit in memory",
            f"lower --batch-size (e.g. --batch-size {max(1, settings['batch_size'] // 2)}); "
            "on a GPU, --end-to-end needs far more memory than the cached-encoder profile",
            type(error).__name__,
        ) from error


def _finish(out, model, splits, collator, tokenizer, extractor, history, settings, device) -> dict:
    """Final WER on test and test_unseen_voice; the model, metrics and curves saved."""
    final = {
        "steps": history[-1]["step"] if history else 0,
        "elapsed": history[-1]["elapsed"] if history else 0.0,
    }
    for split in ("test", "test_unseen_voice"):
        scores = evaluate(model, splits[split], collator, tokenizer, device=device)
        final[f"{split}_wer"], final[f"{split}_loss"] = scores["wer"], scores["eval_loss"]
        final[f"{split}_examples"] = scores["examples"]
    write_metrics(out, history)
    _write_atomic(out / "final_metrics.json", json.dumps(final, indent=1))
    plot_curves({settings["init"]: history}, out / "curves.png", title=str(out.name))
    if settings["save_model"]:
        model.save_pretrained(out / "model")
        tokenizer.save_pretrained(out / "model")
        extractor.save_pretrained(out / "model")
    return final


# ---------------------------------------------------------------- command line
def parse_args(argv=None) -> dict:
    """The command line as a settings dict (the same keys :func:`run` takes)."""
    p = argparse.ArgumentParser(
        prog="python -m s2t_edu.finetune", description=__doc__.split("\n")[0]
    )
    p.add_argument("--encoder", default="whisper-tiny.en", help="zoo name, directory or hub id")
    p.add_argument("--decoder", default="minilm-l6", help="zoo name, directory or hub id")
    p.add_argument("--init", default="warm", choices=INITS)
    p.add_argument("--corpus", default="course", help="tiny | course | large")
    p.add_argument("--corpus-seed", type=int, default=0)
    p.add_argument("--max-clips", type=int, default=None, help="use the first N clips per split")
    p.add_argument(
        "--end-to-end",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train the encoder too (default: on CUDA only)",
    )
    p.add_argument(
        "--group-by-length",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sort each run of 50 batches by clip length, less padding (default: on CUDA only)",
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="bf16 autocast with the loss in fp32, or fp32 (auto: bf16 on CUDA, fp32 on CPU)",
    )
    p.add_argument("--window", type=float, default=5.0, help="Whisper input window, seconds")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--minutes", type=float, default=0.0, help="training-time budget")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--lr",
        type=float,
        default=1e-3,
        help="peak learning rate (1e-3 measured best for warm starts)",
    )
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-clips", type=int, default=100)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--save-model", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return {k.replace("-", "_"): v for k, v in vars(p.parse_args(argv)).items()}


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

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
