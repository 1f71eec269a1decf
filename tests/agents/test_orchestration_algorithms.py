"""The pure parts of the orchestrators, without I/O: plan parsing, judge score parsing,
rule-based verifiers and guards (tako's tables), verdicts, tako's regex routing rule, and
the AB-MCTS tree (selection, model choice, back-propagation, seeding, isolation)."""

from __future__ import annotations

import random

import pytest

from dragoman import guards, routers, verifiers
from dragoman.agents.conductor_plan import Dispatch, Plan, PlanError, parse_plan, short
from dragoman.agents.judging import feedback_of, parse_score
from dragoman.agents.orchestrator import user
from dragoman.agents.routers import pick_candidate, regex_choice
from dragoman.agents.tree_search import Tree
from dragoman.agents.trinity import kind_of, parse_verdict

# --- plans --------------------------------------------------------------------------------


def test_plan_fields_and_defaults() -> None:
    p = parse_plan('{"thought": "t", "dispatch": [{"worker": "code", "task": "x"}, '
                   '{"worker": "math", "task": "y", "sees": [1, "#2"]}], "extra": 1}')
    assert p == Plan(thought="t", dispatch=(Dispatch("code", "x"),
                                            Dispatch("math", "y", (1, 2))))
    assert parse_plan('{"halt": true, "final_answer": "done"}') == Plan(
        halt=True, final_answer="done")
    assert parse_plan('{"dispatch": [{"worker": "a", "task": "b", "sees": "all"}]}') \
        .dispatch[0].sees == "all"


@pytest.mark.parametrize("text", [
    '```json\n{"halt": true, "final_answer": "ok"}\n```',
    '```\n{"halt": true, "final_answer": "ok"}\n```',
    'Sure! Here is the plan:\n```json\n{"halt": true, "final_answer": "ok"}\n```\nBye.',
    'My plan: {"halt": true, "final_answer": "ok"} -- that is all',
])
def test_plans_are_read_through_fences_and_prose(text: str) -> None:
    assert parse_plan(text) == Plan(halt=True, final_answer="ok")


def test_tako_documented_schema_is_an_empty_plan() -> None:
    # the schema tako's docs show (not what its code reads): no dispatch, no halt
    assert parse_plan('{"workers": [{"name": "code", "task": "x"}], '
                      '"join_strategy": "all"}') == Plan()


@pytest.mark.parametrize(("text", "says"), [
    ("I will write code", "not valid JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"dispatch": {"worker": "a"}}', "dispatch must be a list"),
    ('{"dispatch": [{"worker": "a"}]}', "dispatch[0].task"),
    ('{"dispatch": [{"task": "a"}]}', "dispatch[0].worker"),
    ('{"dispatch": [{"worker": "a", "task": "b", "sees": [true]}]}', "not a result number"),
])
def test_unusable_plans_say_why(text: str, says: str) -> None:
    with pytest.raises(PlanError) as e:
        parse_plan(text)
    assert says in str(e.value)


def test_task_labels_are_cut_on_characters() -> None:
    assert short("é" * 70) == "é" * 57 + "..."
    assert short("short") == "short"


# --- scores -------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "score"), [
    ("0.83", 0.83), ("score: 0.42", 0.42), ("Score: 0.9\nfine", 0.9), ("1.5", 1.0),
    ("-0.2", 0.0), ("nope", 0.5), ("85%", 0.85), ("7/10", 0.7), ("**0.6**", 0.6),
    ("", 0.5), (".5", 0.5), ("1", 1.0), ("0", 0.0),
])
def test_judge_score_parsing(reply: str, score: float) -> None:
    assert parse_score(reply) == pytest.approx(score)


def test_judge_feedback_is_what_follows_the_score() -> None:
    assert feedback_of("0.3\nThe proof skips the base case.") == "The proof skips the base case."
    assert feedback_of("0.9") == ""


@pytest.mark.parametrize(("min_chars", "pattern", "text", "score"), [
    (0, None, "", 1.0), (10, None, "short", 0.0), (3, None, "long enough", 1.0),
    (3, "QED", "long, no word", 0.5), (30, "QED", "QED", 0.5), (30, "QED", "x", 0.0),
    (3, "QED", "proof. QED", 1.0),
])
async def test_rule_based_verifier_is_the_fraction_of_rules(
        min_chars: int, pattern: str | None, text: str, score: float) -> None:
    v = verifiers.RuleBased(min_chars=min_chars, pattern=pattern)
    assert (await v.score("q", text)).score == score
    partial = await v.score_partial("q", text, 1)
    assert partial is not None and partial.score == score


@pytest.mark.parametrize(("text", "score", "partial"), [
    ("long, no word", 0.0, None), ("QED", 0.0, None), ("proof. QED", 1.0, 1.0)])
