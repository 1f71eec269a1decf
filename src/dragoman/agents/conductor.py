"""``Conductor``: a coordinator model plans, workers (models or orchestrators, keyed by
role) do the work, the coordinator writes the answer from their results (Sakana AI's
Conductor, arXiv 2512.04388).

Each coordinator turn is one step. The coordinator replies with a plan
(``conductor_plan``); every dispatched task gets the next result number and runs on its
worker, concurrently up to ``max_fanout``. A worker reads only its task and the earlier
results its ``sees`` list names (a task that sees a result of the same plan waits for it,
so a plan can chain steps). ``self`` is a worker too while ``max_depth`` allows: a nested
Conductor run on the task (recursive test-time scaling). When all tasks of the turn are
done, their results go back to the coordinator as one message. The run ends when the
coordinator halts (its ``final_answer`` is the answer), or after ``max_steps`` turns
(the last worker result is the answer, stop reason ``max_steps``).

A malformed plan gets ONE corrective retry (it counts as a turn); a second malformed plan
in a row fails the run. ``worker_timeout`` bounds each worker's whole call, stream opening
included (tako's streaming path only bounds reading). ``fail_fast``: the first failed
worker cancels the others and fails the run once the turn's results are reported.
``verifier`` (optional) scores each worker's output against its task, live on partial
text and once at the end; scores are reported, they do not steer.

What a client sees, in order, per turn: ``dragoman.step``; for every task a
``dragoman.tool_call_start {id: "step<t>-<i>", name: "worker:<role>", args: {task, sees,
ref}}``; the workers' text as ``dragoman.candidate_delta {step, branch: i+1}`` and partial
``verifier_score``s as they stream; then, in dispatch order, ``tool_call_result`` and its
final ``verifier_score``. The answer (``final_answer``) is the only content; it streams
as the coordinator writes it when the halting reply puts ``"halt": true`` before it (as
its prompt shows; ``final_answer_stream``), else in one delta at the halt. Usage sums
the coordinator's, every worker's and every judge's calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core import (
    AgentToolCall,
    AgentToolResult,
    CandidateDelta,
    ChatRequest,
    DragomanError,
    Message,
    RequestContext,
    StepStart,
    StopReason,
    StreamEvent,
    TextDelta,
    UpstreamError,
    Usage,
    VerifierScore,
)
from ..providers.base import LlmProvider
from ..providers.legacy import with_context
from .conductor_plan import Dispatch, Plan, PlanError, parse_plan, short
from .final_answer_stream import FinalAnswerStream
from .judging import PartialScores, Scorer
from .orchestrator import (
    ENDED_EARLY,
    Orchestrator,
    RunState,
    Turn,
    assistant,
    close_stream,
    inner_request,
    relay,
    user,
)
from .tasks import Inbox, cancel_unfinished

SELF = "self"

COORDINATOR_PROMPT = """\
You are the coordinator of a team of workers. You do not do the work yourself: you plan, \
the workers do it, and you write the final answer from their results.

Reply with exactly one JSON object and nothing else (no prose, no Markdown):
{{"thought": "<short reasoning>",
 "dispatch": [{{"worker": "<worker>", "task": "<complete instructions>",
               "sees": [<result numbers>]}}],
 "halt": false}}

Workers:
{workers}

Every task you dispatch gets the next result number (#1, #2, ... over the whole \
conversation). A worker reads ONLY its task and the results listed in its "sees" (or \
"all"); a task that sees a result of the same plan waits for it. Tasks without such a \
dependency run in parallel. The results come back to you in one message.
When the request is fully handled, reply {{"halt": true, "final_answer": "<the complete \
answer for the user>"}}."""

SELF_WORKER = ("- self: another coordinator like you with its own team, for a hard "
               "sub-problem")

CORRECTION = ("Your reply could not be used as a plan: {error}. Reply with exactly one "
              "valid JSON object as described, nothing else.")

NUDGE = ("Your plan dispatched no worker and did not halt. Dispatch workers, or halt with "
         "the final answer.")


@dataclass(slots=True)
class _Outcome:
    """A dispatched task's result (``expired``: its time ran out)."""

    ref: int
    role: str
    task: str
    text: str = ""
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    expired: bool = False


def _expire(running: list[tuple[asyncio.Task[Any], _Outcome]]) -> None:
    """A deadline passed: cancel the tasks still running, marked as timed out."""
    for task, out in running:
        if not task.done():
            out.expired = True
            task.cancel()


