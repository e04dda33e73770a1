"""Training: the one loop, the command line around it, and the frozen-encoder output cache.

loop.py           training_loop (every run of the course), train (the notebooks' call),
                  train_step, evaluate, compute_loss
finetune.py       python -m s2t_edu.finetune: checkpoints, resume, progress bar, curves
distributed.py    several processes (accelerate launch): the rules that make N train as one
encoder_cache.py  a frozen encoder's outputs, computed once per clip
"""

from s2t_edu.training.loop import (
    compute_loss,
    cross_attention_map,
    evaluate,
    train,
    train_step,
    training_loop,
    transcribe,
)

__all__ = [
    "compute_loss",
    "cross_attention_map",
    "evaluate",
    "train",
    "train_step",
    "training_loop",
    "transcribe",
]
