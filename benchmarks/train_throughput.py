"""Training throughput, audio seconds per second: our loop vs Seq2SeqTrainer, same run.

Same model (Whisper tiny.en encoder frozen and cached + MiniLM decoder, warm-started), same
batches in the same order, same AdamW + linear schedule + clipping; both run in this process,
interleaved (ours, Trainer, Trainer, ours, ...) so a change in machine load hits both.
Steps after the first ``--warmup`` of each run are timed (one-off costs excluded).

    python benchmarks/train_throughput.py --steps 30 --rounds 2

Writes ``benchmarks/results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    import torch
    import transformers
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    from s2t_edu.training.finetune import Settings, build_model_and_processors, datasets_for
    from s2t_edu.training.loop import (
        batch_order,
        freeze_encoder,
        make_optimizer,
        make_schedule,
        train_step,
    )

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    settings = Settings(output_dir="unused", corpus="course", end_to_end=False)
    total = args.warmup + args.steps

    def fresh():
        model, extractor, tokenizer = build_model_and_processors(
            "whisper-tiny.en", "minilm-l6", "warm", 5, 0
        )
        freeze_encoder(model)
        splits, collator = datasets_for(settings, model, extractor, tokenizer)
        return model.train(), splits["train"], collator

    model, train_set, collator = fresh()
    order = batch_order(len(train_set), args.batch_size, 0, total)
    timed_audio = sum(train_set.meta[i]["duration"] for b in order[args.warmup :] for i in b)

    def ours() -> float:
        model, train_set, collator = fresh()
        optimizer = make_optimizer(model, 3e-4)
        scheduler = make_schedule(optimizer, 10, total)
        for step, batch in enumerate(order):
            if step == args.warmup:
                started = time.perf_counter()
            train_step(model, collator([train_set[i] for i in batch]), optimizer, scheduler)
        return timed_audio / (time.perf_counter() - started)

    def trainer() -> float:
        model, train_set, collator = fresh()
        ordered = torch.utils.data.Subset(train_set, [i for b in order for i in b])
        marks = {}

        class Clock(TrainerCallback):
            def on_step_end(self, _args, state, control, **kwargs):
                marks[state.global_step] = time.perf_counter()

        with tempfile.TemporaryDirectory() as tmp:
            training_args = Seq2SeqTrainingArguments(
                output_dir=tmp, per_device_train_batch_size=args.batch_size, max_steps=total,
                learning_rate=3e-4, warmup_steps=10, lr_scheduler_type="linear",
                weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch",
                train_sampling_strategy="sequential", remove_unused_columns=False,
                save_strategy="no", report_to=[], seed=0, use_cpu=True, disable_tqdm=True,
                dataloader_num_workers=0, logging_strategy="no",
            )  # fmt: skip
            Seq2SeqTrainer(
                model=model,
                args=training_args,
                train_dataset=ordered,
                data_collator=collator,
                callbacks=[Clock()],
            ).train()
        return timed_audio / (marks[total] - marks[args.warmup])

    rounds = []
    for index in range(args.rounds):
        load = os.getloadavg()[0]
        # Alternate who goes first, so a drift in machine speed within a round favours neither.
        first, second = (ours, trainer) if index % 2 == 0 else (trainer, ours)
        speeds = {first.__name__: first(), second.__name__: second()}
        rounds.append({**speeds, "load_1min_before": load})
        rounds[-1]["ratio"] = rounds[-1]["ours"] / rounds[-1]["trainer"]
        print(f"round {index + 1}: {rounds[-1]}", flush=True)
    result = {
        "claim": "our loop trains at least as fast as Seq2SeqTrainer (audio seconds per second)",
        "command": "python benchmarks/train_throughput.py " + " ".join(argv or sys.argv[1:]),
        "setup": f"warm whisper-tiny.en encoder (frozen, cached, 5 s window) + minilm-l6 decoder, "
        f"batch {args.batch_size}, {args.steps} timed steps after {args.warmup}, CPU",
        "rounds": rounds,
        "median_ratio_ours_over_trainer": statistics.median(r["ratio"] for r in rounds),
        "torch_threads": torch.get_num_threads(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    out = ROOT / "benchmarks" / "results" / "train_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