class _Nested(Orchestrator):
    """The ``self`` worker: this Conductor one level deeper, as a provider."""

    def __init__(self, conductor: Conductor, depth: int) -> None:
        super().__init__(name=conductor.name, providers=(), owns_providers=False)
        self._conductor = conductor
        self._depth = depth

    def _run(self, req: ChatRequest, run: RunState) -> AsyncGenerator[StreamEvent, None]:
        return self._conductor._conduct(req, run, self._depth)


class Conductor(Orchestrator):
    """See the module docstring. ``workers``: role → model or orchestrator."""

    def __init__(self, coordinator: LlmProvider, workers: Mapping[str, LlmProvider], *,
                 max_steps: int = 6, max_fanout: int = 4, worker_timeout: float | None = 120.0,
                 fail_fast: bool = False, verifier: Scorer | None = None,
                 max_depth: int = 1, name: str = "conductor",
                 owns_providers: bool = True) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if max_fanout < 1:
            raise ValueError("max_fanout must be at least 1")
        if not workers:
            raise ValueError("a Conductor needs at least one worker")
        if SELF in workers:
            raise ValueError(f"{SELF!r} is the coordinator itself, not a worker role")
        super().__init__(name=name, providers=[coordinator, *workers.values()],
                         owns_providers=owns_providers)
        self.coordinator = coordinator
        self.workers = dict(workers)
        self.max_steps = max_steps
        self.max_fanout = max_fanout
        self.worker_timeout = worker_timeout
        self.fail_fast = fail_fast
        self.verifier = verifier
        self.max_depth = max_depth
        #: coordinator and workers as the current protocol (``stream(req, ctx)``), looked
        #: at once here rather than on every call
        self._coordinator = with_context(coordinator)
        self._streams = {role: with_context(p) for role, p in self.workers.items()}
        #: the coordinator's system text, without and with the ``self`` worker (written
        #: once: it is the same for every run)
        self._prompts = (self._prompt(with_self=False), self._prompt(with_self=True))

    def __repr__(self) -> str:
        return (f"Conductor(name={self.name!r}, workers={sorted(self.workers)!r}, "
                f"max_steps={self.max_steps})")

    def instructions(self, depth: int) -> str:
        """The coordinator's system text at ``depth`` (0: the outermost run)."""
        return self._prompts[depth < self.max_depth]

    def _prompt(self, *, with_self: bool) -> str:
        lines = [f"- {role} (model: {getattr(p, 'name', '?')})"
                 for role, p in sorted(self.workers.items())]
        if with_self:
            lines.append(SELF_WORKER)
        return COORDINATOR_PROMPT.format(workers="\n".join(lines))

    def _run(self, req: ChatRequest, run: RunState) -> AsyncGenerator[StreamEvent, None]:
        return self._conduct(req, run, 0)

    async def _conduct(self, req: ChatRequest, run: RunState,
                       depth: int) -> AsyncGenerator[StreamEvent, None]:
        messages: list[Message] = list(req.messages)
        results: dict[int, _Outcome] = {}
        last_error: PlanError | None = None
        last_answer = ""
        system = self.instructions(depth)
        for step in range(self.max_steps):
            if run.events:
                yield StepStart(index=step)
            run.steps += 1
            turn = Turn()
            answer_stream = FinalAnswerStream()
            coordinating = relay(self._coordinator, inner_request(req, messages, system=system),
                                 turn, ctx=run.ctx)
            try:
                async for ev in coordinating:
                    # a plan streams nothing; a halting reply's final_answer streams as
                    # the coordinator writes it
                    assert isinstance(ev, TextDelta)
                    if ev.text and (new := answer_stream.feed(ev.text)):
                        yield TextDelta(text=new)
            finally:
                await coordinating.aclose()
            run.add(turn.usage)
            messages.append(assistant(turn.text))
            try:
                plan = parse_plan(turn.text)
            except PlanError as e:
                if answer_stream.streamed:
                    raise UpstreamError(f"the coordinator's final answer streamed, then "
                                        f"its reply was no plan: {e}") from None
                if last_error is not None:
                    raise UpstreamError(f"the coordinator wrote no usable plan twice in a "
                                        f"row: {e}") from None
                last_error = e
                messages.append(user(CORRECTION.format(error=e)))
                continue
            last_error = None
            if plan.halt:
                answer = plan.final_answer or last_answer or turn.text
                streamed = answer_stream.streamed
                if not answer.startswith(streamed):  # cannot be: the same string, parsed
                    raise UpstreamError("the coordinator's streamed final answer differs "
                                        "from its plan's")
                if answer[len(streamed):]:
                    yield TextDelta(text=answer[len(streamed):])
                return
            if answer_stream.streamed:
                raise UpstreamError("the coordinator's final answer streamed, then its "
                                    "plan did not halt")
            if not plan.dispatch:
                messages.append(user(NUDGE))
                continue
            outcomes: list[_Outcome] = []
            dispatching = self._dispatch(req, plan, step, depth, results, outcomes, run)
            try:
                async for ev in dispatching:
                    yield ev
            finally:
                await dispatching.aclose()
            ok = [o for o in outcomes if o.error is None]
            if ok:
                last_answer = ok[-1].text
            failed = [o for o in outcomes if o.error is not None]
            if self.fail_fast and failed:
                first = failed[0]
                raise UpstreamError(f"Conductor worker failed (fail_fast): #{first.ref} "
                                    f"{first.role}: {first.error}")
            messages.append(user(_results_message(outcomes)))
        run.stop_reason = StopReason.MAX_STEPS
        if last_answer:
            yield TextDelta(text=last_answer)

    async def _dispatch(self, req: ChatRequest, plan: Plan, step: int, depth: int,
                        results: dict[int, _Outcome], outcomes: list[_Outcome],
                        run: RunState) -> AsyncGenerator[StreamEvent, None]:
        """Run one plan's tasks; yields their events and fills ``outcomes`` (in dispatch
        order) and ``results`` (by number)."""
        events = run.events
        first_ref = len(results) + 1
        for i, d in enumerate(plan.dispatch):
            o = _Outcome(ref=first_ref + i, role=d.worker, task=d.task)
            outcomes.append(o)
            results[o.ref] = o
            if events:
                sees = d.sees if d.sees == "all" else list(d.sees)
                yield AgentToolCall(id=f"step{step}-{i}", name=f"worker:{d.worker}",
                                    step=step, args={"task": d.task, "sees": sees, "ref": o.ref})
        # a verifier that calls no model only makes the scores: with no one reading them,
        # skip it (one that calls a model still runs: its usage is part of the answer's)
        verifier = self.verifier
        if not events and not getattr(verifier, "calls_model", True):
            verifier = None
        inbox: Inbox[StreamEvent | int] = Inbox()
        seen = [_seen(d, o.ref, results) for d, o in zip(plan.dispatch, outcomes, strict=True)]
        # an Event only for a result a later task of this plan waits for
        done = {o.ref: asyncio.Event() for later in seen for o in later if o.ref >= first_ref}
        # the semaphore only when the plan dispatches more than may run at once
        fanout = (asyncio.Semaphore(self.max_fanout) if len(outcomes) > self.max_fanout
                  else None)
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        at_once: list[tuple[asyncio.Task[None], _Outcome]] = []
        for i, d in enumerate(plan.dispatch):
            # a task that waits for nothing starts its call now: those share ONE deadline
            # (a timer for the fan-out, not an asyncio.timeout per worker); one that waits
            # (for a result it sees, for a fan-out slot) starts its own clock when it may
            waits = fanout is not None or any(o.ref in done for o in seen[i])
            task = loop.create_task(self._work(req, run.ctx, step, i, d, outcomes[i],
                                               seen[i], depth, done, fanout, inbox, events,
                                               verifier, waits))
            tasks.append(task)
            if not waits:
                at_once.append((task, outcomes[i]))
        deadline = (loop.call_later(self.worker_timeout, _expire, at_once)
                    if at_once and self.worker_timeout is not None else None)
        try:
            finished = 0
            while finished < len(tasks):
                item = inbox.ready()
                if item is None:
                    item = await inbox.get()
                if not isinstance(item, int):
                    yield item
                    continue
                finished += 1
                if self.fail_fast and outcomes[item].error is not None:
                    for o, t in zip(outcomes, tasks, strict=True):
                        if not t.done():
                            t.cancel()
                            o.error = "cancelled: another worker failed (fail_fast)"
                    break
        finally:
            if deadline is not None:
                deadline.cancel()
            await cancel_unfinished(tasks)
        for i, o in enumerate(outcomes):
            run.add(o.usage)
            if o.error is not None:
                if events:
                    yield AgentToolResult(id=f"step{step}-{i}", name=f"worker:{o.role}",
                                          result=o.error, is_error=True, step=step)
                continue
            if events:
                yield AgentToolResult(id=f"step{step}-{i}", name=f"worker:{o.role}",
                                      result=o.text, step=step)
            if verifier is not None:
                judged = await verifier.score(o.task, o.text, run.ctx)
                run.add(judged.usage)
                if events:
                    yield VerifierScore(step=step, branch=i + 1, score=judged.score)

    async def _work(self, req: ChatRequest, ctx: RequestContext, step: int, i: int,
                    d: Dispatch, out: _Outcome, seen: list[_Outcome], depth: int,
                    done: dict[int, asyncio.Event], fanout: asyncio.Semaphore | None,
                    inbox: Inbox[StreamEvent | int], events: bool,
                    verifier: Scorer | None, own_clock: bool) -> None:
        """One task: wait for the results it sees from this plan, then call its worker
        (bounded by the fan-out and the timeout: the fan-out's deadline, or with
        ``own_clock`` one from when the call starts). Never raises but on cancellation."""
        try:
            for o in seen:
                if o.ref in done:
                    await done[o.ref].wait()
            worker = self._worker(d.worker, depth)
            if worker is None:
                out.error = f"unknown worker `{d.worker}`"
                return
            prompt = _worker_prompt(d.task, seen)
            if fanout is not None:
                await fanout.acquire()
            clock = None
            try:
                if own_clock and self.worker_timeout is not None:
                    me = asyncio.current_task()
                    assert me is not None  # a task of _dispatch's
                    clock = asyncio.get_running_loop().call_later(
                        self.worker_timeout, _expire, [(me, out)])
                await self._call_worker(worker, req, ctx, prompt, step, i, out, inbox,
                                        events, verifier)
            except asyncio.CancelledError:
                if not out.expired:
                    raise
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                out.error = f"worker timed out after {self.worker_timeout:g}s"
            except DragomanError as e:
                out.error = f"{e.kind.value}: {e}"
            finally:
                if clock is not None:
                    clock.cancel()
                if fanout is not None:
                    fanout.release()
        finally:
            if out.ref in done:
                done[out.ref].set()
            inbox.put(i)

    async def _call_worker(self, worker: LlmProvider, req: ChatRequest, ctx: RequestContext,
                           prompt: str, step: int, i: int, out: _Outcome,
                           inbox: Inbox[StreamEvent | int], events: bool,
                           verifier: Scorer | None) -> None:
        # the worker's stream read here rather than through ``relay``: one async generator
        # less per call (this coroutine already is the layer between worker and inbox)
        turn = Turn()
        scores = (PartialScores(verifier, out.task, step, i + 1, ctx) if verifier is not None
                  else None)
        parts: list[str] = []
        stream = worker.stream(inner_request(req, [user(prompt)], keep_system=False), ctx)
        try:
            async for ev in stream:
                if not isinstance(ev, TextDelta):
                    if turn.absorb(ev):
                        break
                    continue
                if not ev.text:
                    continue
                parts.append(ev.text)
                if events:
                    inbox.put(CandidateDelta(step=step, branch=i + 1, delta=ev.text))
                if scores is not None:
                    partial = await scores.feed(ev.text)
                    if partial is not None and events:
                        inbox.put(partial)
        finally:
            turn.text = "".join(parts)
            await close_stream(stream)
            out.usage = turn.usage if scores is None else turn.usage + scores.usage
        if turn.stop_reason is None:
            raise UpstreamError(ENDED_EARLY)
        if turn.stop_reason not in (StopReason.END_TURN, StopReason.STOP_SEQUENCE):
            out.error = f"the worker stopped: {turn.stop_reason}"
        out.text = turn.text

    def _worker(self, role: str, depth: int) -> LlmProvider | None:
        if role == SELF:
            return with_context(_Nested(self, depth + 1)) if depth < self.max_depth else None
        return self._streams.get(role)


def _seen(d: Dispatch, ref: int, results: Mapping[int, _Outcome]) -> list[_Outcome]:
    """The earlier results a task may read (only earlier numbers: no task waits for a
    later one, so dependencies cannot form a cycle)."""
    refs = range(1, ref) if d.sees == "all" else sorted({r for r in d.sees if 0 < r < ref})
    return [results[r] for r in refs if r in results]


def _worker_prompt(task: str, seen: list[_Outcome]) -> str:
    if not seen:
        return task
    shown = "\n\n".join(f"#{o.ref} ({o.role}): " + (o.text if o.error is None
                                                     else f"ERROR: {o.error}")
                        for o in seen)
    return f"{task}\n\nResults you may use:\n\n{shown}"


def _results_message(outcomes: list[_Outcome]) -> str:
    lines = ["Worker results:"]
    for o in outcomes:
        body = o.text if o.error is None else f"ERROR: {o.error}"
        lines.append(f"- #{o.ref} {o.role} (task: \"{short(o.task)}\"): {body}")
    return "\n".join(lines)
