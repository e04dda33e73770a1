"""loading_report captures transformers' LOAD REPORT whatever the verbosity, in a fixed order."""

import transformers
from tiny_models import decoder_configs
from transformers import BertLMHeadModel, BertModel

from s2t_edu.teaching.load_report import loading_report


def test_the_report_lists_new_and_dropped_tensors_sorted_and_prints_nothing(tmp_path, capfd):
    BertModel(decoder_configs()["bert"]).save_pretrained(tmp_path)  # has a pooler, no LM head
    transformers.logging.set_verbosity_error()  # the notebooks' setting: nothing is logged
    try:
        (model, info), report = loading_report(
            BertLMHeadModel.from_pretrained,
            str(tmp_path),
            name="tiny-bert",
            is_decoder=True,
            add_cross_attention=True,
            output_loading_info=True,
        )
    finally:
        transformers.logging.set_verbosity_warning()
    assert isinstance(model, BertLMHeadModel)
    assert "BertLMHeadModel LOAD REPORT from: tiny-bert" in report
    assert "\x1b[" not in report and str(tmp_path) not in report
    rows = [line for line in report.splitlines() if "| MISSING" in line or "| UNEXPECTED" in line]
    statuses = [line.split("|")[1].strip() for line in rows]
    assert statuses == sorted(statuses, key=("UNEXPECTED", "MISSING").index)
    missing = [line.split("|")[0].strip() for line in rows if "MISSING" in line]
    assert missing == sorted(missing)
    assert any("crossattention" in key for key in missing)  # every one of them is in info too
    assert all(k in report for k in ("pooler.dense.weight", "cls.predictions.transform"))
    assert info["missing_keys"] and any("pooler" in k for k in info["unexpected_keys"])
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.err + captured.out
