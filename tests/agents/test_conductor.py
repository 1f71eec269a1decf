"""Conductor end to end: served by ``serve_openai`` over a real socket, its coordinator and
workers being models of a scripted OpenAI upstream. Event kinds, order and numbers, the
answer (streamed == not streamed), usage sums, malformed plans, unknown workers with and
without fail_fast, timeouts that also cover a worker stalled before its first byte,
``sees``, self-recursion, and tako-named events
(cancellation: ``test_orchestrator_cancel``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

from dragoman import Conductor, verifiers
from dragoman.agents.client import (
    CandidateDelta,
    Step,
    ToolCallResult,
    ToolCallStart,
    VerifierScore,
)
from dragoman.core import UpstreamError
from tests.fakes.scripted import Reply, ScriptedUpstream, last_user

from .orchestration import Streamed, claude_model, kinds, model, post, served, settled, stream

CODE = "def merge_sort(xs): return sorted(xs)"
MATH = "T(n) = 2T(n/2) + n, so O(n log n)."
FINAL = "Merge sort is implemented and runs in O(n log n)."


def plan(*dispatch: dict[str, Any], thought: str = "split the job") -> str:
    return json.dumps({"thought": thought, "dispatch": list(dispatch), "halt": False})


def halt(answer: str = FINAL) -> str:
    return json.dumps({"halt": True, "final_answer": answer})


BASIC = [plan({"worker": "code", "task": "write merge sort"},
              {"worker": "math", "task": "give its complexity"}), halt()]


def conductor(fake: ScriptedUpstream, coordinator: Any, **kw: Any) -> Conductor:
    fake.reset({"coord": coordinator, "coder": [CODE], "mathy": [MATH],
                **kw.pop("scripts", {})})
    workers = {"code": model(fake, "coder"), "math": model(fake, "mathy"),
               **kw.pop("workers", {})}
    return Conductor(model(fake, "coord"), workers, name="orch", **kw)


async def streamed_and_plain(fake: ScriptedUpstream, orch: Conductor,
                             prompt: str) -> tuple[Streamed, ChatCompletion]:
    """The run streamed, then (the same script again) its answer unstreamed."""
    async with served(orch) as base:
        got = await stream(base, prompt)
        fake.reset()
        plain = await openai.AsyncOpenAI(base_url=base + "/v1", api_key="x").chat \
            .completions.create(model="orch", messages=[{"role": "user", "content": prompt}])
    return got, plain


async def test_dispatch_then_halt_streams_events_in_order(fake: ScriptedUpstream) -> None:
    orch = conductor(fake, BASIC, verifier=verifiers.RuleBased(min_chars=20))
    got, plain = await streamed_and_plain(fake, orch, "implement merge sort and analyse it")
    assert got.text == FINAL == plain.choices[0].message.content
    ev = got.events
    # turn 0: step, both dispatches first, then the workers' live text and partial scores,
    # then per worker in dispatch order its result and its final score; turn 1: halt.
    assert ev[0] == Step(index=0)
    assert ev[1] == ToolCallStart(id="step0-0", name="worker:code", step=0,
                                  args={"task": "write merge sort", "sees": [], "ref": 1})
    assert ev[2] == ToolCallStart(id="step0-1", name="worker:math", step=0,
                                  args={"task": "give its complexity", "sees": [], "ref": 2})
    live = ev[3:-5]
    assert {type(e) for e in live} == {CandidateDelta, VerifierScore}
    assert "".join(e.delta for e in live if isinstance(e, CandidateDelta)
                   and e.branch == 1) == CODE
    assert "".join(e.delta for e in live if isinstance(e, CandidateDelta)
                   and e.branch == 2) == MATH
    partial = [e for e in live if isinstance(e, VerifierScore)]
    assert partial and all(not e.final and e.step == 0 for e in partial)
    assert {e.branch for e in partial} == {1, 2}
    assert ev[-5:] == [
        ToolCallResult(id="step0-0", name="worker:code", result=CODE, is_error=False, step=0),
        VerifierScore(step=0, branch=1, score=1.0),
        ToolCallResult(id="step0-1", name="worker:math", result=MATH, is_error=False, step=0),
        VerifierScore(step=0, branch=2, score=1.0),
        Step(index=1)]
    # no phantom tool calls in the answer; usage = 2 coordinator + 2 worker calls
    assert not any('"tool_calls"' in d for n, d in got.frames if n is None)
    assert got.usage is not None
    assert (got.usage["prompt_tokens"], got.usage["completion_tokens"]) == (40, 20)
    assert plain.usage is not None and plain.usage.total_tokens == 60
    # the workers saw only their task; the coordinator got both results in one message
    assert [c.prompt for c in fake.calls("coder")][-1] == "write merge sort"
    second = fake.calls("coord")[1]
    assert "Worker results:\n- #1 code (task: \"write merge sort\"): " + CODE in second.prompt
    assert "- #2 math (task: \"give its complexity\"): " + MATH in second.prompt


async def test_python_api_result_and_usage(fake: ScriptedUpstream) -> None:
    orch = conductor(fake, BASIC)
    result = await orch.run("implement merge sort")
    assert (result.text, result.steps) == (FINAL, 2)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (40, 20)
    await orch.aclose()


async def test_malformed_plan_gets_one_corrective_retry(fake: ScriptedUpstream) -> None:
    fenced = "Here is my plan:\n```json\n" + halt("fenced answer") + "\n```"
    orch = conductor(fake, ["I think we should write code.", fenced], max_steps=2)
    result = await orch.run("go")
    assert (result.text, result.steps) == ("fenced answer", 2)
    retry = fake.calls("coord")[1].body["messages"]
    assert retry[-2] == {"role": "assistant", "content": "I think we should write code."}
    assert "could not be used as a plan" in retry[-1]["content"]
    assert "not valid JSON" in retry[-1]["content"]


async def test_two_malformed_plans_in_a_row_fail_clearly(fake: ScriptedUpstream) -> None:
    orch = conductor(fake, ["nope", "still nope"])
    async with served(orch) as base:
        for streamed in (False, True):
            # nothing but step starts happened yet: even a stream gets a real HTTP error
            r = await post(base, "go", stream=streamed)
            assert r.status_code == 502, r.text
            assert "no usable plan twice in a row" in r.json()["error"]["message"]


async def test_max_steps_counts_the_retries(fake: ScriptedUpstream) -> None:
    orch = conductor(fake, ["nope", plan({"worker": "code", "task": "t"})], max_steps=2)
    result = await orch.run("go")
    assert result.steps == 2 and result.stop_reason == "max_steps"
    assert result.text == CODE  # the last worker answer, not the raw plan


@pytest.mark.parametrize("fail_fast", [False, True])
async def test_unknown_worker(fake: ScriptedUpstream, fail_fast: bool) -> None:
    orch = conductor(fake, [plan({"worker": "poet", "task": "a poem"},
                                 {"worker": "code", "task": "code"}), halt("done")],
                     fail_fast=fail_fast)
    async with served(orch) as base:
        got = await stream(base, "go")
    results = [e for e in got.events if isinstance(e, ToolCallResult)]
    assert results[0] == ToolCallResult(id="step0-0", name="worker:poet",
                                        result="unknown worker `poet`", is_error=True, step=0)
    if fail_fast:
        assert got.text == ""
        err = json.loads(got.frames[-2][1])["error"]
        assert "Conductor worker failed (fail_fast): #1 poet: unknown worker" in err["message"]
        assert len(fake.calls("coord")) == 1
    else:
        assert got.text == "done"
        assert results[1].result == CODE
        assert "- #1 poet (task: \"a poem\"): ERROR: unknown worker `poet`" in \
            fake.calls("coord")[1].prompt


@pytest.mark.parametrize("streamed", [True, False])
async def test_worker_timeout_covers_a_stall_before_the_first_byte(
        fake: ScriptedUpstream, streamed: bool) -> None:
    orch = conductor(fake, BASIC, worker_timeout=0.5,
                     scripts={"coder": [Reply(text=CODE, stall=5)]})
    async with served(orch) as base:
        t0 = time.monotonic()
        if streamed:
            got = await stream(base, "go")
            text = got.text
            result = next(e for e in got.events if isinstance(e, ToolCallResult))
            assert result.is_error and result.result == "worker timed out after 0.5s"
        else:
            r = await post(base, "go")
            text = r.json()["choices"][0]["message"]["content"]
        assert time.monotonic() - t0 < 4
    assert text == FINAL
    assert '- #1 code (task: "write merge sort"): ERROR: worker timed out after 0.5s' in \
        fake.calls("coord")[1].prompt
    # the stalled call was abandoned (its connection closed), not left waiting
    for _ in range(100):
        if fake.open == 0:
            break
        await asyncio.sleep(0.02)
    assert fake.open == 0


async def test_sees_chains_workers_and_shows_earlier_results(fake: ScriptedUpstream) -> None:
    orch = conductor(fake, [plan({"worker": "code", "task": "write merge sort"},
                                 {"worker": "math", "task": "analyse #1", "sees": [1]}),
                            halt()],
                     scripts={"coder": [Reply(text=CODE, gap=0.05)]})
    await orch.run("go")
    coder, mathy = fake.calls("coder")[0], fake.calls("mathy")[0]
    assert mathy.prompt == f"analyse #1\n\nResults you may use:\n\n#1 (code): {CODE}"
    assert mathy.started >= coder.started + 0.1  # it waited for #1 to finish


async def test_the_coordinator_may_dispatch_itself(fake: ScriptedUpstream) -> None:
    def coordinator(body: dict[str, Any]) -> str:
        text = last_user(body)
        if text == "prove it":  # the nested run's question
            return halt("nested proof")
        if text.startswith("Worker results:"):
            return halt("outer answer using: " + text.rsplit(": ", 1)[1])
        return plan({"worker": "self", "task": "prove it"})

    orch = conductor(fake, coordinator)
    assert "- self:" in orch.instructions(0) and "- self:" not in orch.instructions(1)
    result = await orch.run("go")
    assert result.text == "outer answer using: nested proof"
    assert len(fake.calls("coord")) == 3
    # the nested coordinator is not offered itself again (depth bound)
    assert "- self:" not in fake.calls("coord")[1].prompt


async def test_tako_named_events(fake: ScriptedUpstream) -> None:
    orch = conductor(fake, BASIC, verifier=verifiers.RuleBased(min_chars=20))
    async with served(orch, agents_events="tako") as base:
        got = await stream(base, "go")
    names = [n for n, _ in got.frames if n is not None]
    assert set(names) == {"tako.tool_call_start", "tako.tool_call_result",
                          "tako.verifier_score"}
    start = json.loads(next(d for n, d in got.frames if n == "tako.tool_call_start"))
    assert {"id", "name", "args"} <= start.keys() and start["name"] == "worker:code"
    score = json.loads(next(d for n, d in got.frames if n == "tako.verifier_score"))
    assert {"step", "branch", "score"} <= score.keys() and "final" not in score
    assert kinds(got.events)[0] == "ToolCallStart" and got.text == FINAL


async def test_models_on_both_vendor_wires(fake: ScriptedUpstream) -> None:
    """A coordinator on the Anthropic Messages wire, workers on both wires."""
    fake.reset({"coord": BASIC, "coder": [CODE], "mathy": [MATH]})
    orch = Conductor(claude_model(fake, "coord"), {"code": claude_model(fake, "coder"),
                                                   "math": model(fake, "mathy")}, name="orch")
    async with served(orch) as base:
        got = await stream(base, "go", ingress="messages")
    assert got.text == FINAL
    assert got.usage is not None and got.usage["output_tokens"] == 20
    assert [e.result for e in got.events if isinstance(e, ToolCallResult)] == [CODE, MATH]
    assert fake.calls("coord")[0].body["system"]  # the coordinator's instructions, Messages-style


def _content_deltas(got: Any) -> list[str]:
    return [ch["delta"]["content"] for name, data in got.frames
            if name is None and data != "[DONE]"
            for ch in json.loads(data).get("choices", []) if ch["delta"].get("content")]


@pytest.mark.parametrize(("answer", "reply", "deltas"), [
    # the prompt's order: the answer streams as the coordinator writes it, escapes and a
    # surrogate pair cut between deltas included
    ('Merge "sort" 😀\nis O(n log n).', lambda a: json.dumps({"halt": True, "final_answer": a}),
     "many"),
    # the answer before the halt flag: known only once the plan is parsed, one delta
    ("Merge sort, O(n log n).", lambda a: json.dumps({"final_answer": a, "halt": True}),
     "one"),
])
async def test_final_answer_streams_as_the_coordinator_writes_it(
        fake: ScriptedUpstream, answer: str, reply: Any, deltas: str) -> None:
    text = reply(answer)
    tokens = tuple(text[i:i + 3] for i in range(0, len(text), 3))
    script = [plan({"worker": "code", "task": "write merge sort"}),
              Reply(text=text, chunks=tokens)]
    got, plain = await streamed_and_plain(fake, conductor(fake, script),
                                          "implement merge sort")
    assert got.text == answer == plain.choices[0].message.content
    pieces = _content_deltas(got)
    if deltas == "many":
        assert len(pieces) > 5 and max(len(p) for p in pieces) <= 3
    else:
        assert pieces == [answer]


async def test_a_waiting_worker_gets_its_whole_timeout_from_its_own_start(
        fake: ScriptedUpstream) -> None:
    # #2 waits for #1 (~0.5 s), then answers after 0.6 s: within ITS 1 s, though past the
    # fan-out's (the workers that start at once share one deadline, a waiting one does not)
    orch = conductor(fake, [plan({"worker": "code", "task": "write merge sort"},
                                 {"worker": "math", "task": "analyse #1", "sees": [1]}),
                            halt()], worker_timeout=1.0,
                     scripts={"coder": [Reply(text=CODE, gap=0.25)],
                              "mathy": [Reply(text=MATH, stall=0.6)]})
    result = await orch.run("go")
    assert result.text == FINAL
    coord = fake.calls("coord")[1].prompt
    assert f'- #1 code (task: "write merge sort"): {CODE}' in coord
    assert f'- #2 math (task: "analyse #1"): {MATH}' in coord
    assert fake.calls("mathy")[0].started >= fake.calls("coder")[0].started + 0.4


# --- a quiet run (``run()``, ``complete()``) runs a plan's first task in the Conductor's own
# task and the others as tasks: timeouts, fail_fast and cancellation as for the others ---


async def _closed(fake: ScriptedUpstream) -> None:
    """Every upstream call was closed (an abandoned one is not left waiting)."""
    for _ in range(100):
        if fake.open == 0:
            break
        await asyncio.sleep(0.02)
    assert fake.open == 0


@pytest.mark.parametrize("stalled", ["code", "math"])
async def test_quiet_run_times_out_the_inline_and_the_parallel_worker(
        fake: ScriptedUpstream, stalled: str) -> None:
    # "code" is the plan's first task (run inline), "math" the one started as a task
    stall = {"code": "coder", "math": "mathy"}[stalled]
    answer = {"code": CODE, "math": MATH}
    orch = conductor(fake, BASIC, worker_timeout=0.5,
                     scripts={stall: [Reply(text=answer[stalled], stall=5)]})
    baseline = asyncio.all_tasks()
    t0 = time.monotonic()
    result = await orch.run("go")
    assert time.monotonic() - t0 < 4
    assert result.text == FINAL
    coord = fake.calls("coord")[1].prompt
    task = {"code": "write merge sort", "math": "give its complexity"}
    assert (f'- #{1 if stalled == "code" else 2} {stalled} (task: "{task[stalled]}"): '
            "ERROR: worker timed out after 0.5s") in coord
    other = "math" if stalled == "code" else "code"
    assert f'{other} (task: "{task[other]}"): {answer[other]}' in coord
    await _closed(fake)
    assert await settled(baseline) == set(), "tasks left running"
    # the Conductor's task is not left cancelled: it goes on (and can be cancelled again)
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_quiet_run_times_out_a_plan_of_one_task(fake: ScriptedUpstream) -> None:
    # no task at all: the deadline is armed at the loop's next turn (the worker waiting)
    orch = conductor(fake, [plan({"worker": "code", "task": "write merge sort"}), halt()],
                     worker_timeout=0.5, scripts={"coder": [Reply(text=CODE, stall=5)]})
    t0 = time.monotonic()
    result = await orch.run("go")
    assert time.monotonic() - t0 < 4 and result.text == FINAL
    assert '- #1 code (task: "write merge sort"): ERROR: worker timed out after 0.5s' in \
        fake.calls("coord")[1].prompt
    await _closed(fake)


@pytest.mark.parametrize("failing", ["inline", "task"])
async def test_quiet_run_fails_fast(fake: ScriptedUpstream, failing: str) -> None:
    # the unknown worker fails at once; the other one stalls: it is cancelled (in the
    # Conductor's task when it runs inline, its own task otherwise) and the run fails
    slow = {"worker": "code", "task": "write merge sort"}
    unknown = {"worker": "poet", "task": "a poem"}
    first, second = (unknown, slow) if failing == "inline" else (slow, unknown)
    orch = conductor(fake, [plan(first, second), halt()], fail_fast=True,
                     scripts={"coder": [Reply(text=CODE, stall=5)]})
    baseline = asyncio.all_tasks()
    t0 = time.monotonic()
    with pytest.raises(UpstreamError) as e:
        await orch.run("go")
    assert time.monotonic() - t0 < 4
    # the first failed task in dispatch order is named (as in a stream)
    if failing == "inline":
        assert "#1 poet: unknown worker `poet`" in str(e.value)
    else:
        assert "#1 code: cancelled: another worker failed (fail_fast)" in str(e.value)
    assert len(fake.calls("coord")) == 1
    await _closed(fake)
    assert await settled(baseline) == set(), "tasks left running"
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_quiet_run_fails_fast_on_a_task_workers_upstream_error(
        fake: ScriptedUpstream) -> None:
    orch = conductor(fake, BASIC, fail_fast=True,
                     scripts={"coder": [Reply(text=CODE, stall=5)],
                              "mathy": [Reply(status=500)]})
    t0 = time.monotonic()
    with pytest.raises(UpstreamError, match="cancelled: another worker failed"):
        await orch.run("go")
    assert time.monotonic() - t0 < 4
    await _closed(fake)


@pytest.mark.parametrize("plan_of", [1, 2])
async def test_cancelling_a_quiet_run_leaves_nothing_behind(fake: ScriptedUpstream,
                                                            plan_of: int) -> None:
    dispatch = [{"worker": "code", "task": "write merge sort"},
                {"worker": "math", "task": "give its complexity"}][:plan_of]
    orch = conductor(fake, [plan(*dispatch), halt()],
                     scripts={"coder": [Reply(text=CODE, stall=5)],
                              "mathy": [Reply(text=MATH, stall=5)]})
    baseline = asyncio.all_tasks()
    running = asyncio.create_task(orch.run("go"))
    for _ in range(200):
        if len(fake.calls()) == 1 + plan_of:
            break
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await _closed(fake)
    assert all(c.closed_early for c in fake.calls() if c.model in ("coder", "mathy"))
    assert await settled(baseline) == set(), "tasks left running"


async def test_a_cancellation_from_outside_wins_over_the_plans_own(
        fake: ScriptedUpstream) -> None:
    # the deadline of the inline task and a cancellation of the run at the same moment:
    # the deadline's cancellation is taken back, the outer one still ends the run
    orch = conductor(fake, BASIC, worker_timeout=0.3,
                     scripts={"coder": [Reply(text=CODE, stall=5)]})
    running = asyncio.create_task(orch.run("go"))
    loop = asyncio.get_running_loop()
    for _ in range(200):
        if fake.calls("coder"):
            break
        await asyncio.sleep(0.01)
    handles = sorted(loop._scheduled, key=lambda h: h.when())  # type: ignore[attr-defined]
    deadline = next(h for h in handles if "RunClock._fire" in repr(h) and not h.cancelled())
    loop.call_at(deadline.when(), running.cancel)  # runs right after the deadline
    with pytest.raises(asyncio.CancelledError):
        await running
    await _closed(fake)


@pytest.mark.parametrize("streamed", [True, False])
async def test_each_plan_gets_its_whole_timeout_on_the_runs_one_timer(
        fake: ScriptedUpstream, streamed: bool) -> None:
    # the run's one timer is made by the first plan (due at its deadline) and moves on to
    # each later plan's: plan 2's slow worker (0.45 s) ends past plan 1's deadline but
    # within its own 0.7 s; plan 3's stalled worker times out 0.7 s after ITS start
    step = plan({"worker": "code", "task": "write merge sort"},
                {"worker": "math", "task": "give its complexity"})
    orch = conductor(fake, [step, step, plan({"worker": "code", "task": "again"}), halt()],
                     worker_timeout=0.7,
                     scripts={"coder": [Reply(text=CODE, stall=0.45), Reply(text=CODE,
                                                                             stall=0.45),
                                        Reply(text=CODE, stall=5)]})
    baseline = asyncio.all_tasks()
    if streamed:
        async with served(orch) as base:
            t0 = time.monotonic()
            text = (await stream(base, "go")).text
            took = time.monotonic() - t0
    else:
        t0 = time.monotonic()
        text = (await orch.run("go")).text
        took = time.monotonic() - t0
    assert text == FINAL and took < 4.5
    coord = [c.prompt for c in fake.calls("coord")]
    assert f'- #1 code (task: "write merge sort"): {CODE}' in coord[1]
    assert f'- #3 code (task: "write merge sort"): {CODE}' in coord[2]
    assert '- #5 code (task: "again"): ERROR: worker timed out after 0.7s' in coord[3]
    third = fake.calls("coder")[2].started
    assert fake.calls("coord")[3].started - third >= 0.65
    await _closed(fake)
    assert await settled(baseline) == set(), "tasks left running"
