"""The beam search tree, drawn straight from ``beam_search(..., trace=True).trace``.

Every candidate beam search ranked is one node; its edge goes back to the alive hypothesis it
extends and carries the candidate's token. Beam search itself never builds this tree (it only
holds ``num_beams`` rows at a time); the trace records enough to rebuild it:

* ``BeamStep.alive[i]`` is the hypothesis (tokens, score) extended at that step;
* ``Candidate.parent`` indexes into that list, ``Candidate.token`` is the new token;
* ``Candidate.fate`` (a ``Fate``) says what became of it. An alive candidate reappears, token
  for token, in the next step's ``alive`` list, which is how steps are stitched together.

The tree groups the seven fates into four, each with its own colour and marker:

* ``kept``: among the ``num_beams`` best unfinished candidates -> extended at the next step;
* ``pruned``: unfinished, but not good enough -> forgotten;
* ``finished``: ended (EOS or max length) and entered the finished hypotheses;
* ``dropped``: ended, but did not make it in (ranked too low, or the utterance was done).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from s2t_edu.decoding.beam import BeamStep, Fate
from s2t_edu.errors import S2TEduError

# fate -> (colour, marker, legend text); the same order is the legend's order.
FATES = {
    "kept": ("#4C72B0", "o", "kept: extended at the next step"),
    "pruned": ("#BBBBBB", "x", "pruned: not among the num_beams best"),
    "finished": ("#55A868", "s", "finished: entered the finished hypotheses"),
    "dropped": ("#C44E52", "v", "dropped: ended, but not kept"),
}
# the trace's Fate -> its group in FATES
GROUP_OF = {
    Fate.ALIVE: "kept",
    Fate.PRUNED: "pruned",
    Fate.FINISHED: "finished",
    Fate.BEATEN: "dropped",
    Fate.RANKED_TOO_LOW: "dropped",
    Fate.EARLY_STOPPED: "dropped",
    Fate.UTTERANCE_DONE: "dropped",
}
ROOT_COLOUR = "#333333"


def fate_of(fate: Fate | str) -> str:
    """A candidate's ``Fate`` (or its value, e.g. "alive") -> its group in FATES."""
    return GROUP_OF[Fate(fate)]  # Fate("no such fate") raises ValueError


@dataclass
class TreeNode:
    """One hypothesis: the root (the start token) or one candidate of one step."""

    index: int
    parent: int | None  # index of the parent node; None for the root
    step: int  # new tokens so far (root 0; a candidate of trace step s has s + 1)
    tokens: tuple[int, ...]  # the whole sequence, start token first
    score: float  # summed log-probability
    fate: str  # "root" or one of FATES
    reason: str = ""  # the trace's own sentence
    children: list[int] = field(default_factory=list)

    @property
    def token(self) -> int:
        return self.tokens[-1]


@dataclass
class BeamTree:
    """All hypotheses beam search looked at for one utterance, as a tree."""

    nodes: list[TreeNode]
    best: int | None  # node of the best finished hypothesis (what beam_search returns first)

    @property
    def edges(self) -> list[tuple[int, int]]:
        """(parent, child) node indices; the child's last token labels the edge."""
        return [(n.parent, n.index) for n in self.nodes if n.parent is not None]

    def path_to(self, index: int) -> list[int]:
        """Node indices from the root down to ``index``."""
        path = [index]
        while self.nodes[path[-1]].parent is not None:
            path.append(self.nodes[path[-1]].parent)
        return path[::-1]


def beam_tree(trace: list[BeamStep], utterance: int = 0) -> BeamTree:
    """Rebuild the tree of one utterance from a beam trace (see the module docstring)."""
    steps = [s for s in trace or [] if s.utterance == utterance]
    if not steps:
        raise S2TEduError(
            "the trace holds no step for this utterance",
            "pass beam_search(..., num_beams >= 2, trace=True).trace and an utterance index "
            "below the batch size",
            f"utterance={utterance}, {len(trace or [])} trace steps",
        )
    root_tokens, root_score = steps[0].alive[0]
    nodes = [TreeNode(0, None, 0, tuple(root_tokens), root_score, "root")]
    by_tokens = {tuple(root_tokens): 0}  # alive hypotheses are found again by their tokens
    for step in steps:
        parents = [by_tokens[tuple(tokens)] for tokens, _ in step.alive]
        for cand in step.candidates:
            parent = parents[cand.parent]
            node = TreeNode(
                index=len(nodes),
                parent=parent,
                step=step.step + 1,
                tokens=(*nodes[parent].tokens, cand.token),
                score=cand.score,
                fate=GROUP_OF[cand.fate],
                reason=cand.reason,
            )
            nodes.append(node)
            nodes[parent].children.append(node.index)
            if node.fate == "kept":
                by_tokens[node.tokens] = node.index
    return BeamTree(nodes, _best_finished(nodes, steps[-1]))


