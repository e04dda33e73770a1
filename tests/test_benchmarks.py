"""The decoding benchmark runs and compares like with like (its timings are its own business)."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "decode.py"


@pytest.fixture(scope="module")
def decode_benchmark():
    spec = importlib.util.spec_from_file_location("decode_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_decode_benchmark_measures_identical_tokens(decode_benchmark, monkeypatch):
    tiny = "tiny (h40, 2 layers)"
    monkeypatch.setattr(decode_benchmark, "DECODERS", {tiny: decode_benchmark.DECODERS[tiny]})
    rows = decode_benchmark.measure(repeats=1, max_new_tokens=3)
    assert [(r[1], r[2]) for r in rows] == [
        (batch, strategy)
        for batch in (1, 8)
        for strategy in ("greedy", "beam (4)", "sample (top-k 50)")
    ]
    assert all(row[-1] for row in rows), "a decoder returned other tokens than generate"
    assert all(row[3] > 0 and row[4] > 0 for row in rows)
    verdicts = decode_benchmark.targets_met(rows)
    assert len([line for line in verdicts if line.startswith("- ")]) == 5  # 4 targets + floor
    split = decode_benchmark.where_time_goes(repeats=1, max_new_tokens=3)
    assert len([line for line in split if line.startswith("| 1 ") or line.startswith("| 8 ")]) == 8
