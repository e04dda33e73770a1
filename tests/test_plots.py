"""The figures draw what the library computes: bars, labels and numbers are checked, not pixels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from tiny_models import decoder_configs, encoder_configs  # noqa: E402

from s2t_edu import build_model, encoder_output_lengths, shift_tokens_right  # noqa: E402
from s2t_edu.metrics import align, words  # noqa: E402
from s2t_edu.teaching.plots import (  # noqa: E402
    PARTS,
    Table,
    config_diff_table,
    length_stages,
    parameters_per_part,
    plot_alignment,
    plot_cross_attention,
    plot_error_rates,
    plot_frame_mask,
    plot_label_shift,
    plot_length_pipeline,
    plot_parameters_per_part,
    plot_speech_inputs,
    plot_token_losses,
    plot_training_loss,
    plot_warm_start,
    token_losses,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def model():
    return build_model(encoder_configs()["wav2vec2-group"], decoder_configs()["bert"])


def test_parameters_per_part_add_up_to_the_model(model):
    counts = parameters_per_part(model)
    assert set(counts) == set(PARTS)
    assert sum(total for total, _ in counts.values()) == sum(p.numel() for p in model.parameters())
    # encoder width 32 != decoder width 40: the projection is Linear(32, 40)
    assert counts["projection (enc_to_dec_proj)"] == (32 * 40 + 40, 0)
    cross = sum(p.numel() for n, p in model.named_parameters() if "crossattention" in n)
    assert counts["decoder: cross-attention"][0] == cross > 0


def test_parameters_per_part_counts_new_weights(model):
    new = {n for n, _ in model.named_parameters() if "crossattention" in n or "enc_to_dec" in n}
    counts = parameters_per_part(model, new)
    assert counts["decoder: cross-attention"][1] == counts["decoder: cross-attention"][0]
    assert counts["encoder: transformer"][1] == 0


@pytest.mark.parametrize("new", [None, set()])
def test_parameter_figure_has_one_bar_per_part(model, new):
    fig = plot_parameters_per_part(model, new)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(PARTS)
    widths = sorted(round(b.get_width() * 1e6) for b in ax.patches)[-len(PARTS) :]
    assert max(widths) == max(total for total, _ in parameters_per_part(model).values())


@pytest.mark.parametrize("name", ["wav2vec2-group", "wav2vec2-adapter", "whisper-encoder"])
def test_length_stages_end_at_the_library_formula(name):
    config = encoder_configs()[name]
    stages = length_stages(config, 40)
    assert stages[0] == ("input", 40)
    assert stages[-1][1] == int(encoder_output_lengths(config, 40))


def test_length_pipeline_bars_follow_each_conv():
    config = encoder_configs()["wav2vec2-adapter"]
    fig = plot_length_pipeline(config, 16_000)
    bars = fig.axes[0].patches
    stages = length_stages(config, 16_000)
    assert len(bars) == len(stages) == 1 + 3 + 2  # input, three convs, two adapter layers
    assert [round(b.get_height()) for b in bars] == [n for _, n in stages]
    frames = int(encoder_output_lengths(config, 16_000))
    assert f"16,000 samples -> {frames} encoder frames" == fig.axes[0].get_title()


def test_frame_mask_figure_shows_both_masks():
    config = encoder_configs()["wav2vec2-layer"]
    mask = torch.tensor([[1] * 1000, [1] * 600 + [0] * 400])
    fig = plot_frame_mask(config, mask)
    top, bottom = fig.axes
    assert top.images[0].get_array().shape == (2, 1000)
    frames = int(encoder_output_lengths(config, 1000))
    assert bottom.images[0].get_array().shape == (2, frames)
    kept = int(encoder_output_lengths(config, 600))
    assert f"= {frames}, {kept}" in bottom.get_title()


def test_label_shift_figure_writes_every_id():
    labels = torch.tensor([[7, 8, 2, -100]])
    inputs = shift_tokens_right(labels, pad_token_id=0, decoder_start_token_id=1)
    fig = plot_label_shift(labels, inputs)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("-100") == 1 and "labels" in texts and "decoder_input_ids" in texts
    cells = [t for t in texts if t and t not in ("labels", "decoder_input_ids")]
    assert cells == ["7", "8", "2", "-100", "1", "7", "8", "2"]


def test_token_losses_average_to_the_loss():
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 11), torch.tensor([3, 4, 5, -100, -100])
    losses = token_losses(logits, labels)
    assert torch.isnan(losses[3:]).all()
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(losses[:3].mean(), expected)
    fig = plot_token_losses(losses, ["a", "b", "c", "pad", "pad"], mean=float(expected))
    assert len(fig.axes[0].patches) == 5
    assert sum("ignored" in t.get_text() for t in fig.axes[0].texts) == 2


def test_alignment_figure_colours_each_edit():
    alignment = align(words("the cat sat on the mat"), words("the cat sat big on mat"))
    fig = plot_alignment([alignment], titles=["one"])
    ax = fig.axes[0]
    assert len(ax.patches) == len(alignment.ops)
    assert "S=0 D=1 I=1 N=6" in ax.get_title(loc="left")
    texts = [t.get_text() for t in ax.texts]
    assert "big" in texts and texts.count("—") == 2


def test_error_rate_bars_carry_their_values():
    fig = plot_error_rates({"test": {"WER": 0.25, "CER": 0.1}, "unseen": {"WER": 0.5, "CER": 0.2}})
    ax = fig.axes[0]
    assert sorted(round(b.get_height(), 2) for b in ax.patches) == [0.1, 0.2, 0.25, 0.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["test", "unseen"]


def test_table_renders_html_markdown_and_text():
    table = Table(["a", "b"], [[1, "x<y"], [123456, 0.5]], caption="c")
    assert (
        "<td>x&lt;y</td>" in table._repr_html_() and "<caption>c</caption>" in table._repr_html_()
    )
    assert table.to_markdown().splitlines()[2] == "| 1 | x<y |"
    assert "123,456" in repr(table)


def test_config_diff_table_lists_before_and_after():
    table = config_diff_table({"is_decoder": (False, True)})
    assert table.rows == [["is_decoder", "False", "True"]]


def test_cross_attention_figure_names_rows_by_predicted_token_and_columns_in_seconds():
    weights = torch.rand(3, 250).softmax(-1).numpy()
    tokens = ["she", "kept", "[SEP]"]
    fig = plot_cross_attention(
        {"after step 1": (weights, tokens)}, frame_seconds=0.02, seconds=2.0, title="t"
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens
    assert ax.get_xlabel() == "audio time (s)" and ax.get_ylabel() == "token being predicted"
    image = ax.images[0]
    assert image.get_array().shape == (3, 100)  # 2 s of 20 ms frames
    assert image.get_extent()[:2] == [0.0, 2.0]
    assert (image.get_array() == weights[:, :100]).all()


def test_warm_start_figure_draws_every_run_and_marks_the_chosen_lr():
    def history(wer):
        return [{"step": 1, "loss": 9.0}, {"step": 50, "loss": 3.0, "wer": wer}]

    result = {
        "command": "python benchmarks/warm_start.py --profile short",
        "profile": {"steps": 50},
        "arms": {"warm": {"lr": 1e-3}, "random": {"lr": 3e-4}},
        "curves": {
            "warm@lr0.001": history(0.1),
            "warm@lr0.0003": history(0.5),
            "random@lr0.001": history(1.1),
            "random@lr0.0003": history(1.0),
        },
    }
    fig = plot_warm_start(result)
    left, right = fig.axes[:2]
    assert len(left.lines) == len(right.lines) == 4
    styles = {line.get_label(): line.get_linestyle() for line in right.lines}
    assert styles == {
        "warm, lr 0.001": "-",
        "warm, lr 0.0003 (not chosen)": "--",
        "random, lr 0.001 (not chosen)": "--",
        "random, lr 0.0003": "-",
    }
    wers = {line.get_label(): list(line.get_ydata()) for line in right.lines}
    assert wers["warm, lr 0.001"] == [0.1] and wers["random, lr 0.0003"] == [1.0]


def test_speech_inputs_figure_draws_each_input_on_one_axis_in_seconds():
    from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    torch.manual_seed(0)
    audio = (torch.randn(24_000) * 0.1).numpy()  # 1.5 s at 16 kHz
    values = Wav2Vec2FeatureExtractor()(audio, sampling_rate=16_000).input_values[0]
    mel = WhisperFeatureExtractor()(audio, sampling_rate=16_000, return_tensors="pt")
    fig = plot_speech_inputs(audio, 16_000, values, mel.input_features, seconds=2.0)
    wave, normalised, spectrogram = fig.axes
    # every sample drawn at its own time: sample i at i / 16,000 s
    for ax, samples in ((wave, audio), (normalised, values)):
        x, y = ax.lines[0].get_data()
        assert len(x) == 24_000 and x[-1] == 23_999 / 16_000
        assert (y == samples).all()
    assert "mean 0.00, std 1.00" in normalised.get_title()
    image = spectrogram.images[0]
    assert image.get_array().shape == (80, 200)  # 2 s of 10 ms frames, all 80 mel bins
    assert (image.get_array() == mel.input_features[0, :, :200].numpy()).all()
    assert image.get_extent()[:2] == [0.0, 2.0]
    assert spectrogram.get_xlabel() == "time (s)" and spectrogram.get_xlim() == (0.0, 2.0)
    assert "80 mel bins x 3,000 frames of 10 ms" in spectrogram.get_title()


def test_training_loss_figure_draws_every_step():
    history = [{"step": i + 1, "loss": 10.0 / (i + 1), "lr": 1e-3} for i in range(5)]
    fig = plot_training_loss(history, title="t")
    x, y = fig.axes[0].lines[0].get_data()
    assert list(x) == [1, 2, 3, 4, 5] and list(y) == [r["loss"] for r in history]
    assert fig.axes[0].get_ylabel() == "training loss (nats/token)"
