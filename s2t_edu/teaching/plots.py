"""Figures and tables the notebooks draw: each function returns a matplotlib ``Figure``.

One picture per idea of the course: where the parameters live, what the speech encoders read
(waveform, wav2vec2's input_values, Whisper's log-mel spectrogram), how audio shrinks into
encoder frames, how a padding mask follows, how labels shift into decoder inputs, what each
token costs in the loss, where cross-attention looks while the decoder predicts each token,
how a training loss falls, how the warm-start arms learn, how a hypothesis aligns with its
reference, and error rates side by side. Tables are :class:`Table` objects: HTML in Jupyter and the book, Markdown-ish text
elsewhere (no pandas needed).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from s2t_edu.frames import conv_layers, encoder_attention_mask, encoder_output_lengths
from s2t_edu.labels import IGNORE_INDEX
from s2t_edu.metrics import DELETION, EQUAL, INSERTION, SUBSTITUTION, Alignment

# One colour per role, used by every figure so a reader learns them once.
ENCODER_COLOUR, DECODER_COLOUR, NEW_COLOUR, GREY = "#4C72B0", "#55A868", "#DD8452", "#BBBBBB"
EDIT_COLOURS = {
    EQUAL: "#E8F0E8",
    SUBSTITUTION: "#F4C27A",
    DELETION: "#E88080",
    INSERTION: "#8FB8E8",
}


class Table:
    """A small table that renders as HTML in notebooks and as aligned text in a terminal."""

    def __init__(self, header: Sequence[str], rows: Sequence[Sequence], caption: str = ""):
        self.header = [str(h) for h in header]
        self.rows = [[_cell(value) for value in row] for row in rows]
        self.caption = caption

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        widths = [
            max(len(r[i]) for r in [self.header, *self.rows]) for i in range(len(self.header))
        ]
        lines = [self.caption] if self.caption else []
        for row in [self.header, *self.rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def config_diff_table(changes: dict[str, tuple], caption: str = "") -> Table:
    """``s2t_edu.config_changes(before, after)`` as a table: setting, before, after."""
    return Table(
        ["setting", "before", "after"], [[k, *v] for k, v in changes.items()], caption=caption
    )


# ---------------------------------------------------------------------------------------------
# Parameters per part
# ---------------------------------------------------------------------------------------------

_CROSS_ATTENTION_MARKERS = ("crossattention", "encoder_attn", "cross_attn")


def part_of(parameter_name: str) -> str:
    """Which part of a ``SpeechEncoderDecoderModel`` a parameter belongs to (by its name)."""
    if parameter_name.startswith("enc_to_dec_proj"):
        return "projection (enc_to_dec_proj)"
    if parameter_name.startswith("encoder."):
        # wav2vec2 family: feature_extractor.conv_layers; Whisper's encoder: conv1 / conv2
        convs = ("feature_extractor", "conv1.", "conv2.")
        if any(marker in parameter_name for marker in convs):
            return "encoder: conv feature extractor"
        return "encoder: transformer"
    if any(marker in parameter_name for marker in _CROSS_ATTENTION_MARKERS):
        return "decoder: cross-attention"
    if "embed" in parameter_name:
        return "decoder: embeddings"
    return "decoder: self-attention + FFN + head"


PARTS = (
    "encoder: conv feature extractor",
    "encoder: transformer",
    "projection (enc_to_dec_proj)",
    "decoder: cross-attention",
    "decoder: embeddings",
    "decoder: self-attention + FFN + head",
)


def parameters_per_part(model, new: set[str] | None = None) -> dict[str, tuple[int, int]]:
    """``{part: (parameters, of which newly initialised)}``; each shared (tied) tensor counted once.

    ``new`` names the parameters that were *not* loaded from a checkpoint (warm-starting).
    """
    new = new or set()
    counts = {part: [0, 0] for part in PARTS}
    for name, param in model.named_parameters():  # remove_duplicate=True: tied weights once
        part = part_of(name)
        counts[part][0] += param.numel()
        counts[part][1] += param.numel() if name in new else 0
    return {part: (total, fresh) for part, (total, fresh) in counts.items()}


def plot_parameters_per_part(model, new: set[str] | None = None, title: str = "") -> Figure:
    """Horizontal bars, millions of parameters per part; newly initialised ones in orange."""
    counts = parameters_per_part(model, new)
    parts = list(counts)[::-1]  # first part on top
    totals = [counts[p][0] / 1e6 for p in parts]
    fresh = [counts[p][1] / 1e6 for p in parts]
    colours = [ENCODER_COLOUR if p.startswith("encoder") else DECODER_COLOUR for p in parts]
    colours = [
        NEW_COLOUR if p.startswith("projection") else c for p, c in zip(parts, colours, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    if new is None:
        ax.barh(parts, totals, color=colours)
    else:
        loaded = [t - f for t, f in zip(totals, fresh, strict=True)]
        ax.barh(parts, loaded, color=GREY, label="loaded from a checkpoint")
        ax.barh(parts, fresh, left=loaded, color=NEW_COLOUR, label="newly initialised (random)")
        ax.legend(loc="upper right", fontsize=8)
    for y, total in enumerate(totals):
        ax.annotate(
            f"{total:.2f}M" if total else "none",
            (total, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlabel("parameters (millions)")
    ax.set_xlim(0, max(totals) * 1.2 or 1)
    total = sum(c[0] for c in counts.values()) / 1e6
    ax.set_title(title or f"{total:.2f}M parameters in all")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# From samples to frames
# ---------------------------------------------------------------------------------------------


def plot_speech_inputs(
    audio,
    sampling_rate: int,
    input_values,
    input_features,
    mel_hop_seconds: float = 0.01,
    seconds: float | None = None,
) -> Figure:
    """Three panels on one time axis in seconds: what each kind of speech encoder reads.

    ``audio``: the clip's samples; ``input_values``: wav2vec2's feature extractor output for it
    (one number per sample); ``input_features``: Whisper's log-mel spectrogram (mel bins, frames),
    one frame every ``mel_hop_seconds``. ``seconds`` crops the time axis (Whisper pads to 30 s).
    """
    audio = torch.as_tensor(audio, dtype=torch.float32).reshape(-1)
    input_values = torch.as_tensor(input_values, dtype=torch.float32).reshape(-1)
    mel = torch.as_tensor(input_features, dtype=torch.float32).reshape(
        input_features.shape[-2:]  # drop a batch axis of 1
    )
    end = seconds if seconds is not None else len(audio) / sampling_rate
    fig, (wave, values, spectrogram) = plt.subplots(3, 1, figsize=(9, 6.2), sharex=True)
    for ax, samples, colour, title in (
        (wave, audio, GREY, f"the audio: {len(audio):,} samples at {sampling_rate:,} Hz"),
        (
            values,
            input_values,
            ENCODER_COLOUR,
            "wav2vec2's input_values: the same samples, normalised "
            # + 0.0 turns a rounded -0.0 into 0.0
            f"(mean {round(input_values.mean().item(), 2) + 0.0:.2f}, "
            f"std {input_values.std().item():.2f})",
        ),
    ):
        times = torch.arange(len(samples)) / sampling_rate
        ax.plot(times.numpy(), samples.numpy(), color=colour, lw=0.4)
        ax.set_title(title, fontsize=9)
    wave.set_ylabel("amplitude")
    values.set_ylabel("input_values")
    frames = min(mel.shape[1], max(1, round(end / mel_hop_seconds)))
    spectrogram.imshow(
        mel[:, :frames].numpy(),
        aspect="auto",
        origin="lower",
        cmap="magma",
        interpolation="nearest",
        extent=(0.0, frames * mel_hop_seconds, -0.5, mel.shape[0] - 0.5),
    )
    spectrogram.set_title(
        f"Whisper's input_features: log-mel spectrogram, {mel.shape[0]} mel bins x "
        f"{mel.shape[1]:,} frames of {mel_hop_seconds * 1000:g} ms (the first {frames:,} drawn)",
        fontsize=9,
    )
    spectrogram.set(ylabel="mel bin (low to high pitch)", xlabel="time (s)", xlim=(0.0, end))
    fig.tight_layout()
    return fig


def length_stages(encoder_config, input_length: int) -> list[tuple[str, int]]:
    """``[(stage, length after it), ...]``: the input, then each length-changing layer in order."""
    stages = [("input", int(input_length))]
    n_convs = len(getattr(encoder_config, "conv_kernel", ())) or 2  # Whisper: conv1, conv2
    for index, (kernel, stride, padding) in enumerate(conv_layers(encoder_config)):
        is_adapter = index >= n_convs
        name = f"adapter {index - n_convs + 1}" if is_adapter else f"conv {index + 1}"
        length = int(stages[-1][1])
        length = max((length + 2 * padding - kernel) // stride + 1, 0)
        stages.append((f"{name}\nk={kernel} s={stride}", length))
    return stages


def plot_length_pipeline(
    encoder_config, input_length: int, unit: str = "samples", ax=None
) -> Figure:
    """Bars (log scale): how many vectors remain after each convolution of the encoder."""
    stages = length_stages(encoder_config, input_length)
    final = int(encoder_output_lengths(encoder_config, input_length))
    assert stages[-1][1] == final  # the drawing follows the library's formula
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 3.2))
    names = [name for name, _ in stages]
    lengths = [max(length, 0) for _, length in stages]
    colours = [GREY] + [
        NEW_COLOUR if n.startswith("adapter") else ENCODER_COLOUR for n in names[1:]
    ]
    bars = ax.bar(range(len(stages)), [max(n, 0.8) for n in lengths], color=colours)
    ax.set_yscale("log")
    for bar, length in zip(bars, lengths, strict=True):
        ax.annotate(
            f"{length:,}",
            (bar.get_x() + bar.get_width() / 2, max(length, 0.8)),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(range(len(stages)), names, fontsize=7)
    ax.set_ylabel(f"length ({unit}, log scale)")
    ax.set_title(f"{input_length:,} {unit} -> {final} encoder frames")
    fig.tight_layout()
    return fig


def plot_frame_mask(encoder_config, attention_mask, labels: Sequence[str] | None = None) -> Figure:
    """Two panels: the sample-level padding mask of a batch and the frame-level mask it becomes."""
    attention_mask = torch.as_tensor(attention_mask)
    frame_mask = encoder_attention_mask(encoder_config, attention_mask)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 3.4))
    rows = attention_mask.shape[0]
    labels = list(labels) if labels is not None else [f"clip {i}" for i in range(rows)]
    for ax, mask, what in (
        (top, attention_mask, "samples"),
        (bottom, frame_mask, "encoder frames"),
    ):
        ax.imshow(
            mask.float().numpy(),
            aspect="auto",
            cmap="Greens",
            vmin=0,
            vmax=1.4,
            interpolation="nearest",
        )
        ax.set_yticks(range(rows), labels, fontsize=8)
        kept = mask.long().sum(-1).tolist()
        ax.set_title(
            f"{what}: {mask.shape[1]:,} per row; real (green) = {', '.join(f'{k:,}' for k in kept)}",
            fontsize=9,
        )
        if mask.shape[1] <= 60:  # few enough frames to draw each one
            ax.set_xticks([x - 0.5 for x in range(mask.shape[1] + 1)], minor=True)
            ax.grid(which="minor", axis="x", color="white", linewidth=0.8)
            ax.tick_params(which="minor", length=0)
    bottom.set_xlabel("position (white = padding, 0 in the mask)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Labels, decoder inputs and the loss
# ---------------------------------------------------------------------------------------------


def plot_label_shift(labels, decoder_input_ids, tokens=None) -> Figure:
    """One row of ``labels`` above its ``decoder_input_ids`` as a coloured grid, shift arrows included.

    ``tokens``: an id -> text function (e.g. ``tokenizer.convert_ids_to_tokens``) for readable cells.
    """
    labels = torch.as_tensor(labels).reshape(-1).tolist()
    inputs = torch.as_tensor(decoder_input_ids).reshape(-1).tolist()
    n = len(labels)

    def text(token_id):
        if token_id == IGNORE_INDEX or tokens is None:
            return str(token_id)
        return f"{tokens(token_id)}\n{token_id}"

    fig, ax = plt.subplots(figsize=(max(6, 1.05 * n + 2), 2.2))
    for row, (name, values) in enumerate((("labels", labels), ("decoder_input_ids", inputs))):
        y = 1 - row
        for x, value in enumerate(values):
            colour = (
                GREY if value == IGNORE_INDEX else (DECODER_COLOUR if row == 0 else ENCODER_COLOUR)
            )
            if row == 1 and x == 0:
                colour = NEW_COLOUR  # the start token: the only input that is not a label
            ax.add_patch(Rectangle((x, y), 0.95, 0.8, color=colour, alpha=0.55))
            ax.text(x + 0.475, y + 0.4, text(value), ha="center", va="center", fontsize=7)
        ax.text(-0.15, y + 0.4, name, ha="right", va="center", fontsize=9, family="monospace")
    for x in range(n - 1):  # label t becomes decoder input t+1
        ax.annotate(
            "", xy=(x + 1.4, 0.8), xytext=(x + 0.55, 1.0), arrowprops=dict(arrowstyle="->", lw=0.7)
        )
    ax.set_xlim(-2.6, n + 0.1)
    ax.set_ylim(-0.05, 1.85)
    ax.axis("off")
    ax.set_title(
        "teacher forcing: decoder input at t = label at t-1 (start token first; -100 -> pad)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def token_losses(logits: torch.Tensor, labels) -> torch.Tensor:
    """``-log p(label)`` at every position of one row (NaN where the label is -100)."""
    labels = torch.as_tensor(labels).reshape(-1)
    log_probs = torch.log_softmax(logits.reshape(len(labels), -1).float(), dim=-1)
    counted = labels != IGNORE_INDEX
    picked = log_probs.gather(-1, labels.clamp(min=0)[:, None]).squeeze(-1)
    return torch.where(counted, -picked, torch.full_like(picked, float("nan")))


def plot_token_losses(losses, names: Sequence[str], mean: float | None = None) -> Figure:
    """Bars: the cost of each label token; ignored positions (-100) are marked, not drawn."""
    losses = torch.as_tensor(losses, dtype=torch.float32).reshape(-1)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(losses) + 2), 2.8))
    counted = ~torch.isnan(losses)
    xs = range(len(losses))
    ax.bar(
        xs,
        torch.nan_to_num(losses).tolist(),
        color=[DECODER_COLOUR if c else GREY for c in counted.tolist()],
    )
    for x, c in zip(xs, counted.tolist(), strict=True):
        if not c:
            ax.text(x, 0.02, "ignored\n(-100)", ha="center", va="bottom", fontsize=7, color="grey")
    if mean is not None:
        ax.axhline(
            mean, color="black", lw=1, ls="--", label=f"mean over counted tokens = {mean:.4f}"
        )
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(list(xs), list(names), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("-log p(label)  (nats)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def plot_alignment(
    alignments: Alignment | Sequence[Alignment], titles: Sequence[str] | None = None
) -> Figure:
    """Reference over hypothesis, word by word, coloured by edit: substitution, deletion, insertion."""
    alignments = [alignments] if isinstance(alignments, Alignment) else list(alignments)
    widest = max(len(a.ops) for a in alignments)
    fig, axes = plt.subplots(
        len(alignments),
        1,
        figsize=(max(6, 1.1 * widest + 1), 1.25 * len(alignments) + 0.5),
        squeeze=False,
    )
    for index, (ax, alignment) in enumerate(zip(axes[:, 0], alignments, strict=True)):
        for x, op in enumerate(alignment.ops):
            ax.add_patch(Rectangle((x, 0), 0.95, 1.9, color=EDIT_COLOURS[op.kind]))
            ax.text(x + 0.475, 1.4, op.ref or "—", ha="center", va="center", fontsize=8)
            ax.text(
                x + 0.475, 0.5, op.hyp or "—", ha="center", va="center", fontsize=8, style="italic"
            )
        ax.text(-0.1, 1.4, "REF", ha="right", va="center", fontsize=8, weight="bold")
        ax.text(-0.1, 0.5, "HYP", ha="right", va="center", fontsize=8, weight="bold")
        ax.set_xlim(-0.8, widest)
        ax.set_ylim(0, 1.95)
        ax.axis("off")
        n = alignment.hits + alignment.substitutions + alignment.deletions
        summary = (
            f"S={alignment.substitutions} D={alignment.deletions} I={alignment.insertions} N={n}"
        )
        ax.set_title(
            f"{titles[index]}   ({summary})" if titles else summary, fontsize=9, loc="left"
        )
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in EDIT_COLOURS.values()]
    fig.legend(handles, list(EDIT_COLOURS), loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_error_rates(results: dict[str, dict[str, float]], ylabel: str = "error rate") -> Figure:
    """Grouped bars: ``{group: {series: rate}}``, e.g. ``{"test": {"WER greedy": 0.1, ...}}``."""
    groups = list(results)
    series = list(dict.fromkeys(s for g in groups for s in results[g]))
    width = 0.8 / len(series)
    palette = [ENCODER_COLOUR, DECODER_COLOUR, NEW_COLOUR, "#8172B3", "#C44E52", "#937860"]
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) * max(1, len(series) / 2) + 2, 3.2))
    for k, name in enumerate(series):
        xs = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        values = [results[group].get(name, float("nan")) for group in groups]
        bars = ax.bar(xs, values, width, label=name, color=palette[k % len(palette)])
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                f"{value:.1%}",
                (bar.get_x() + bar.get_width() / 2, value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------------------------


def plot_cross_attention(
    maps: dict[str, tuple], frame_seconds: float, seconds: float | None = None, title: str = ""
) -> Figure:
    """Heat maps of cross-attention, one per ``{title: (weights, predicted_tokens)}``.

    ``weights`` is (decoder steps, audio frames), as ``training.loop.cross_attention_map``
    returns it. Row ``i`` is named by the token the decoder *predicts* at step ``i`` (its input
    there is the token before), so a word's row lights up where that word is spoken. Columns
    are audio time: frame ``j`` starts at ``j * frame_seconds``; ``seconds`` crops the x axis.
    """
    fig, axes = plt.subplots(1, len(maps), figsize=(4.4 * len(maps), 3.4), squeeze=False)
    for ax, (name, (weights, tokens)) in zip(axes[0], maps.items(), strict=True):
        frames = weights.shape[1]
        if seconds is not None:
            frames = min(frames, max(1, round(seconds / frame_seconds)))
        end = frames * frame_seconds
        # extent: the x axis in seconds, one row per predicted token, the first at the top
        ax.imshow(
            weights[:, :frames],
            aspect="auto",
            cmap="viridis",
            interpolation="nearest",
            extent=(0.0, end, len(tokens) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(tokens)), list(tokens), fontsize=7)
        ax.set(title=name, xlabel="audio time (s)")
    axes[0][0].set_ylabel("token being predicted")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_training_loss(history: Sequence[dict], title: str = "") -> Figure:
    """The training loss of every step, as ``training.loop.train`` records it."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot([r["step"] for r in history], [r["loss"] for r in history], color=DECODER_COLOUR)
    ax.set(xlabel="step", ylabel="training loss (nats/token)", title=title, ylim=(0, None))
    fig.tight_layout()
    return fig


