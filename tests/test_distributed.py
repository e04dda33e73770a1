"""Two processes train the model one process trains: `accelerate launch` on CPUs, over gloo.

Every launched run starts `python -m s2t_edu.finetune` twice through accelerate (torchrun), on
the tiny corpus with tiny models, in a cache folder of this module's own (so the encoder cache
is built inside the traced run). A `sitecustomize` put on PYTHONPATH records, per process,
every file written or read (Python's audit hooks: no monkeypatching of the code under test)
and the clips each process trained on and scored (the library's DEBUG log); it can also slow
every step down so a kill lands mid-run.

Why `--multi_gpu` and not `--cpu`: without MPI, `accelerate launch --cpu --num_processes 2`
runs the script once (one process; s2t_edu refuses that, tested below), while `--multi_gpu`
hands the launch to torchrun, which starts the processes; `--device cpu` makes each of them
train on the CPU, over gloo.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import write_tiny_checkpoints

import s2t_edu.training.finetune as finetune
from s2t_edu import S2TEduError
from s2t_edu.training.distributed import (
    check_batch_size,
    check_mixed_precision,
    output_dir_lock,
    share_of_batch,
    token_mean_over_processes,
)
from s2t_edu.training.loop import batch_order, evaluate

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = Path(sys.executable).with_name("accelerate")
TIMEOUT = 300  # seconds for one launched run: nothing may hang the suite
# Weights and losses of 1 and 2 processes agree to rounding (measured: 1.4e-7 after 14 steps);
# a real fault -- here, each process averaging its own tokens instead of the batch's -- moves
# the weights by 4.6e-3 in the same run. The tolerance sits between the two, 70x above one
# and 460x below the other.
TOLERANCE = 1e-5

SITECUSTOMIZE = """
import logging, os, sys, time

