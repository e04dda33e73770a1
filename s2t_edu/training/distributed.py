"""Several processes (GPUs, machines) training one model: what the fine-tuning CLI adds to accelerate.

accelerate and ``torch.distributed`` do the distributed work: ``accelerate launch`` starts the
processes (through torchrun), ``Accelerator.prepare`` wraps the model in
``DistributedDataParallel`` (gradients averaged over processes in ``backward``), and
``reduce``/``gather_object`` share numbers between processes. This file holds the few rules
that make N processes train the model one process would:

- ``--batch-size`` is the batch of one optimizer step, over all processes; process ``r`` of
  ``n`` takes clips ``r, r + n, r + 2n, ...`` of it (:func:`share_of_batch`).
- The loss is the token mean over the whole batch (:func:`token_mean_over_processes`), as
  Trainer's ``average_tokens_across_devices`` computes it; a mean per process would weigh the
  tokens of short transcripts more.
- Decisions that end the loop are summed over processes (:func:`stop_together`), so all stop
  at the same step: one process leaving early would leave the others waiting for its gradients.

And three guards: the ``--cpu`` launch that starts one process instead of N
(:func:`check_launch`), one run per output directory (:func:`output_dir_lock`), and workers
that stop once their launcher is killed (:func:`launcher_pid`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from s2t_edu.errors import S2TEduError
from s2t_edu.labels import IGNORE_INDEX
from s2t_edu.training.loop import LossFn

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 120.0  # how long a new run waits for the old one's processes to stop


def check_launch(processes: int) -> None:
    """Stop when ``accelerate launch --cpu --num_processes N`` started one process, not N.

    Without MPI (``--mpirun_hostfile``), accelerate's ``--cpu`` launcher runs the script once; it
    still sets MASTER_ADDR (it does so only when N > 1), so the request can be recognised.
    """
    cpu_launcher = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("true", "1")
    if cpu_launcher and "MASTER_ADDR" in os.environ and processes == 1:
        raise S2TEduError(
            "accelerate launch --cpu --num_processes N started one process, not N: without MPI, "
            "accelerate's --cpu launcher runs the script once",
            "for N processes on CPUs run: accelerate launch --multi_gpu --num_processes N "
            "-m s2t_edu.finetune --device cpu ... (accelerate hands --multi_gpu to torchrun; "
            "with --device cpu every process trains on the CPU, over gloo)",
            f"{processes} process",
        )


def check_mixed_precision(precision: str) -> None:
    """s2t_edu autocasts itself (``--precision``); an accelerate config asking for another
    mixed precision would be silently ignored, so it is refused."""
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if launcher not in ("no", precision):
        raise S2TEduError(
            f"the accelerate config asks for mixed_precision {launcher}, this run for "
            f"--precision {precision}; s2t_edu does its own autocast (the loss stays fp32)",
            "set mixed_precision: 'no' in the accelerate config (or pass --mixed_precision no "
            "to accelerate launch) and choose with --precision bf16 or fp32",
            launcher,
        )


def check_batch_size(batch_size: int, processes: int, clips: int | None = None) -> None:
    """Each process needs a clip of every batch; a batch is at most one pass over the data."""
    if batch_size < processes:
        raise S2TEduError(
            f"--batch-size {batch_size} is smaller than the number of processes ({processes}): "
            "--batch-size is the clips of one optimizer step over all processes, and every "
            "process needs at least one of them",
            f"use --batch-size {processes} or more (a multiple of {processes} gives every "
            "process the same share), or launch fewer processes",
            batch_size,
        )
    if clips == 0:
        raise S2TEduError(
            "the training split holds no clip",
            "use a corpus with training clips (--corpus tiny, course or large) and --max-clips "
            "N >= 1 (or leave --max-clips out)",
            clips,
        )
    if clips is not None and batch_size > clips:
        raise S2TEduError(
            f"--batch-size {batch_size} is larger than the training split ({clips} clips): "
            "every batch would hold some clips twice",
            f"use --batch-size {clips} or less, or more clips (--max-clips, a larger --corpus)",
            batch_size,
        )


def share_of_batch(
    global_batches: Iterable[list[int]], rank: int, processes: int, first_step: int = 1
) -> Iterator[list[int]]:
    """Process ``rank``'s clips of every global batch: positions rank, rank + processes, ...

    Every clip of a batch goes to exactly one process, none is dropped or repeated (a batch
    that does not divide evenly gives the first ``batch % processes`` processes one clip more).
    With length-grouped batches (sorted longest first) the interleaving also shares long and
    short clips out evenly. Logged at DEBUG level, step by step.
    """
    for step, clips in enumerate(global_batches, start=first_step):
        mine = clips[rank::processes]
        log.debug("step %d process %d clips %s", step, rank, mine)
        yield mine


def token_mean_over_processes(loss_fn: LossFn, accelerator) -> LossFn:
    """``loss_fn`` (a token mean over this process's clips) rescaled so that the gradient
    ``DistributedDataParallel`` averages over processes is the token mean over the whole batch.

    Process p has ``t_p`` tokens and mean loss ``m_p``; the whole batch's mean is
    ``sum_p t_p m_p / T``. DDP averages gradients (divides their sum by the number of processes
    n), so each process hands it ``m_p * t_p * n / T`` -- what Trainer does with
    ``average_tokens_across_devices`` (``num_items_in_batch`` summed over processes, the loss
    multiplied by ``num_processes``).
    """
    processes = accelerator.num_processes

    def loss_over_all_processes(model, batch):
        tokens = (batch["labels"] != IGNORE_INDEX).sum()
        all_tokens = accelerator.reduce(tokens, "sum")  # T, the same on every process
        return loss_fn(model, batch) * (tokens * processes / all_tokens)

    return loss_over_all_processes


def stop_together(accelerator, time_up: bool, launcher: int | None) -> bool:
    """Whether to end the loop after this step, the same answer on every process.

    ``time_up``: this process's clock says the time budget is spent (clocks differ a little
    between processes, so the flags are summed: the first to run out stops everyone). A
    process whose launcher is gone makes all of them raise instead (see :func:`launcher_pid`).
    """
    gone = launcher is not None and os.getppid() != launcher
    if accelerator.num_processes > 1:
        flags = torch.tensor([time_up, gone], dtype=torch.int64, device=accelerator.device)
        time_up, gone = (bool(v) for v in accelerator.reduce(flags, "sum").tolist())
    if gone:
        raise S2TEduError(
            "the launcher of this run is gone (killed?), so its processes stop here",
            "run the same command again: it resumes from the last checkpoint",
            f"launcher pid {launcher}",
        )
    return time_up


def launcher_pid() -> int | None:
    """The pid of torchrun's agent (``accelerate launch``) when it started this process.

    torchrun starts its workers in sessions of their own, so killing the launcher (even with
    ``kill -9``) does not reach them: they would go on training, and writing checkpoints, beside
    the same command run again. Each step checks the parent is still this pid (a dead parent's
    children are handed to another process); a plain ``python -m`` run has no launcher to watch.
    """
    return os.getppid() if "TORCHELASTIC_RUN_ID" in os.environ else None


@contextlib.contextmanager
def output_dir_lock(out: Path, wait: float = LOCK_WAIT_SECONDS):
    """Hold ``OUT/.lock`` for the whole run: two runs never write one output directory.

    The kernel drops a lock when its process dies, ``kill -9`` included. The same command run
    again right after a killed launcher finds the old workers still finishing their step: it
    waits for them (at most ``wait`` seconds), then goes on from their last checkpoint.
    """
    path = Path(out) / ".lock"
    with open(path, "a+") as lock:
        deadline, told = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = path.read_text().strip() or "?"
                if time.monotonic() > deadline:
                    raise S2TEduError(
                        "another run is writing into this --output-dir",
                        f"wait for it to finish, stop it (kill {holder}), or use another "
                        "--output-dir",
                        f"{out}, held by pid {holder}",
                    ) from None
                if not told:
                    print(f"waiting for pid {holder}, which writes into {out}", file=sys.stderr)
                    told = True
                time.sleep(0.2)
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
