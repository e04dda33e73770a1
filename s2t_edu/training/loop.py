"""Fine-tuning in one screen: forward, loss, backward, clip, optimizer and schedule step — and WER.

    batch --model (teacher forcing)--> logits --seq2seq_loss (fp32)--> loss --backward--> grads
    grads --clip to norm 1--> AdamW step --> learning-rate schedule step --> zero grads

:func:`training_loop` is the one loop of the course: the notebooks' :func:`train`, the command
line (``python -m s2t_edu.finetune``: checkpoints, resume, progress bar, plots) and the CTC
pre-training of the zoo's wav2vec2 all run it; they differ only in what they hand it (the
batches, the optimizer and schedule, the ``loss_fn``). :func:`train_step` is one turn of it,
:func:`evaluate` the WER of greedy transcripts. ``Seq2SeqTrainer`` gives the same losses
(tests/test_train.py).

A batch is what a collator returns: ``labels`` plus the encoder's input (``input_features`` or
``input_values``, maybe ``attention_mask``) — or ``encoder_outputs`` when the encoder is frozen
and its outputs were computed once (``s2t_edu.training.encoder_cache``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput

from s2t_edu.decoding import greedy_decode
from s2t_edu.errors import S2TEduError
from s2t_edu.inputs import check_decoder_inputs, check_encoder_inputs
from s2t_edu.labels import IGNORE_INDEX, shift_tokens_right
from s2t_edu.loss import seq2seq_loss
from s2t_edu.metrics import wer

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    """Seed every generator training touches: Python, NumPy, torch (dropout, init)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The state of every generator, for a checkpoint (resume continues the same random stream)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Undo :func:`rng_state`: put every generator back where the checkpoint left it."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def freeze_encoder(model) -> None:
    """Stop training the speech encoder (its outputs can then be cached once)."""
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(False)


def make_optimizer(model, lr: float = 3e-4, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with Trainer's defaults (betas 0.9/0.999, eps 1e-8)."""
    check_learning_rate(lr)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)


def make_schedule(optimizer, warmup_steps: int, total_steps: int | None):
    """Linear warm-up, then linear decay to 0 at ``total_steps`` (constant if that is unknown)."""
    check_step_counts(warmup_steps, total_steps)
    if total_steps is None:  # a time budget: the number of steps is not known in advance
        return get_constant_schedule_with_warmup(optimizer, warmup_steps)
    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def check_learning_rate(lr) -> None:
    """A finite number > 0 (AdamW would raise a bare ``ValueError``; NaN would train nothing)."""
    number = isinstance(lr, int | float) and not isinstance(lr, bool) and math.isfinite(lr)
    if not (number and lr > 0):
        raise S2TEduError("the learning rate must be a number > 0", "use e.g. lr=1e-3", seen=lr)


def check_step_counts(warmup_steps, total_steps) -> None:
    """A warm-up of >= 0 steps and a run of >= 1 step (``None``: a time budget ends it)."""
    if not _whole_at_least(warmup_steps, 0):
        raise S2TEduError(
            "warmup_steps must be a whole number >= 0", "use e.g. warmup_steps=50", warmup_steps
        )
    if total_steps is not None and not _whole_at_least(total_steps, 1):
        raise S2TEduError(
            "the number of steps must be a whole number >= 1 (or None: a clock ends the run)",
            "use e.g. steps=100",
            total_steps,
        )