async def test_rule_based_guard_is_all_or_nothing(text: str, score: float,
                                                  partial: float | None) -> None:
    g = guards.RuleBased(min_chars=5, pattern="QED")
    judged = await g.score("q", text)
    assert judged.score == score
    assert (judged.feedback == "") == (score == 1.0)
    got = await g.score_partial("q", text, 1)
    assert (got.score if got else None) == partial


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        verifiers.RuleBased(pattern="(")
    with pytest.raises(ValueError, match="negative"):
        guards.RuleBased(min_chars=-1)


# --- Trinity verdicts and routing -----------------------------------------------------------


@pytest.mark.parametrize(("reply", "accepted"), [
    ("VERDICT: ACCEPT", True), ("verdict: reject\nmissing the base case", False),
    ("**VERDICT: ACCEPT**\nall good", True), ("I accept this answer.", True),
    ("Rejected: wrong sign.", False), ("Looks fine to me", False), ("Approved.", True),
])
def test_verdicts(reply: str, accepted: bool) -> None:
    assert parse_verdict(reply)[0] is accepted


def test_verdict_feedback() -> None:
    assert parse_verdict("VERDICT: REJECT\nthe sign is wrong") == (False, "the sign is wrong")


def test_role_kinds() -> None:
    assert [kind_of(r) for r in ("Thinker", "worker", "coder", "VERIFIER")] == [
        "thinker", "worker", "worker", "verifier"]


@pytest.mark.parametrize(("text", "index", "confidence"), [
    ("Write a Rust fn that adds two numbers", 0, 1.0),
    ("Solve x^2 + 5x + 6 = 0", 1, 1.0),
    ("hello there", 2, 0.5),
    ("x = 1", 1, 1.0),
    ("explain the code", 0, 1.0),
])
def test_tako_regex_rule(text: str, index: int, confidence: float) -> None:
    assert regex_choice(text) == (index, confidence)


async def test_regex_router_clamps_and_reads_the_last_user_message() -> None:
    r = routers.RegexRouter()
    route = await r.route([user("Solve 2+2"), user("hello")], ["a|m", "b|m"])
    assert (route.choice, route.confidence) == ("b|m", 0.5)  # index 2 clamped to 1
    with pytest.raises(ValueError, match="no candidates"):
        await r.route([user("x")], [])


def test_llm_router_reply_reading() -> None:
    cands = ["thinker|big", "worker|big", "verifier|small"]
    assert pick_candidate("worker|big", cands) == "worker|big"
    assert pick_candidate("I'd pick the Verifier now.", cands) == "verifier|small"
    assert pick_candidate("thinker, then worker", cands) == "thinker|big"
    assert pick_candidate("nobody", cands) is None


# --- AB-MCTS tree ---------------------------------------------------------------------------


def _grow(tree: Tree, scores: list[float]) -> list[int]:
    """Run the search loop with fixed scores; the parents chosen, in order."""
    parents = []
    for s in scores:
        parent = tree.select()
        parents.append(parent)
        tree.add(parent, model=tree.choose_model(parent), score=s, answer=str(s))
    return parents


def test_first_expansion_is_under_the_root_and_scores_back_propagate() -> None:
    tree = Tree(branching_factor=3, rng=random.Random(1))
    assert tree.select() == 0
    a = tree.add(0, model=0, score=0.25)
    b = tree.add(a, model=0, score=1.0)
    root, na, nb = tree.nodes[0], tree.nodes[a], tree.nodes[b]
    assert (na.alpha, na.beta) == (1 + 0.25 + 1.0, 1 + 0.75 + 0.0)
    assert (nb.alpha, nb.beta) == (2.0, 1.0)
    assert (root.gen_alpha, root.gen_beta) == (1.25, 1.75)
    assert root.children == [a] and na.children == [b] and nb.depth == 2
    assert tree.best() == b


def test_scores_are_clamped_into_the_unit_interval() -> None:
    """Out-of-range, NaN and negative-zero scores count as 1 or 0 (a judge's odd reply
    never breaks the posteriors; the refine prompt never reads "-0.00")."""
    tree = Tree(branching_factor=5, rng=random.Random(1))
    added = [tree.add(0, model=0, score=s) for s in (1.5, float("nan"), -0.0, -2.0, 0.5)]
    got = [tree.nodes[i].score for i in added]
    assert got == [1.0, 0.0, 0.0, 0.0, 0.5]
    assert str(tree.nodes[added[2]].score) == "0.0"
    root = tree.nodes[0]
    assert (root.gen_alpha, root.gen_beta) == (1.0 + 1.5, 1.0 + 3.5)
    assert tree.best() == added[0]