_dir = os.environ.get("S2T_EDU_TRACE_DIR")
if _dir:
    _who = os.environ.get("RANK", "launcher")
    _fd = os.open(os.path.join(_dir, f"trace-{_who}-{os.getpid()}.txt"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _roots = tuple(os.path.abspath(r) for r in os.environ["S2T_EDU_TRACE_ROOTS"].split(os.pathsep))
    _writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _note(kind, path):
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str) and os.path.abspath(path).startswith(_roots):
            os.write(_fd, f"{kind}\\t{os.path.abspath(path)}\\n".encode())

    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            write = bool(flags & _writes) if mode is None else any(c in mode for c in "wax+")
            _note("write" if write else "read", path)
        elif event == "os.rename":  # os.replace too
            _note("write", args[0])
            _note("write", args[1])
        elif event == "os.mkdir":
            if not os.path.isdir(args[0]):  # mkdir(exist_ok=True) of an existing folder
                _note("write", args[0])
        elif event in ("os.remove", "os.rmdir", "shutil.rmtree"):
            _note("write", args[0])

    sys.addaudithook(_hook)

    class _Steps(logging.Handler):
        def emit(self, record):
            os.write(_fd, f"log\\t{record.getMessage()}\\n".encode())
            time.sleep(float(os.environ.get("S2T_EDU_TRACE_STEP_DELAY", "0")))

    for _name in ("s2t_edu.training.distributed", "s2t_edu.training.loop"):
        logging.getLogger(_name).setLevel(logging.DEBUG)
        logging.getLogger(_name).addHandler(_Steps())
"""


# ---------------------------------------------------------------- set-up
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Tiny models (with dropout, and a copy without), an empty cache, the trace helper."""
    root = tmp_path_factory.mktemp("distributed")
    with_dropout = write_tiny_checkpoints(root / "models")
    without = []
    for directory, keys in zip(
        with_dropout,
        [("dropout", "attention_dropout", "activation_dropout"),
         ("hidden_dropout_prob", "attention_probs_dropout_prob")],
        strict=True,
    ):  # fmt: skip
        copy = root / "no-dropout" / Path(directory).name
        shutil.copytree(directory, copy)
        config = json.loads((copy / "config.json").read_text())
        config.update(dict.fromkeys(keys, 0.0))
        (copy / "config.json").write_text(json.dumps(config))
        without.append(str(copy))
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"root": root, "dropout": with_dropout, "no_dropout": tuple(without)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _args(models, out, *extra):
    encoder, decoder = models
    return [
        "--encoder", encoder, "--decoder", decoder, "--corpus", "tiny", "--batch-size", "6",
        "--lr", "1e-3", "--warmup-steps", "2", "--eval-clips", "8", "--eval-batch-size", "2",
        "--device", "cpu", "--quiet", "--output-dir", str(out), *extra,
    ]  # fmt: skip


PARITY = ["--steps", "14", "--eval-every", "7", "--save-every", "7"]
# The GPU profile's code path, on CPU: encoder trained too, bf16 autocast, length-grouped
# batches, 2 data-loader workers per process.
RESUME = ["--steps", "20", "--eval-every", "10", "--save-every", "4", "--no-save-model",
          "--end-to-end", "--group-by-length", "--precision", "bf16", "--workers", "2"]  # fmt: skip


def _env(lab, trace: Path | None = None, delay: float = 0.0) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(lab["root"] / "site"), str(ROOT)]),
        "S2T_EDU_CACHE": str(lab["root"] / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    if trace is not None:
        trace.mkdir(parents=True, exist_ok=True)
        env["S2T_EDU_TRACE_DIR"] = str(trace)
        env["S2T_EDU_TRACE_ROOTS"] = os.pathsep.join([str(lab["root"])])
        env["S2T_EDU_TRACE_STEP_DELAY"] = str(delay)
    return env


def _launch_command(args, processes=2, launcher_flags=("--multi_gpu",)):
    return [
        str(LAUNCHER), "launch", *launcher_flags, "--num_processes", str(processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "s2t_edu.finetune", *args,
    ]  # fmt: skip


def _launch(lab, args, trace=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        _launch_command(args, **kwargs),
        env=_env(lab, trace),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _traces(trace: Path) -> dict[int, list[tuple[str, str]]]:
    """Process rank -> its (kind, value) records (with its children's: the espeak helper)."""
    records = {}
    for path in trace.glob("trace-*-*.txt"):
        who = path.name.split("-")[1]
        if who != "launcher":
            lines = path.read_text().splitlines()
            records.setdefault(int(who), []).extend(tuple(line.split("\t", 1)) for line in lines)
    return records


def _state(out: Path) -> dict:
    return torch.load(finetune.latest_checkpoint(out) / "state.pt", weights_only=False)


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def two_processes(lab):
    """The traced 2-process run: it builds the corpus and the encoder cache."""
    out, trace = lab["root"] / "two", lab["root"] / "trace-two"
    result = _launch(lab, _args(lab["no_dropout"], out, *PARITY), trace)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, _traces(trace)


@pytest.fixture(scope="module")
def one_process(lab, two_processes):
    """The same command in one process (in this one, after the 2-process run filled the cache)."""
    out = lab["root"] / "one"
    before = os.environ.get("S2T_EDU_CACHE")
    os.environ["S2T_EDU_CACHE"] = str(lab["root"] / "cache")
    try:
        assert finetune.main(_args(lab["no_dropout"], out, *PARITY)) == 0
    finally:
        if before is None:
            del os.environ["S2T_EDU_CACHE"]
        else:
            os.environ["S2T_EDU_CACHE"] = before
    return out


# ---------------------------------------------------------------- the launched runs
def test_two_processes_train_the_model_one_process_trains(two_processes, one_process):
    """Same global batch (6 clips: 3 per process), same seed, no dropout (dropout masks are
    drawn per process, so with dropout the two runs would be different samples): the same
    losses, validation scores and final weights, to rounding (see TOLERANCE)."""
    two, one = _state(two_processes[0]), _state(one_process)
    assert len(two["rng"]) == 2 and len(one["rng"]) == 1  # every process's random state saved
    assert _max_difference(two["model"], one["model"]) < TOLERANCE
    steps = [r["step"] for r in two["history"]]
    assert steps == [r["step"] for r in one["history"]] == list(range(1, 15))
    for a, b in zip(two["history"], one["history"], strict=True):
        assert abs(a["loss"] - b["loss"]) < TOLERANCE, (a, b)
        assert ("wer" in a) == ("wer" in b)
        if "wer" in a:  # validation: 8 clips in 4 batches of 2, two batches per process
            assert abs(a["eval_loss"] - b["eval_loss"]) < TOLERANCE
            assert a["wer"] == b["wer"]
    final = [
        json.loads((out / "final_metrics.json").read_text())
        for out in (two_processes[0], one_process)
    ]
    assert abs(final[0]["test_loss"] - final[1]["test_loss"]) < TOLERANCE
    assert final[0]["test_examples"] == final[1]["test_examples"]


def test_only_the_first_process_writes(two_processes, lab):
    out, traces = two_processes
    # Every process makes sure the cache folder exists (mkdir -p, whoever comes first): that
    # creates no file and no cache entry.
    cache_folder = str(lab["root"] / "cache")
    written = {
        rank: {v for kind, v in records if kind == "write" and v != cache_folder}
        for rank, records in traces.items()
    }
    assert set(written) == {0, 1}
    assert written[1] == set(), sorted(written[1])[:5]  # process 1 writes nothing else
    mine = {Path(p).relative_to(out).parts[0] for p in written[0] if p.startswith(str(out) + "/")}
    assert {"checkpoints", "metrics.json", "metrics.csv", "curves.png", "final_metrics.json",
            "run_config.json", "model"} <= mine  # fmt: skip


def test_the_encoder_cache_is_built_once_and_read_by_every_process(two_processes, lab):
    _, traces = two_processes
    cache = lab["root"] / "cache"
    entries = [p.name for p in cache.glob("encoder-outputs-*")]
    assert len(entries) == 1
    entry = cache / entries[0]
    builders = {
        rank
        for rank, records in traces.items()
        for kind, path in records
        if kind == "write" and path.startswith(str(cache / f".{entry.name}.building-"))
    }
    assert builders == {0}
    building = {
        Path(path).parts[len(cache.parts)]
        for kind, path in traces[0]
        if kind == "write" and f".{entry.name}.building-" in path
    }
    assert len(building) == 1  # one build folder: built once
    for rank in (0, 1):
        read = {
            Path(p).name for kind, p in traces[rank] if kind == "read" and p.startswith(str(entry))
        }
        assert {"train.npy", "validation.npy", "test.npy"} <= read, (rank, read)


def test_each_clip_is_seen_once_per_epoch_across_processes(two_processes):
    """Process r trains on clips r, r+2, ... of each global batch; put back together, the
    batches are the planned ones, and every epoch is a permutation of the 40 clips: nothing is
    padded, repeated or dropped. (6 does not divide 40: a batch may span the end of one epoch
    and the start of the next, so it can hold a clip once from each.)"""
    _, traces = two_processes
    shares = {}
    for rank, records in traces.items():
        for kind, message in records:
            if kind == "log" and message.startswith("step "):
                _, step, _, process, _, clips = message.split(" ", 5)
                assert int(process) == rank
                shares[int(step), rank] = json.loads(clips)
    steps = sorted({step for step, _ in shares})
    assert steps == list(range(1, 15))
    order = []
    for step in steps:
        batch = [None] * 6
        batch[0::2], batch[1::2] = shares[step, 0], shares[step, 1]
        order += batch
    assert order == [i for b in batch_order(40, 6, seed=0, steps=14) for i in b]
    assert sorted(order[:40]) == sorted(order[40:80]) == list(range(40))
    assert len(set(order[80:])) == 4  # the third epoch has begun, no clip twice


def test_every_process_scores_its_share_of_each_evaluation(two_processes):
    """Validation at steps 7 and 14, then test and unseen-voice test: each time, 8 clips in
    batches of 2, process r taking batches r, r+2: the two shares make the whole set."""
    _, traces = two_processes
    shares = {
        rank: [
            json.loads(message.split(" scores clips ")[1].split(" of ")[0])
            for kind, message in records
            if kind == "log" and message.startswith("evaluate: ")
        ]
        for rank, records in traces.items()
    }
    assert len(shares[0]) == len(shares[1]) == 4
    for mine, theirs in zip(shares[0], shares[1], strict=True):
        assert mine == [0, 1, 4, 5] and theirs == [2, 3, 6, 7]


def _wait_for_exit(pids, seconds):
    deadline = time.monotonic() + seconds
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if _alive(pid)}
        time.sleep(0.1)
    return alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def _start_and_kill(lab, command, out, trace) -> Path:
    """Start ``command``, SIGKILL it once a checkpoint exists (steps slowed to 0.3 s); the file
    that collects its output (and that of processes outliving it)."""
    log = trace / "output.txt"
    trace.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as output:  # a file, not a pipe: nobody reads a pipe while it runs
        child = subprocess.Popen(
            command, env=_env(lab, trace, delay=0.3), cwd=ROOT, stdout=output, stderr=output
        )
    deadline = time.monotonic() + TIMEOUT
    while finetune.latest_checkpoint(out) is None and time.monotonic() < deadline:
        assert child.poll() is None, log.read_text()[-3000:]
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return log


def test_kill_9_of_the_launcher_then_the_same_command_resumes(lab):
    """Bitwise the uninterrupted 2-process run's weights, with dropout on: each process's own
    random state is saved (they differ: each drew masks for its own clips) and comes back. Run
    with the GPU profile's settings, so DDP also averages the encoder's gradients."""
    models = lab["dropout"]
    reference = _launch(lab, _args(models, lab["root"] / "uninterrupted", *RESUME))
    assert reference.returncode == 0, reference.stderr[-3000:]

    out, trace = lab["root"] / "killed", lab["root"] / "trace-killed"
    command = _launch_command(_args(models, out, *RESUME))
    log = _start_and_kill(lab, command, out, trace)
    workers = [int(p.name.split("-")[2].removesuffix(".txt")) for p in trace.glob("trace-[01]-*")]
    assert len(workers) == 2
    # torchrun's workers live in sessions of their own: a killed launcher does not take them
    # along. They notice it is gone and stop by themselves within a step.
    assert not _wait_for_exit(workers, 60), "workers outlived their launcher"
    assert log.read_text().count("the launcher of this run is gone") == 2
    stopped_at = finetune.latest_checkpoint(out).name
    assert not (out / "final_metrics.json").exists() and stopped_at != "step-000020"

    again = subprocess.run(
        command, env=_env(lab), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {stopped_at}" in again.stderr
    a, b = _state(lab["root"] / "uninterrupted"), _state(out)
    assert len(a["rng"]) == 2 and not torch.equal(a["rng"][0]["torch"], a["rng"][1]["torch"])
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), stopped_at
    assert [r["step"] for r in b["history"]] == list(range(1, 21))
    assert any(k.startswith("encoder.layers.") for k in b["model"])  # trained end to end


def test_a_one_process_run_resumes_with_two(lab, one_process):
    """The documented rule: another number of processes may resume, because the batches do
    not depend on it. Without dropout it ends where the uninterrupted 1-process run ends."""
    out, trace = lab["root"] / "one-then-two", lab["root"] / "trace-one-then-two"
    args = _args(lab["no_dropout"], out, *PARITY)
    single = [sys.executable, "-m", "s2t_edu.finetune", *args]
    _start_and_kill(lab, single, out, trace)
    assert finetune.latest_checkpoint(out).name == "step-000007"
    assert not (out / "final_metrics.json").exists()
    resumed = _launch(lab, args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "saved by 1 process(es), resumed by 2" in resumed.stderr
    assert _max_difference(_state(out)["model"], _state(one_process)["model"]) < TOLERANCE


def test_fewer_clips_per_batch_than_processes_is_refused(lab):
    # Both processes check before their first collective call, so both stop: no hang (and
    # _launch's timeout would fail the test if one waited for the other).
    result = _launch(lab, _args(lab["no_dropout"], lab["root"] / "small", "--steps", "2",
                                "--batch-size", "1"))  # fmt: skip
    assert result.returncode != 0
    assert "--batch-size 1 is smaller than the number of processes (2)" in result.stderr


def test_the_cpu_launcher_asked_for_two_processes_is_refused(lab):
    """Without MPI, `--cpu --num_processes 2` starts one process: said, not silently run."""
    result = _launch(lab, _args(lab["no_dropout"], lab["root"] / "cpu", "--steps", "2"),
                     launcher_flags=("--cpu",))  # fmt: skip
    assert result.returncode != 0
    assert "started one process, not N" in result.stderr and "--multi_gpu" in result.stderr


# ---------------------------------------------------------------- the rules, in one process
def test_share_of_batch_gives_every_clip_to_exactly_one_process():
    batches = [[5, 1, 9, 3, 7], [2, 8], [4, 0, 6]]
    for processes in (1, 2, 3):
        shares = [list(share_of_batch(batches, r, processes)) for r in range(processes)]
        for step, batch in enumerate(batches):
            mine = [shares[r][step] for r in range(processes)]
            assert sorted(i for share in mine for i in share) == sorted(batch)
            assert max(map(len, mine)) - min(map(len, mine)) <= 1


class _TwoProcesses:
    """What accelerate's reduce returns when two processes hold these label batches."""

    num_processes = 2

    def __init__(self, all_labels):
        self.all_labels = all_labels

    def reduce(self, tensor, reduction):
        assert reduction == "sum"
        return sum((labels != -100).sum() for labels in self.all_labels)


def test_the_loss_is_the_token_mean_of_the_whole_batch():
    """DDP averages the processes' gradients, so the processes' rescaled losses average to the
    token mean over both halves -- not the mean of the two halves' means."""
    labels = [torch.tensor([[1, 2, 3, 4, 5, 6]]), torch.tensor([[1, 2], [3, -100]])]
    per_token = [torch.tensor([[1.0, 2, 3, 4, 5, 6]]), torch.tensor([[10.0, 20], [30, 0]])]

    def mean_loss(model, batch):
        return per_token[batch["index"]][batch["labels"] != -100].mean()

    rescaled = token_mean_over_processes(mean_loss, _TwoProcesses(labels))
    losses = [rescaled(None, {"labels": labels[i], "index": i}) for i in (0, 1)]
    whole = torch.tensor([1.0, 2, 3, 4, 5, 6, 10, 20, 30]).mean()
    torch.testing.assert_close(sum(losses) / 2, whole)
    assert not torch.isclose((mean_loss(None, {"labels": labels[0], "index": 0})
                              + mean_loss(None, {"labels": labels[1], "index": 1})) / 2, whole)  # fmt: skip


def test_sharded_evaluation_gathers_the_scores_one_process_computes(lab):
    """Two shards scored separately and joined as gather_object would: the same numbers."""
    from s2t_edu.training.finetune import Settings, build_model_and_processors, datasets_for
    from s2t_edu.training.loop import freeze_encoder

    model, extractor, tokenizer = build_model_and_processors(*lab["no_dropout"], window=5)
    freeze_encoder(model)
    settings = Settings(output_dir="unused", corpus="tiny", end_to_end=False)
    splits, collator = datasets_for(settings, model, extractor, tokenizer)
    validation = splits["validation"]
    whole = evaluate(model, validation, collator, tokenizer, batch_size=3)
    shards = []

    def gather(scored):  # what process 1 would hold after gather_object: both shards, in order
        return shards[0] + scored

    evaluate(model, validation, collator, tokenizer, batch_size=3, shard=(0, 2),
             gather=lambda scored: shards.append(scored) or scored)  # fmt: skip
    joined = evaluate(model, validation, collator, tokenizer, batch_size=3, shard=(1, 2),
                      gather=gather)  # fmt: skip
    assert joined == whole


def test_batch_size_rules():
    check_batch_size(2, 2, 40)
    with pytest.raises(S2TEduError, match="smaller than the number of processes"):
        check_batch_size(3, 4)
    with pytest.raises(S2TEduError, match="some clips twice"):
        check_batch_size(41, 1, 40)


def test_one_run_per_output_dir(tmp_path):
    with output_dir_lock(tmp_path):
        with pytest.raises(S2TEduError, match=f"another run is writing.*pid {os.getpid()}"):
            with output_dir_lock(tmp_path, wait=0.3):
                pass
    with output_dir_lock(tmp_path, wait=0.3):  # released: the next run gets it at once
        pass


def test_an_accelerate_mixed_precision_other_than_precision_is_refused(monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(S2TEduError, match="mixed_precision fp16, this run for --precision fp32"):
        check_mixed_precision("fp32")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    check_mixed_precision("bf16")  # the same autocast: nothing to refuse
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    check_mixed_precision("bf16")
