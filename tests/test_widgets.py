"""The length/mask calculator reports what the encoder really computes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import Wav2Vec2Model  # noqa: E402

from s2t_edu import S2TEduError, encoder_attention_mask, encoder_output_lengths  # noqa: E402
from s2t_edu.teaching.widgets import (  # noqa: E402
    batch_attention_mask,
    calculator_config,
    length_calculator,
    length_figure,
    length_report,
    parse_ints,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_default_stack_gives_wav2vec2s_50_frames_per_second():
    report = length_report(calculator_config(), (1.0, 2.0))
    assert report.frames == (49, 99)  # the classic wav2vec2 numbers
    assert report.padded_frames == 99
    assert report.receptive_field_ms == 25.0 and report.hop_ms == 20.0


@pytest.mark.parametrize("seconds", [(0.03, 1.5), (3.21, 0.4), (9.99, 10.0)])
@pytest.mark.parametrize("adapter_layers", [0, 1, 3])
def test_report_equals_the_library_formula(seconds, adapter_layers):
    config = calculator_config(adapter_layers=adapter_layers, adapter_stride=2)
    report = length_report(config, seconds)
    samples = [round(s * 16_000) for s in seconds]
    assert list(report.frames) == encoder_output_lengths(config, samples).tolist()
    assert report.samples == tuple(samples)


def test_report_equals_a_real_encoder_forward_pass():
    config = calculator_config((10, 5, 3), (5, 4, 2), adapter_layers=1, adapter_stride=2)
    config.hidden_size, config.num_hidden_layers, config.num_attention_heads = 16, 1, 2
    config.intermediate_size, config.output_hidden_size = 16, 16
    config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups = 4, 2
    config.feat_extract_norm, config.do_stable_layer_norm = "layer", True
    torch.manual_seed(0)
    encoder = Wav2Vec2Model(config).eval()
    report = length_report(config, (0.5, 0.3))
    with torch.no_grad():
        for samples, frames in zip(report.samples, report.frames, strict=True):
            out = encoder(torch.randn(1, samples)).last_hidden_state
            assert out.shape[1] == frames


def test_mask_matches_encoder_attention_mask():
    config = calculator_config()
    report = length_report(config, (1.0, 0.5))
    frame_mask = encoder_attention_mask(config, batch_attention_mask(report.samples))
    assert frame_mask.sum(-1).tolist() == list(report.frames)
    assert frame_mask.shape[1] == report.padded_frames


def test_static_figures_show_default_setting():
    pipeline, mask = length_figure(calculator_config(), (2.0, 1.3))
    assert "32,000 samples -> 99 encoder frames" in pipeline.axes[0].get_title()
    assert mask.axes[1].images[0].get_array().shape == (2, 99)


def test_parse_ints_speaks_to_the_learner():
    assert parse_ints("10, 3,3", "kernels") == (10, 3, 3)
    with pytest.raises(S2TEduError, match="whole numbers"):
        parse_ints("10;3", "kernels")
    with pytest.raises(S2TEduError, match="one stride per conv kernel"):
        calculator_config((10, 3), (5,))


def test_calculator_redraws_when_a_slider_moves():
    box = length_calculator()
    first, *_, out = box.children
    assert "32,000 samples -> 99 frames" in out.outputs[0]["text"]
    first.value = 1.0
    assert "16,000 samples -> 49 frames" in out.outputs[0]["text"]
    adapter = box.children[4]
    adapter.value = 1  # one adapter layer, stride 2: 49 -> 25
    assert "16,000 samples -> 25 frames" in out.outputs[0]["text"]