def test_same_seed_same_tree() -> None:
    scores = [0.1, 0.7, 0.3, 0.9, 0.2, 0.6, 0.4, 0.8, 0.5, 0.05] * 2
    one = _grow(Tree(branching_factor=3, rng=random.Random(7)), scores)
    two = _grow(Tree(branching_factor=3, rng=random.Random(7)), scores)
    assert one == two


def test_branching_factor_bounds_every_node() -> None:
    tree = Tree(branching_factor=2, rng=random.Random(3))
    _grow(tree, [0.5] * 40)
    assert max(len(n.children) for n in tree.nodes) <= 2
    assert max(n.depth for n in tree.nodes) >= 3  # full rows push the search deeper


def test_good_branches_are_refined_more_than_bad_ones() -> None:
    tree = Tree(branching_factor=3, rng=random.Random(11))
    good = tree.add(0, model=0, score=0.9)
    bad = tree.add(0, model=0, score=0.05)
    tree.add(0, model=0, score=0.1)
    picks = []
    for _ in range(60):
        parent = tree.select()
        picks.append(parent)
        under_good = parent == good or _ancestor(tree, good, parent)
        tree.add(parent, model=0, score=0.9 if under_good else 0.05)
    assert sum(p == good or _ancestor(tree, good, p) for p in picks) > 40
    assert sum(p == bad or _ancestor(tree, bad, p) for p in picks) < 10


def _ancestor(tree: Tree, a: int, n: int) -> bool:
    at = tree.nodes[n].parent
    while at is not None:
        if at == a:
            return True
        at = tree.nodes[at].parent
    return False


def test_failed_answers_are_isolated() -> None:
    tree = Tree(branching_factor=3, rng=random.Random(5))
    failed = tree.add(0, model=0, score=0.99, failed=True)
    assert tree.nodes[failed].score == 0.0
    assert tree.best() is None
    for _ in range(30):
        parent = tree.select()
        assert parent != failed and not _ancestor(tree, failed, parent)
        tree.add(parent, model=0, score=0.5)
    assert tree.nodes[failed].children == []


def test_model_choice_learns_per_branch() -> None:
    tree = Tree(branching_factor=50, models=2, rng=random.Random(2))
    for _ in range(20):  # under the root model 1 always wins, model 0 always fails
        m = tree.choose_model(0)
        tree.add(0, model=m, score=1.0 if m == 1 else 0.0)
    picks = [tree.choose_model(0) for _ in range(50)]
    assert picks.count(1) > 40
    # a child inherits what its branch learned
    child = tree.nodes[0].children[0]
    assert [tree.choose_model(child) for _ in range(50)].count(1) > 40


# --- the client's event parser ----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["dragoman.", "tako."])
def test_client_parses_orchestrator_events_of_both_styles(prefix: str) -> None:
    from dragoman.agents import client

    frames = (
        f'event: {prefix}verifier_score\ndata: {{"step": 1, "branch": 2, "score": 0.5}}\n\n'
        f'event: {prefix}recursion\ndata: {{"depth": 2, "confidence": 0.25}}\n\n'
        f'event: {prefix}tool_call_start\ndata: {{"id": "step0-0", "name": "worker:code", '
        f'"args": {{"task": "t"}}, "step": 0}}\n\n'
        f'event: {prefix}tool_call_result\ndata: {{"id": "step0-0", "name": "worker:code", '
        f'"result": "ok", "is_error": false}}\n\n'
        f'event: {prefix}candidate_delta\ndata: {{"step": 3, "branch": 1, "delta": "x"}}\n\n'
        'data: {"choices": []}\n\n').encode()
    assert list(client.iter_events(frames)) == [
        client.VerifierScore(step=1, branch=2, score=0.5),
        client.Recursion(depth=2, confidence=0.25),
        client.ToolCallStart(id="step0-0", name="worker:code", args={"task": "t"}, step=0),
        client.ToolCallResult(id="step0-0", name="worker:code", result="ok", is_error=False),
        client.CandidateDelta(step=3, branch=1, delta="x"),
    ]


@pytest.mark.parametrize(("a", "b"), [(1.0, 1.0), (1.0, 3.5), (2.5, 1.0), (1.5, 1.25),
                                      (3.5, 2.5), (2.25, 9.5), (30.0, 4.0), (0.5, 0.5)])
def test_beta_draws_have_the_beta_mean_and_variance(a: float, b: float) -> None:
    from statistics import fmean, pvariance

    from dragoman.agents.beta_draw import beta_draw

    rng = random.Random(3)
    xs = [beta_draw(rng, a, b) for _ in range(40000)]
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert all(0.0 <= x <= 1.0 for x in xs)
    assert abs(fmean(xs) - mean) < 0.01
    assert abs(pvariance(xs) - var) < 0.1 * var