def _whole_at_least(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


PRECISIONS = ("auto", "fp32", "bf16")


def resolved_precision(device: torch.device | str, precision: str = "auto") -> str:
    """``fp32`` or ``bf16``: ``auto`` means bf16 on CUDA, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise S2TEduError("unknown precision", f"use one of {list(PRECISIONS)}", precision)
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cuda" else "fp32"
    return precision


def autocast_for(device: torch.device | str, precision: str = "auto"):
    """bf16 autocast (matmuls in bf16, the loss stays fp32) or nothing; ``auto``: bf16 on CUDA only.

    ``precision="bf16"`` works on CPU too (slower there, but the same code path as a GPU run,
    which is how the tests check it on machines without one).
    """
    device = torch.device(device)
    precision = resolved_precision(device, precision)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls left over use TF32 cores
        torch.backends.cudnn.allow_tf32 = True
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch, device):
    """Move every tensor of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


SPEECH_INPUTS = ("input_values", "input_features")  # wav2vec2-like encoders, Whisper


def check_batch(model, batch) -> None:
    """Raise a clear error for a batch the model cannot learn from, before the forward pass.

    Unchecked, torch fails deep inside or not at all: a label outside the vocabulary is an
    ``IndexError`` in the embedding, NaN audio a NaN loss, a mask shorter than the audio is
    accepted. Checked: labels (and the decoder inputs made from them) against the decoder's
    vocabulary, the audio (finite, the mask of its shape; ``s2t_edu.inputs``) or cached encoder
    frames, one row of each per clip. Each check is one pass (a sum, an aminmax) over its
    tensor, once per batch.
    """
    # Several processes: DistributedDataParallel wraps the model (its config is on .module).
    model = getattr(model, "module", model)
    keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
    if not isinstance(batch, Mapping) or "labels" not in batch:
        raise S2TEduError(
            "a training batch needs labels: the target token ids (padding -100)",
            "make batches with s2t_edu's collator (SpeechSeq2SeqCollator), which adds them",
            seen=f"batch keys {keys}",
        )
    if "encoder_outputs" in batch:
        clips = _check_cached_frames(model, batch["encoder_outputs"])
    else:
        name = next((key for key in SPEECH_INPUTS if key in batch), None)
        if name is None:
            raise S2TEduError(
                "the batch holds no audio: neither input_values, input_features nor "
                "encoder_outputs",
                "make batches with s2t_edu's collator (SpeechSeq2SeqCollator), which adds the "
                "encoder's input",
                seen=f"batch keys {keys}",
            )
        speech, _ = check_encoder_inputs(model, batch[name], batch.get("attention_mask"))
        clips = speech.shape[0]
    config = model.config
    decoder_input_ids = shift_tokens_right(
        batch["labels"], config.pad_token_id, config.decoder_start_token_id
    )
    check_decoder_inputs(model, decoder_input_ids, batch["labels"], clips)


def _check_cached_frames(model, encoder_outputs) -> int:
    """Cached encoder frames: a finite float tensor (clips, frames, encoder width); its clips."""
    holder = isinstance(encoder_outputs, tuple | list | ModelOutput) and len(encoder_outputs)
    frames = encoder_outputs[0] if holder else encoder_outputs  # (frames,) or BaseModelOutput
    width = model.config.encoder.hidden_size
    if not (
        isinstance(frames, torch.Tensor)
        and frames.is_floating_point()
        and frames.dim() == 3
        and frames.shape[-1] == width
    ):
        raise S2TEduError(
            f"encoder_outputs must hold the encoder's frames: a float tensor (clips, frames, "
            f"{width})",
            "pass encoder_outputs=(model.encoder(inputs).last_hidden_state,), as "
            "s2t_edu.training.encoder_cache's collator does",
            seen=tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__,
        )
    if not bool(torch.isfinite(frames.sum())) and not bool(torch.isfinite(frames).all()):
        raise S2TEduError(
            "the cached encoder frames contain NaN or infinite values",
            "rebuild the cache from finite audio (s2t_edu.data.load_audio refuses NaN audio)",
            seen=f"{int((~torch.isfinite(frames)).sum())} non-finite of {frames.numel()} values",
        )
    return frames.shape[0]


def compute_loss(model, batch: dict, label_smoothing: float = 0.0) -> torch.Tensor:
    """Teacher-forced forward pass and the fp32 loss — what ``model(**batch).loss`` computes."""
    check_batch(model, batch)  # ids in the vocabulary, finite audio, a mask of its shape
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    labels = batch["labels"]
    # Several processes: the model arrives wrapped in DistributedDataParallel, which calls the
    # model but does not pass its config through.
    config = getattr(model, "module", model).config
    decoder_input_ids = shift_tokens_right(
        labels, config.pad_token_id, config.decoder_start_token_id
    )
    logits = model(**inputs, decoder_input_ids=decoder_input_ids, use_cache=False).logits
    return seq2seq_loss(logits, labels, label_smoothing)  # log-softmax in fp32 even under bf16


LossFn = Callable[[torch.nn.Module, dict], torch.Tensor]


def train_step(
    model,
    batch,
    optimizer,
    scheduler,
    max_grad_norm: float = 1.0,
    autocast=None,
    backward=None,
    loss_fn: LossFn = compute_loss,
) -> float:
    """One optimisation step on one batch; returns the batch's loss.

    ``backward`` defaults to ``loss.backward``; ``accelerate`` passes its own (it scales and
    synchronises gradients across GPUs). ``loss_fn(model, batch)`` defaults to the seq2seq loss.
    """
    with autocast or contextlib.nullcontext():
        loss = loss_fn(model, batch)
    (backward or torch.Tensor.backward)(loss)
    if max_grad_norm:  # rescale all gradients together if their global norm exceeds the limit
        torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], max_grad_norm
        )
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def batch_stream(
    n: int, batch_size: int, seed: int, lengths=None, group: int = 50
) -> Iterator[list[int]]:
    """The clips of every step, for ever: a fresh shuffle per epoch, a pure function of ``seed``.

    Step k's batch never depends on what ran before, so a resumed run takes the same batches.
    With ``lengths``, each run of ``group`` batches is sorted longest first (length-grouped
    batches waste less compute on padding, as Trainer's ``group_by_length`` does).
    """
    pending: list[int] = []
    for epoch in itertools.count():
        order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
        if lengths is not None:
            size = group * batch_size
            chunks = [order[i : i + size] for i in range(0, n, size)]
            order = [i for chunk in chunks for i in sorted(chunk, key=lambda j: -lengths[j])]
        pending += order
        while len(pending) >= batch_size:  # a batch may span the end of one epoch
            yield pending[:batch_size]
            pending = pending[batch_size:]