def _best_finished(nodes: list[TreeNode], last: BeamStep) -> int | None:
    """The finished node that ranks first at the end (its tokens start the best finished row)."""
    if not last.finished:
        return None
    best_tokens = max(last.finished, key=lambda item: item[1])[0]
    matches = [
        n.index
        for n in nodes
        if n.fate == "finished" and list(n.tokens) == best_tokens[: len(n.tokens)]
    ]
    return max(matches, key=lambda i: len(nodes[i].tokens)) if matches else None


def _layout(tree: BeamTree) -> dict[int, float]:
    """y position of every node: leaves one apart in depth-first order (best child first)."""
    y: dict[int, float] = {}
    next_leaf = 0.0

    def place(index: int) -> float:
        nonlocal next_leaf
        node = tree.nodes[index]
        children = sorted(node.children, key=lambda c: -tree.nodes[c].score)
        if not children:
            y[index], next_leaf = next_leaf, next_leaf + 1
        else:
            ys = [place(c) for c in children]
            y[index] = (ys[0] + ys[-1]) / 2
        return y[index]

    place(0)
    return y


def token_label(token: int, tokenizer=None) -> str:
    """What to print for a token: its text (spaces shown as nothing) or its id."""
    if tokenizer is None:
        return str(token)
    raw = tokenizer.decode([token])
    if not raw:  # e.g. Whisper's timestamp tokens decode to nothing by default
        raw = tokenizer.convert_ids_to_tokens(token)
    text = raw.strip()
    if text.startswith("<|") and text.endswith("|>"):  # Whisper's special tokens, shortened
        return text[2:-2]
    return text if text else repr(raw)


def plot_beam_tree(
    trace: list[BeamStep],
    tokenizer=None,
    utterance: int = 0,
    max_steps: int | None = None,
    ax=None,
) -> Figure:
    """Draw one utterance's beam search: x = step, one marker per hypothesis, coloured by fate.

    The path of the best finished hypothesis is drawn thick. ``max_steps`` cuts the drawing
    after that many steps (long searches get tall); ``tokenizer`` turns ids into text.
    """
    tree = beam_tree(trace, utterance)
    keep = [n for n in tree.nodes if max_steps is None or n.step <= max_steps]
    shown = {n.index for n in keep}
    trimmed = BeamTree(
        [
            TreeNode(
                n.index,
                n.parent,
                n.step,
                n.tokens,
                n.score,
                n.fate,
                n.reason,
                [c for c in n.children if c in shown],
            )
            for n in keep
        ],
        tree.best if tree.best in shown else None,
    )
    y = _layout(trimmed)
    leaves = max(y.values()) + 1
    depth = max(n.step for n in keep)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, 1.15 * depth + 1.5), max(3.0, 0.22 * leaves + 1)))
    else:
        fig = ax.figure
    best_path = set(tree.path_to(tree.best)) if tree.best in shown else set()
    for parent, child in trimmed.edges:
        on_best = child in best_path
        ax.plot(
            [tree.nodes[parent].step, tree.nodes[child].step],
            [y[parent], y[child]],
            color="#222222" if on_best else "#999999",
            lw=2.2 if on_best else 0.6,
            zorder=1,
        )
    for node in keep:
        if node.fate == "root":
            ax.scatter(0, y[0], color=ROOT_COLOUR, marker="D", s=40, zorder=3)
            ax.annotate(
                "start",
                (0, y[0]),
                xytext=(-4, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=8,
            )
            continue
        colour, marker, _ = FATES[node.fate]
        ax.scatter(node.step, y[node.index], color=colour, marker=marker, s=22, zorder=3)
        important = node.fate != "pruned" or node.index in best_path
        ax.annotate(
            token_label(node.token, tokenizer),
            (node.step, y[node.index]),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7 if important else 6,
            color="black" if important else "#888888",
        )
    for colour, marker, text in FATES.values():
        ax.scatter([], [], color=colour, marker=marker, label=text)
    ax.plot([], [], color="#222222", lw=2.2, label="the returned hypothesis")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_xticks(range(depth + 1))
    ax.set_xlabel("new tokens so far (beam search step)")
    ax.set_yticks([])
    ax.invert_yaxis()  # best first, at the top
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(-0.8, depth + 0.9)
    ax.set_title(f"beam search tree: {len(tree.nodes) - 1} candidates ranked", fontsize=10)
    fig.tight_layout()
    return fig
