"""The AB-MCTS search tree (arXiv 2503.04412), pure: no I/O, a seeded ``random.Random``.

Node 0 is the root (the question); every other node is one generated answer with its
verifier score. Selection walks down from the root; at each node it Thompson-samples
"go wider" (a new child of this node) against "go deeper" (descend into one of its
children):

- the GEN arm of a node is a Beta posterior over the scores of the children generated
  there (it learns — AB-MCTS-A style — instead of staying Beta(1, 1) as in tako);
- each child's arm is the Beta posterior of its subtree (every score below it
  back-propagates: alpha += score, beta += 1 - score);
- a node with ``branching_factor`` children can only be descended into; failed answers
  (their generation or scoring raised) are leaves nobody descends into or refines.

Which model generates is chosen per expansion, AB-MCTS-M style: every node keeps a Beta
arm per model over the scores that model's children of it got, and a branch's choice
samples from the counts summed along its path from the root (what this branch has
learned), so a model that does well somewhere is tried more there.

Why not TreeQuest: this is ~100 lines over the standard library's ``random``; TreeQuest would pull
scipy/numpy for the same Beta draws. The draws are ``beta_draw`` (Cheng's BB, ~1.5x
cheaper than ``random.betavariate``), and a node with no room to widen and one live
child is descended into without a draw (``bench/orchestrators.py``).
"""

from __future__ import annotations

import random

import msgspec

from .beta_draw import beta_draw


class Node(msgspec.Struct, gc=False):
    """One node (a struct, not a dataclass: the search makes one per iteration; untracked
    by the garbage collector: it holds no object that could lead back to it)."""

    parent: int | None
    depth: int
    score: float = 0.0
    answer: str = ""
    feedback: str = ""
    model: int = 0
    failed: bool = False
    children: list[int] = msgspec.field(default_factory=list)
    #: the children that did not fail (what selection may descend into)
    live: list[int] = msgspec.field(default_factory=list)
    #: posterior of this subtree (the parent's "go deeper into me" arm)
    alpha: float = 1.0
    beta: float = 1.0
    #: posterior of "a new child here" (scores of the children generated here)
    gen_alpha: float = 1.0
    gen_beta: float = 1.0
    #: per model: (sum of scores, sum of 1 - scores) of the children it generated here
    arms: dict[int, tuple[float, float]] = msgspec.field(default_factory=dict)


class Tree:
    """``models`` is the number of generating models (indices 0…models-1)."""

    def __init__(self, *, branching_factor: int, models: int = 1,
                 rng: random.Random | None = None) -> None:
        if branching_factor < 1:
            raise ValueError("branching_factor must be at least 1")
        if models < 1:
            raise ValueError("at least one model")
        self.branching_factor = branching_factor
        self.models = models
        self.rng = rng or random.Random()
        self.nodes = [Node(parent=None, depth=0)]

    def select(self) -> int:
        """The node to expand next (its new child is the next rollout)."""
        nodes, rng, full, draw_beta = self.nodes, self.rng, self.branching_factor, beta_draw
        n = 0
        while True:
            node = nodes[n]
            live = node.live
            if not live:
                return n  # nothing to descend into: widen (even past a full, failed row)
            wider = len(node.children) < full
            if not wider and len(live) == 1:
                n = live[0]  # nothing to weigh: no draw
                continue
            gen = draw_beta(rng, node.gen_alpha, node.gen_beta) if wider else -1.0
            best, draw = n, -1.0
            for c in live:
                child = nodes[c]
                d = draw_beta(rng, child.alpha, child.beta)
                if d > draw:
                    best, draw = c, d
            if gen > draw:
                return n
            n = best

    def choose_model(self, n: int) -> int:
        """Thompson-sample the model that generates the next child of node ``n``."""
        if self.models == 1:
            return 0
        wins = [1.0] * self.models
        losses = [1.0] * self.models
        at: int | None = n
        while at is not None:
            node = self.nodes[at]
            for m, (w, lo) in node.arms.items():
                wins[m] += w
                losses[m] += lo
            at = node.parent
        draws = [beta_draw(self.rng, wins[m], losses[m]) for m in range(self.models)]
        return max(range(self.models), key=draws.__getitem__)

    def add(self, parent: int, *, model: int, score: float, answer: str = "",
            feedback: str = "", failed: bool = False) -> int:
        """Insert a generated answer under ``parent`` and back-propagate its score."""
        # clamped to [0, 1] (NaN and -0.0 to 0.0) by comparisons: cheaper than min(max())
        if failed or not score > 0.0:
            score = 0.0
        elif score >= 1.0:
            score = 1.0
        miss = 1.0 - score
        nodes = self.nodes
        index = len(nodes)
        p = nodes[parent]
        # (every field positional, in their order: no keyword parsing, no default factory
        # called — the lists and the dict are literals)
        nodes.append(Node(parent, p.depth + 1, score, answer, feedback, model, failed, [], [],
                          1.0 + score, 1.0 + miss, 1.0, 1.0, {}))
        p.children.append(index)
        if not failed:
            p.live.append(index)
        p.gen_alpha += score
        p.gen_beta += miss
        if self.models > 1:  # (the arms are read only to choose between models)
            w, lo = p.arms.get(model, (0.0, 0.0))
            p.arms[model] = (w + score, lo + 1.0 - score)
        at = parent
        while at:  # the new node's ancestors, the root excluded
            node = nodes[at]
            node.alpha += score
            node.beta += miss
            at = node.parent  # type: ignore[assignment]  # (None only at the root)
        return index

    def best(self) -> int | None:
        """The best answer so far (the earliest of equal scores), failed ones excluded."""
        found: int | None = None
        for i, node in enumerate(self.nodes[1:], start=1):
            if not node.failed and (found is None or node.score > self.nodes[found].score):
                found = i
        return found