def batch_order(
    n: int, batch_size: int, seed: int, steps: int, lengths=None, group: int = 50
) -> list[list[int]]:
    """The first ``steps`` batches of :func:`batch_stream`."""
    return list(itertools.islice(batch_stream(n, batch_size, seed, lengths, group), steps))


@torch.no_grad()
def transcribe(model, batch: dict, tokenizer, max_new_tokens: int = 32) -> list[str]:
    """Greedy transcripts of a batch: the one place the course's decoding is called from."""
    model.eval()
    if "encoder_outputs" in batch:  # cached frames: generate skips the encoder
        frames = BaseModelOutput(last_hidden_state=batch["encoder_outputs"][0])
        ids = model.generate(
            encoder_outputs=frames,
            attention_mask=batch.get("attention_mask"),  # clips of several lengths: the audio mask
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
        )
    else:
        inputs = batch.get("input_features", batch.get("input_values"))
        ids = greedy_decode(model, inputs, batch.get("attention_mask"), max_new_tokens)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def check_eval_set(dataset, batch_size) -> None:
    """Something to score, in batches of at least one clip (a mean over nothing is undefined)."""
    if not _whole_at_least(batch_size, 1):
        raise S2TEduError(
            "batch_size must be a whole number >= 1", "use e.g. batch_size=32", seen=batch_size
        )
    if len(dataset) == 0:
        raise S2TEduError(
            "the evaluation set is empty: no clip to score",
            "pass a split with clips (dataset.select(range(n)) with n >= 1)",
            seen=f"{type(dataset).__name__} of 0 rows",
        )


@torch.no_grad()
def evaluate(
    model,
    dataset,
    collator,
    tokenizer,
    batch_size: int = 32,
    device="cpu",
    *,
    transcribe=transcribe,
    metric=wer,
    loss_fn: LossFn | None = compute_loss,
    text_column: str = "text",
    shard: tuple[int, int] = (0, 1),
    gather: Callable[[list], list] | None = None,
) -> dict:
    """Mean loss and error rate of ``transcribe``'s output over ``dataset``; model in eval mode.

    Defaults: teacher-forced seq2seq loss and WER of greedy transcripts (``{"eval_loss",
    "wer", "examples"}``). A CTC model passes its own ``transcribe`` and ``metric=cer``.
    References are ``row[text_column]`` (a translation model: the column of target sentences).

    Several processes: each passes ``shard=(rank, processes)`` and ``gather``
    (``accelerate.utils.gather_object``). Process ``rank`` scores batches ``rank``,
    ``rank + processes``, ... and ``gather`` hands every process all the batches' results, put
    back in order: each returns exactly the numbers one process scoring every batch would.
    """
    check_eval_set(dataset, batch_size)
    model.eval()
    rank, processes = shard
    scored = []  # (first row, loss x rows, references, hypotheses) of each batch scored here
    starts = range(0, len(dataset), batch_size)[rank::processes]
    log.debug(
        "evaluate: process %d scores clips %s of %d",
        rank,
        [i for s in starts for i in range(s, min(s + batch_size, len(dataset)))],
        len(dataset),
    )
    for start in starts:
        rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch = to_device(collator(rows), device)
        loss = loss_fn(model, batch).item() * len(rows) if loss_fn is not None else 0.0
        hypotheses = transcribe(model, batch, tokenizer)
        scored.append((start, loss, [row[text_column] for row in rows], hypotheses))
    if gather is not None:
        scored = sorted(gather(scored))
    references = [text for _, _, texts, _ in scored for text in texts]
    hypotheses = [text for _, _, _, texts in scored for text in texts]
    scores = {metric.__name__: metric(references, hypotheses)}
    if loss_fn is not None:
        scores = {"eval_loss": sum(loss for _, loss, _, _ in scored) / len(dataset), **scores}
    return {**scores, "examples": list(zip(references[:3], hypotheses[:3], strict=True))}


