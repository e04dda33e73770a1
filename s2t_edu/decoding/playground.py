"""See decoding settings at work: the sampling distribution they leave, and the text they give.

* :func:`filtered_distributions` / :func:`plot_filtered_distribution`: one step's next-token
  distribution after each warper in turn (temperature, then top-k, then top-p), computed with
  the very functions ``sample`` uses (processors.py).
* :class:`Settings` + :func:`decode_with`: one set of generate-style settings -> the decoded
  text, by calling ``beam_search`` (``num_beams=1`` is greedy) or ``sample`` -- nothing else.
* :func:`decoding_playground`: sliders for those settings (ipywidgets, needs a live kernel);
  :func:`settings_table` shows the same outputs for a few fixed settings, for the book.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from s2t_edu.decoding.beam import beam_search
from s2t_edu.decoding.processors import temperature, top_k, top_p
from s2t_edu.decoding.sampling import sample
from s2t_edu.decoding.tree import token_label
from s2t_edu.teaching.plots import Table

STAGES = ("model", "temperature", "top-k", "top-p")


def filtered_distributions(
    scores: torch.Tensor, temperature_value: float = 1.0, k: int = 0, p: float = 1.0
) -> dict[str, torch.Tensor]:
    """``{stage: probabilities}`` for one row of scores, after each warper in generate's order.

    A stage that is switched off (T = 1, k = 0, p = 1) leaves the distribution as it was.
    The last stage is exactly what ``sample`` draws from with these settings.
    """
    scores = scores.reshape(1, -1).float()
    stages = {"model": scores}
    stages["temperature"] = (
        temperature(scores, temperature_value) if temperature_value != 1.0 else scores
    )
    stages["top-k"] = top_k(stages["temperature"], k) if k else stages["temperature"]
    stages["top-p"] = top_p(stages["top-k"], p) if p < 1.0 else stages["top-k"]
    return {name: s.softmax(dim=-1)[0] for name, s in stages.items()}


def plot_filtered_distribution(
    scores: torch.Tensor,
    temperature_value: float = 1.0,
    k: int = 0,
    p: float = 1.0,
    tokenizer=None,
    shown: int = 12,
) -> Figure:
    """Four bar plots side by side: the model's top tokens, then after temperature, top-k, top-p.

    Bars keep the model's order (most likely first); a removed token's bar is empty and marked x.
    """
    probs = filtered_distributions(scores, temperature_value, k, p)
    order = probs["model"].argsort(descending=True)[:shown]
    labels = [token_label(int(t), tokenizer) for t in order]
    titles = {
        "model": "the model: softmax(logits)",
        "temperature": f"temperature T={temperature_value:g}",
        "top-k": f"then top-k, k={k}" if k else "then top-k: off",
        "top-p": f"then top-p, p={p:g}" if p < 1.0 else "then top-p: off",
    }
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    for ax, stage in zip(axes, STAGES, strict=True):
        values = probs[stage][order]
        removed = values == 0
        colours = ["#BBBBBB" if r else "#4C72B0" for r in removed.tolist()]
        ax.bar(range(len(order)), values.detach().numpy(), color=colours)
        for x in torch.nonzero(removed).flatten().tolist():
            ax.scatter(x, 0.01, marker="x", color="#C44E52", s=18)
        kept = int((probs[stage] > 0).sum())
        ax.set_title(f"{titles[stage]}\n{kept:,} tokens possible", fontsize=9)
        ax.set_xticks(range(len(order)), labels, rotation=70, fontsize=7)
    axes[0].set_ylabel("probability")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Settings:
    """generate-style decoding settings; ``do_sample`` picks sample(), otherwise beam_search()."""

    num_beams: int = 1
    length_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 30

    def describe(self) -> str:
        if self.do_sample:
            return (
                f"sample: T={self.temperature:g}, top_k={self.top_k}, top_p={self.top_p:g}, "
                f"seed={self.seed}"
            )
        if self.num_beams == 1:
            return "greedy (num_beams=1)"
        return f"beam search: num_beams={self.num_beams}, length_penalty={self.length_penalty:g}"


def decode_with(model, inputs, settings: Settings, attention_mask=None) -> torch.LongTensor:
    """The token ids our decoders return for these settings (what generate returns for them)."""
    if settings.do_sample:
        torch.manual_seed(settings.seed)
        return sample(
            model,
            inputs,
            attention_mask,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
        )
    return beam_search(
        model,
        inputs,
        settings.num_beams,
        attention_mask,
        max_new_tokens=settings.max_new_tokens,
        length_penalty=settings.length_penalty,
    ).sequences


def decoded_text(tokenizer, sequences: torch.Tensor) -> list[str]:
    """Readable text per row, special tokens removed."""
    return [t.strip() for t in tokenizer.batch_decode(sequences, skip_special_tokens=True)]


def settings_table(model, inputs, tokenizer, settings: list[Settings], caption: str = "") -> Table:
    """One row per settings: what decodes, and how many new tokens it took (for the book)."""
    rows = []
    for s in settings:
        ids = decode_with(model, inputs, s)
        text = decoded_text(tokenizer, ids[:1])[0] or "(nothing: only special tokens, then EOS)"
        rows.append([s.describe(), text, ids.shape[1] - 1])
    return Table(["settings", "output", "new tokens"], rows, caption=caption)


def playground_text(model, inputs, tokenizer, settings: Settings) -> str:
    """What the playground prints for these settings: the settings, the text, its length."""
    ids = decode_with(model, inputs, settings)
    text = decoded_text(tokenizer, ids[:1])[0]
    return f"{settings.describe()}\n-> {text!r} ({ids.shape[1] - 1} new tokens)"


def decoding_playground(model, inputs, tokenizer, settings: Settings | None = None):
    """Sliders for :class:`Settings`; each change re-decodes ``inputs`` (one clip) and prints it.

    Needs a running kernel (JupyterLab); a static page shows nothing here.
    """
    start = settings or Settings()
    controls = {
        "num_beams": widgets.IntSlider(start.num_beams, 1, 8, description="num_beams"),
        "length_penalty": widgets.FloatSlider(
            start.length_penalty, min=-2.0, max=3.0, step=0.5, description="length_penalty"
        ),
        "do_sample": widgets.Checkbox(start.do_sample, description="do_sample"),
        "temperature": widgets.FloatLogSlider(
            start.temperature, base=10, min=-1, max=0.7, step=0.05, description="temperature"
        ),
        "top_k": widgets.IntSlider(start.top_k, 0, 100, description="top_k (0=off)"),
        "top_p": widgets.FloatSlider(
            start.top_p, min=0.05, max=1.0, step=0.05, description="top_p"
        ),
        "seed": widgets.IntSlider(start.seed, 0, 20, description="seed"),
    }
    style = {"description_width": "110px"}
    for control in controls.values():
        control.style = style
        control.continuous_update = False
    output = widgets.Output()

    def update(_=None):
        chosen = replace(start, **{name: c.value for name, c in controls.items()})
        for name in ("num_beams", "length_penalty"):
            controls[name].disabled = chosen.do_sample
        for name in ("temperature", "top_k", "top_p", "seed"):
            controls[name].disabled = not chosen.do_sample
        output.outputs = ()  # replace, not append; works with or without a live kernel
        output.append_stdout(playground_text(model, inputs, tokenizer, chosen) + "\n")

    for control in controls.values():
        control.observe(update, names="value")
    update()
    return widgets.VBox([*controls.values(), output])
