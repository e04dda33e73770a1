"""The beam tree is the trace, redrawn: one node per candidate, each joined to its real parent.

Runs on the decisive tiny models of decoding_helpers (EOS, pruning and dropping all happen),
over several settings and every utterance of a batch.
"""

import matplotlib
import pytest
import torch
from decoding_helpers import calibrated

from s2t_edu.decoding import beam_search
from s2t_edu.decoding.beam import Candidate, Fate
from s2t_edu.decoding.tree import FATES, beam_tree, fate_of, plot_beam_tree, token_label
from s2t_edu.errors import S2TEduError

matplotlib.use("Agg")

SETTINGS = [(2, 1.0, False), (3, 0.0, True), (4, 2.0, "never")]


def traced(num_beams, length_penalty, early_stopping):
    model, inputs, mask, _ = calibrated("wav2vec2-group", "bert")
    return beam_search(
        model,
        inputs,
        num_beams,
        mask,
        max_new_tokens=8,
        length_penalty=length_penalty,
        early_stopping=early_stopping,
        trace=True,
    ), inputs.shape[0]


@pytest.mark.parametrize("num_beams,length_penalty,early_stopping", SETTINGS)
def test_one_node_per_candidate_joined_to_its_parent(num_beams, length_penalty, early_stopping):
    out, batch = traced(num_beams, length_penalty, early_stopping)
    for utterance in range(batch):
        steps = [s for s in out.trace if s.utterance == utterance]
        tree = beam_tree(out.trace, utterance)
        candidates = [c for s in steps for c in s.candidates]
        assert len(tree.nodes) == 1 + len(candidates)  # the root + one per candidate
        assert tree.nodes[0].fate == "root" and tree.nodes[0].parent is None
        # Nodes come in trace order: node i + 1 is candidate i.
        for node, cand in zip(tree.nodes[1:], candidates, strict=True):
            assert node.token == cand.token and node.score == cand.score
            assert node.fate == fate_of(cand.fate) and node.reason == cand.reason
        for step in steps:
            alive_tokens = [tuple(tokens) for tokens, _ in step.alive]
            at_step = [n for n in tree.nodes[1:] if n.step == step.step + 1]
            assert len(at_step) == len(step.candidates)
            for node, cand in zip(at_step, step.candidates, strict=True):
                parent = tree.nodes[node.parent]
                # The edge goes to the hypothesis the candidate extends, and adds its token.
                assert parent.tokens == alive_tokens[cand.parent]
                assert node.tokens == (*parent.tokens, cand.token)
                assert parent.fate in ("root", "kept")
                assert node.index in parent.children
        assert len(tree.edges) == len(candidates)


def test_every_fate_maps_into_the_legend_and_all_four_occur():
    seen = set()
    for settings in SETTINGS:
        out, batch = traced(*settings)
        for utterance in range(batch):
            seen |= {n.fate for n in beam_tree(out.trace, utterance).nodes[1:]}
    assert seen == set(FATES)


def test_the_best_node_is_the_returned_sequence():
    out, batch = traced(3, 1.0, False)
    for utterance in range(batch):
        tree = beam_tree(out.trace, utterance)
        best = tree.nodes[tree.best]
        assert best.fate == "finished"
        row = out.sequences[utterance].tolist()
        assert list(best.tokens) == row[: len(best.tokens)]
        assert tree.path_to(tree.best)[0] == 0


def test_fate_groups_and_sentences():
    assert {fate: fate_of(fate) for fate in Fate} == {
        Fate.ALIVE: "kept",
        Fate.PRUNED: "pruned",
        Fate.FINISHED: "finished",
        Fate.BEATEN: "dropped",
        Fate.RANKED_TOO_LOW: "dropped",
        Fate.EARLY_STOPPED: "dropped",
        Fate.UTTERANCE_DONE: "dropped",
    }
    assert fate_of("alive") == "kept"  # a StrEnum: its value works too
    with pytest.raises(ValueError):
        fate_of("something else")

    def reason(fate, ended=None, normalised=None):
        return Candidate(0, 5, -1.0, ended, fate, normalised).reason

    # The sentences the trace has always printed (notebook 3 shows them).
    assert reason(Fate.ALIVE) == "alive: among the num_beams best unfinished"
    assert reason(Fate.PRUNED) == "pruned: not among the num_beams best unfinished"
    assert (
        reason(Fate.RANKED_TOO_LOW, "eos")
        == "dropped: ended (eos) but ranked below the best num_beams candidates"
    )
    assert (
        reason(Fate.EARLY_STOPPED, "eos")
        == "dropped: early_stopping=True and num_beams hypotheses had already finished"
    )
    assert (
        reason(Fate.UTTERANCE_DONE, "max_length")
        == "dropped: utterance already done (no alive beam could beat the finished ones)"
    )
    assert (
        reason(Fate.FINISHED, "max_length", -0.123456)
        == "finished (max_length): kept, length-normalised score -0.1235"
    )
    assert (
        reason(Fate.BEATEN, "eos")
        == "finished (eos): dropped, worse than the num_beams finished hypotheses"
    )


def test_plot_draws_one_marker_per_node():
    out, _ = traced(2, 1.0, False)
    fig = plot_beam_tree(out.trace, utterance=1)
    markers = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert markers == len(beam_tree(out.trace, 1).nodes)
    cut = plot_beam_tree(out.trace, utterance=1, max_steps=2)
    shown = [n for n in beam_tree(out.trace, 1).nodes if n.step <= 2]
    assert sum(len(c.get_offsets()) for c in cut.axes[0].collections) == len(shown)


def test_no_trace_is_a_clear_error():
    with pytest.raises(S2TEduError, match="no step"):
        beam_tree([], 0)
    out, batch = traced(2, 1.0, False)
    with pytest.raises(S2TEduError):
        beam_tree(out.trace, batch)


def test_token_label_without_and_with_a_tokenizer():
    class Tok:
        def decode(self, ids):
            return {5: " hello", 6: "<|endoftext|>", 7: ""}[ids[0]]

        def convert_ids_to_tokens(self, token):
            return "<|0.00|>"

    assert token_label(5) == "5"
    assert token_label(5, Tok()) == "hello"
    assert token_label(6, Tok()) == "endoftext"
    assert token_label(7, Tok()) == "0.00"
    assert torch.is_tensor(torch.tensor(0))  # keeps torch imported for calibrated()