def training_loop(
    model,
    batches: Iterable,
    optimizer,
    scheduler,
    *,
    steps: int | None,
    loss_fn: LossFn = compute_loss,
    max_grad_norm: float = 1.0,
    autocast=None,
    backward=None,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    eval_every: int = 0,
    first_step: int = 1,
    stop: Callable[[], bool] | None = None,
    on_step: Callable[[dict, torch.nn.Module], None] | None = None,
) -> list[dict]:
    """The training loop: one :func:`train_step` per batch; returns one record per step.

    ``batches`` yields the batches of steps ``first_step, first_step + 1, ...`` (on the model's
    device). The run ends after step ``steps`` (None: when ``batches`` or ``stop()`` ends it,
    e.g. a time budget). Every ``eval_every`` steps and at the last one, ``evaluate(model)``'s
    scores join the step's record; ``on_step(record, model)`` runs after every step.
    """
    history = []
    numbers = itertools.count(first_step) if steps is None else range(first_step, steps + 1)
    for step, batch in zip(numbers, batches, strict=False):  # whichever ends first
        record = {"step": step, "lr": scheduler.get_last_lr()[0]}  # the lr this step uses
        started = time.perf_counter()
        record["loss"] = train_step(
            model, batch, optimizer, scheduler, max_grad_norm, autocast, backward, loss_fn
        )
        record["step_seconds"] = time.perf_counter() - started
        last = step == steps or (stop is not None and stop())
        if evaluate is not None and eval_every and (step % eval_every == 0 or last):
            record.update(evaluate(model))
            model.train()
        history.append(record)
        if on_step is not None:
            on_step(record, model)
        if last:
            break
    return history


def prepare_training(model, lr: float, warmup_steps: int, steps: int | None, seed: int, device):
    """Seed, move the model to ``device`` in training mode; the AdamW optimizer and schedule."""
    set_seed(seed)
    model.to(device).train()
    optimizer = make_optimizer(model, lr)
    return optimizer, make_schedule(optimizer, warmup_steps, steps)


def train(
    model,
    train_set,
    collator,
    tokenizer,
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 3e-4,
    warmup_steps: int = 50,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    eval_set=None,
    eval_every: int = 0,
    device="cpu",
    callback=None,
) -> list[dict]:
    """Fine-tune ``model`` for ``steps`` steps; one record per step (loss, lr, WER when evaluated).

    ``callback(step, model)``, if given, runs after every step (e.g. to record attention maps).
    """
    optimizer, scheduler = prepare_training(model, lr, warmup_steps, steps, seed, device)
    order = batch_order(len(train_set), batch_size, seed, steps)
    batches = (to_device(collator([train_set[i] for i in rows]), device) for rows in order)
    scores = None
    if eval_set is not None:

        def scores(model):
            return evaluate(model, eval_set, collator, tokenizer, device=device)

    return training_loop(
        model,
        batches,
        optimizer,
        scheduler,
        steps=steps,
        max_grad_norm=max_grad_norm,
        autocast=autocast_for(device),
        evaluate=scores,
        eval_every=eval_every,
        on_step=None if callback is None else lambda record, model: callback(record["step"], model),
    )


@torch.no_grad()
def cross_attention_map(model, batch: dict, tokenizer, row: int = 0, layer: int = -1):
    """Cross-attention of one clip, (decoder steps, audio frames), averaged over heads.

    Teacher-forced on the reference transcript. Returns ``(weights, predicted_tokens)``: row
    ``i`` is where the decoder looked while its input was token ``i`` of the shifted labels,
    that is, while it was *predicting* label ``i`` — so each row is named by the token it
    predicts (the first row predicts the first word, the last one ``[SEP]``), not by its input.
    """
    model.eval()
    labels = batch["labels"][row : row + 1]
    labels = labels[:, : int((labels != IGNORE_INDEX).sum())]
    config = model.config
    decoder_input_ids = shift_tokens_right(
        labels, config.pad_token_id, config.decoder_start_token_id
    )
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    if "encoder_outputs" in inputs:
        inputs["encoder_outputs"] = (inputs["encoder_outputs"][0][row : row + 1],)
    else:
        inputs = {key: value[row : row + 1] for key, value in inputs.items()}
    # Fused attention kernels (sdpa) never form the weights: use the plain ("eager") one here.
    before = model.decoder.config._attn_implementation
    model.decoder.set_attn_implementation("eager")
    try:
        out = model(**inputs, decoder_input_ids=decoder_input_ids, output_attentions=True)
    finally:
        model.decoder.set_attn_implementation(before)
    weights = out.cross_attentions[layer][0].mean(dim=0)  # (tokens, frames)
    predicted_tokens = tokenizer.convert_ids_to_tokens(labels[0].tolist())
    return weights.float().numpy(), predicted_tokens
