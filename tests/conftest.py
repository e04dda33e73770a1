"""Shared test set-up: offline, quiet, deterministic, and one cache for the whole run."""

import os
from pathlib import Path

# Before transformers/datasets are imported anywhere: never touch the network, no hub bars.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Corpora and converted checkpoints are built once per checkout, not once per test.
os.environ.setdefault(
    "S2T_EDU_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "s2t_edu")
)

import torch  # noqa: E402
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