def plot_warm_start(result: dict) -> Figure:
    """The warm-start benchmark's result file (``benchmarks/results/warm_start_<profile>.json``):
    training loss and validation WER against step, one colour per arm. Each arm's chosen
    learning rate is drawn solid, the other rates it was tried at dashed."""
    palette = [DECODER_COLOUR, ENCODER_COLOUR, NEW_COLOUR, "#8172B3", "#C44E52", "#937860"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for colour, (arm, record) in zip(palette, result["arms"].items(), strict=False):
        for run, history in result["curves"].items():
            name, _, lr = run.partition("@lr")
            if name != arm:
                continue
            chosen = float(lr) == record["lr"]
            style = {"color": colour, "ls": "-" if chosen else "--", "alpha": 1 if chosen else 0.5}
            label = f"{arm}, lr {float(lr):g}" + ("" if chosen else " (not chosen)")
            left.plot([r["step"] for r in history], [r["loss"] for r in history], lw=1, **style)
            evals = [r for r in history if "wer" in r]
            right.plot(
                [r["step"] for r in evals],
                [r["wer"] for r in evals],
                marker="o",
                label=label,
                **style,
            )
    left.set(xlabel="step", ylabel="training loss (nats/token)", yscale="log")
    right.set(xlabel="step", ylabel="validation WER", ylim=(0, None))
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"{result['command']}  ({result['profile']['steps']} steps per run)")
    fig.tight_layout()
    return fig
