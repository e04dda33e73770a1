"""Train the zoo's wav2vec2 CTC encoder (``w2v2-synth-ctc``) from scratch: a maintainer's script.

    python tools/pretrain_ctc.py --out s2t_edu/pretrained/checkpoints/w2v2-synth-ctc --steps 3000 --threads 1

The recipe (model, vocabulary, data order, schedule) is :mod:`s2t_edu.pretrained.w2v2_ctc`;
the steps are :func:`s2t_edu.training.loop.training_loop`'s. About 30 minutes on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from s2t_edu.pretrained.w2v2_ctc import DEFAULT_SEED, DEFAULT_STEPS, train


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python tools/pretrain_ctc.py",
        description="Train the small wav2vec2 CTC model of the zoo (w2v2-synth-ctc) from scratch.",
    )
    parser.add_argument("--out", required=True, help="directory to write the checkpoint into")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--size", default="course", help="corpus size: tiny, course or large")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mask-time-prob", type=float, default=None, help="SpecAugment-style")
    parser.add_argument("--no-eval", action="store_true", help="skip the CER evaluation")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    record = train(
        args.out,
        steps=args.steps,
        seed=args.seed,
        size=args.size,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=args.warmup,
        threads=args.threads,
        evaluate_splits=not args.no_eval,
        config_overrides=None
        if args.mask_time_prob is None
        else {"mask_time_prob": args.mask_time_prob},
        command="python tools/pretrain_ctc.py " + shlex.join(argv),
    )
    print(json.dumps({k: record[k] for k in record if k.startswith(("cer", "train_wall"))}))
    return record


if __name__ == "__main__":
    main()
