"""An interactive length/mask calculator: seconds of audio and a conv stack -> encoder frames.

The numbers always come from :func:`~s2t_edu.frames.encoder_output_lengths` and
:func:`~s2t_edu.frames.encoder_attention_mask` on a real ``Wav2Vec2Config`` built from the sliders,
so what you read is what the model computes. :func:`length_figure` draws the same picture
without a kernel (for the book); :func:`length_calculator` adds the sliders (JupyterLab).
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as w
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from transformers import Wav2Vec2Config

from s2t_edu.data.audio import SAMPLING_RATE
from s2t_edu.errors import S2TEduError
from s2t_edu.frames import encoder_output_lengths, minimum_input_length
from s2t_edu.teaching.plots import plot_frame_mask, plot_length_pipeline

WAV2VEC2_KERNELS = (10, 3, 3, 3, 3, 2, 2)  # wav2vec2-base / large, HuBERT, data2vec-audio
WAV2VEC2_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    """``"10, 3, 3"`` -> ``(10, 3, 3)``; raise a readable error for anything else."""
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise S2TEduError(
            f"{name} must be whole numbers separated by commas", "e.g. 10,3,3,3,3,2,2", text
        ) from None
    if not values or min(values) < 1:
        raise S2TEduError(f"{name} must be positive whole numbers", "e.g. 10,3,3,3,3,2,2", text)
    return values


def calculator_config(
    kernels=WAV2VEC2_KERNELS,
    strides=WAV2VEC2_STRIDES,
    adapter_layers: int = 0,
    adapter_stride: int = 2,
    adapter_kernel_size: int = 3,
) -> Wav2Vec2Config:
    """A ``Wav2Vec2Config`` with this conv stack (and adapter): only its lengths matter here."""
    kernels, strides = tuple(kernels), tuple(strides)
    if len(kernels) != len(strides):
        raise S2TEduError(
            "need one stride per conv kernel",
            "give kernels and strides the same number of entries",
            (len(kernels), len(strides)),
        )
    return Wav2Vec2Config(
        conv_dim=(8,) * len(kernels),  # widths do not change lengths; keep the config small
        conv_kernel=kernels,
        conv_stride=strides,
        add_adapter=adapter_layers > 0,
        num_adapter_layers=max(adapter_layers, 1),
        adapter_stride=adapter_stride,
        adapter_kernel_size=adapter_kernel_size,
    )


@dataclass(frozen=True)
class LengthReport:
    """What the calculator prints for one setting."""

    samples: tuple[int, ...]  # per clip
    frames: tuple[int, ...]  # per clip, encoder_output_lengths
    padded_frames: int  # frames of the padded batch (the longest clip)
    receptive_field_ms: float  # audio one frame sees
    hop_ms: float  # time between two frames

    def __str__(self) -> str:
        per_clip = ", ".join(
            f"{s:,} samples -> {f} frames" for s, f in zip(self.samples, self.frames, strict=True)
        )
        return (
            f"{per_clip}; padded batch: {self.padded_frames} frames. "
            f"One frame sees {self.receptive_field_ms:g} ms; frames are {self.hop_ms:g} ms apart."
        )


def length_report(config, seconds: tuple[float, ...]) -> LengthReport:
    """Frames per clip and per padded batch, receptive field and hop, for clips of ``seconds``."""
    samples = tuple(round(s * SAMPLING_RATE) for s in seconds)
    frames = tuple(int(n) for n in encoder_output_lengths(config, samples))
    hop = 1
    for stride in config.conv_stride:
        hop *= stride
    if config.add_adapter:
        hop *= config.adapter_stride**config.num_adapter_layers
    return LengthReport(
        samples=samples,
        frames=frames,
        padded_frames=int(encoder_output_lengths(config, max(samples))),
        receptive_field_ms=1000 * minimum_input_length(config) / SAMPLING_RATE,
        hop_ms=1000 * hop / SAMPLING_RATE,
    )


def batch_attention_mask(samples: tuple[int, ...]) -> torch.LongTensor:
    """The sample-level mask a feature extractor returns for clips padded on the right."""
    mask = torch.zeros(len(samples), max(samples), dtype=torch.long)
    for row, n in enumerate(samples):
        mask[row, :n] = 1
    return mask


def length_figure(config, seconds: tuple[float, ...]) -> tuple[Figure, Figure]:
    """The calculator's two pictures: lengths through the conv stack, and the padded batch's masks."""
    report = length_report(config, seconds)
    pipeline = plot_length_pipeline(config, report.samples[0])
    mask = plot_frame_mask(
        config,
        batch_attention_mask(report.samples),
        labels=[f"{s:g} s" for s in seconds],
    )
    return pipeline, mask


def length_calculator(seconds=(2.0, 1.3), kernels=WAV2VEC2_KERNELS, strides=WAV2VEC2_STRIDES):
    """Sliders for two clip lengths, the conv stack and an adapter; redraws the frames and masks.

    Returns an ``ipywidgets.VBox`` (display it as a cell's last expression in JupyterLab).
    """
    style = {"description_width": "150px"}
    layout = w.Layout(width="480px")
    first = w.FloatSlider(
        value=seconds[0],
        min=0.01,
        max=10,
        step=0.01,
        description="clip A (s)",
        style=style,
        layout=layout,
    )
    second = w.FloatSlider(
        value=seconds[1],
        min=0.01,
        max=10,
        step=0.01,
        description="clip B (s)",
        style=style,
        layout=layout,
    )
    kernel_box = w.Text(
        ",".join(map(str, kernels)), description="conv kernels", style=style, layout=layout
    )
    stride_box = w.Text(
        ",".join(map(str, strides)), description="conv strides", style=style, layout=layout
    )
    adapter = w.IntSlider(
        value=0, min=0, max=4, description="adapter layers", style=style, layout=layout
    )
    adapter_stride = w.IntSlider(
        value=2, min=1, max=4, description="adapter stride", style=style, layout=layout
    )
    out = w.Output()

    def redraw(*_):
        # append_* instead of `with out:` so the widget also updates outside a kernel (tests).
        out.outputs = ()
        try:
            config = calculator_config(
                parse_ints(kernel_box.value, "conv kernels"),
                parse_ints(stride_box.value, "conv strides"),
                adapter.value,
                adapter_stride.value,
            )
            clips = (first.value, second.value)
            out.append_stdout(f"{length_report(config, clips)}\n")
            figures = length_figure(config, clips)
        except S2TEduError as error:
            out.append_stdout(f"{error}\n")
            return
        for figure in figures:
            out.append_display_data(figure)
            plt.close(figure)

    for control in (first, second, kernel_box, stride_box, adapter, adapter_stride):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([first, second, kernel_box, stride_box, adapter, adapter_stride, out])
