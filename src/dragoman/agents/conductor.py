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

import msgspec

from ..core import (
    AgentToolCall,
    AgentToolResult,
    CandidateDelta,
    ChatRequest,
    DragomanError,
    Message,
    StepStart,
    StopReason,
    StreamEvent,
    TextDelta,
    UpstreamError,
    VerifierScore,
)
from ..providers.base import LlmProvider
from ..providers.legacy import with_context
from .conductor_plan import Dispatch, Plan, PlanError, parse_plan, short
from .conductor_running import FAIL_FAST_CANCELLED, Job, Outcome, RunClock, Running, expire
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
    whole_turn,
)
from .tasks import cancel_unfinished

_replace = msgspec.structs.replace

SELF = "self"

#: what a coordinator reply that streams its final answer must hold
_FINAL_ANSWER = '"final_answer"'

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
        #: the verifier of a run no one streams: one that calls no model only makes scores
        #: no one reads (skipped); one that calls a model still runs (its usage counts)
        self._quiet_verifier = verifier if getattr(verifier, "calls_model", True) else None
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
        results: dict[int, Outcome] = {}
        last_error: PlanError | None = None
        last_answer = ""
        # the requests, made once: the coordinator's holds ``messages``, which grows in
        # place; a worker's gets its own prompt
        coordinator_req = inner_request(req, messages, system=self.instructions(depth))
        worker_req = inner_request(req, [], keep_system=False)
        # the deadline of every plan of this run, on one timer
        clock = RunClock()
        try:
            for step in range(self.max_steps):
                if run.events:
                    yield StepStart(index=step)
                run.steps += 1
                streamed = ""  # of the final answer, while the coordinator writes it
                if not run.events:  # no one reads deltas: the reply whole, fed at once
                    turn = whole_turn(await self._coordinator.complete(coordinator_req, run.ctx))
                    # (only a reply naming a final answer can stream one: a plan is not fed)
                    if _FINAL_ANSWER in turn.text and (
                            streamed := FinalAnswerStream().feed(turn.text)):
                        yield TextDelta(text=streamed)
                else:
                    answer_stream = FinalAnswerStream()
                    turn = Turn()
                    coordinating = relay(self._coordinator, coordinator_req, turn, ctx=run.ctx)
                    try:
                        async for ev in coordinating:
                            # a plan streams nothing; a halting reply's final_answer streams
                            # as the coordinator writes it
                            assert isinstance(ev, TextDelta)
                            if ev.text and (new := answer_stream.feed(ev.text)):
                                yield TextDelta(text=new)
                    finally:
                        await coordinating.aclose()
                    streamed = answer_stream.streamed
                run.add(turn.usage)
                messages.append(assistant(turn.text))
                try:
                    plan = parse_plan(turn.text)
                except PlanError as e:
                    if streamed:
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
                    if not answer.startswith(streamed):  # cannot be: the same string, parsed
                        raise UpstreamError("the coordinator's streamed final answer differs "
                                            "from its plan's")
                    if answer[len(streamed):]:
                        yield TextDelta(text=answer[len(streamed):])
                    return
                if streamed:
                    raise UpstreamError("the coordinator's final answer streamed, then its "
                                        "plan did not halt")
                if not plan.dispatch:
                    messages.append(user(NUDGE))
                    continue
                outcomes: list[Outcome] = []
                if not run.events:
                    await self._dispatch_quietly(worker_req, plan, step, depth, results,
                                                 outcomes, run, clock)
                else:
                    dispatching = self._dispatch(worker_req, plan, step, depth, results,
                                                 outcomes, run, clock)
                    try:
                        async for ev in dispatching:
                            yield ev
                    finally:
                        await dispatching.aclose()
                failed = None
                for o in outcomes:
                    if o.error is None:
                        last_answer = o.text
                    elif failed is None:
                        failed = o
                if self.fail_fast and failed is not None:
                    raise UpstreamError(f"Conductor worker failed (fail_fast): #{failed.ref} "
                                        f"{failed.role}: {failed.error}")
                messages.append(user(_results_message(outcomes)))
            run.stop_reason = StopReason.MAX_STEPS
            if last_answer:
                yield TextDelta(text=last_answer)
        finally:
            clock.close()

    def _start(self, req: ChatRequest, plan: Plan, step: int, depth: int,
               results: dict[int, Outcome], outcomes: list[Outcome], run: RunState,
               clock: RunClock, verifier: Scorer | None, inline: bool = False
               ) -> tuple[Running, Job, list[Outcome]]:
        """Start one plan's tasks (``req``: a worker's request, but for its messages).
        With ``inline`` (and no fan-out limit to wait for) the first task is not started
        but left for the caller to run in its own task (``running.inline``); what it
        sees is returned."""
        first_ref = outcomes[0].ref
        seen = [_seen(d, o.ref, results) if d.sees else _NOTHING
                for d, o in zip(plan.dispatch, outcomes, strict=True)]
        # an Event only for a result a later task of this plan waits for
        done = {o.ref: asyncio.Event() for later in seen for o in later if o.ref >= first_ref}
        # the semaphore only when the plan dispatches more than may run at once
        fanout = (asyncio.Semaphore(self.max_fanout) if len(outcomes) > self.max_fanout
                  else None)
        running = Running(clock)
        job = Job(req=req, ctx=run.ctx, step=step, depth=depth, done=done, fanout=fanout,
                   inbox=running.inbox, running=running, events=run.events,
                   verifier=verifier)
        loop = asyncio.get_running_loop()
        first = 0
        # the first task waits for nothing: it may run in the caller's task (if there is
        # one to cancel for it: not when a coroutine is driven by hand)
        if inline and fanout is None and (owner := asyncio.current_task()) is not None:
            first = 1
            running.inline = outcomes[0]
            running.owner = owner
        for i in range(first, len(outcomes)):
            # a task that waits for nothing starts its call now: those share ONE deadline
            # (a timer for the fan-out, not an asyncio.timeout per worker); one that waits
            # (for a result it sees, for a fan-out slot) starts its own clock when it may
            out = outcomes[i]
            waits = fanout is not None or (bool(done) and any(o.ref in done for o in seen[i]))
            task = loop.create_task(self._work(job, i, plan.dispatch[i], out, seen[i], waits))
            running.tasks.append(task)
            running.outs.append(out)
            if not waits:
                running.at_once.append((task, out))
        return running, job, seen[0]

    async def _dispatch(self, req: ChatRequest, plan: Plan, step: int, depth: int,
                        results: dict[int, Outcome], outcomes: list[Outcome],
                        run: RunState, clock: RunClock) -> AsyncGenerator[StreamEvent, None]:
        """Run one plan's tasks; yields their events (a client streams) and fills
        ``outcomes`` (in dispatch order) and ``results`` (by number)."""
        _number(plan, results, outcomes)
        for i, (d, o) in enumerate(zip(plan.dispatch, outcomes, strict=True)):
            sees = d.sees if d.sees == "all" else list(d.sees)
            yield AgentToolCall(id=f"step{step}-{i}", name=f"worker:{d.worker}",
                                step=step, args={"task": d.task, "sees": sees, "ref": o.ref})
        verifier = self.verifier
        running, _, _ = self._start(req, plan, step, depth, results, outcomes, run, clock,
                                    verifier)
        tasks, inbox = running.tasks, running.inbox
        try:
            await running.arm(self.worker_timeout)
            finished = 0
            while finished < len(tasks):
                item = inbox.ready()
                if item is None:
                    item = await inbox.get()
                if not isinstance(item, int):
                    yield item
                    continue
                finished += 1
                if self._fails_fast(item, outcomes, running):
                    break
        finally:
            if running.stop():
                await cancel_unfinished(tasks)
        for i, o in enumerate(outcomes):
            run.add(o.usage)
            if o.error is not None:
                yield AgentToolResult(id=f"step{step}-{i}", name=f"worker:{o.role}",
                                      result=o.error, is_error=True, step=step)
                continue
            yield AgentToolResult(id=f"step{step}-{i}", name=f"worker:{o.role}",
                                  result=o.text, step=step)
            if verifier is not None:
                judged = await verifier.score(o.task, o.text, run.ctx)
                run.add(judged.usage)
                yield VerifierScore(step=step, branch=i + 1, score=judged.score)

    async def _dispatch_quietly(self, req: ChatRequest, plan: Plan, step: int, depth: int,
                                results: dict[int, Outcome], outcomes: list[Outcome],
                                run: RunState, clock: RunClock) -> None:
        """``_dispatch`` when no one reads agent events (``run()``, ``complete()``): no
        events, no generator, only the verifier that calls a model (``_quiet_verifier``).
        The first task runs here, in the Conductor's own task, while the others run in
        theirs: a Task and a turn of the event loop less per plan (a plan of one task
        makes none); its deadline and a failed sibling with fail_fast cancel this task,
        and ``_work`` takes that cancellation back. It lets the others start their calls
        first (one turn of the loop: instant ones end in it), so that over a network the
        inline call, sent last, mostly ends last and this task does not wait again for
        the others (a future and a turn of the loop less)."""
        _number(plan, results, outcomes)
        verifier = self._quiet_verifier
        running, job, seen = self._start(req, plan, step, depth, results, outcomes, run,
                                         clock, verifier, inline=True)
        tasks, inbox = running.tasks, running.inbox
        try:
            if running.inline is None:
                await running.arm(self.worker_timeout)
            else:
                running.arm_now(self.worker_timeout)
                try:
                    await self._work(job, 0, plan.dispatch[0], outcomes[0], seen, False,
                                     inline=True)
                finally:
                    running.inline = None
                if running.stopped_inline:  # (the worker swallowed the cancellation)
                    running.stopped_inline = False
                    asyncio.Task.uncancel(running.owner)  # type: ignore[arg-type]
                if self._fails_fast(0, outcomes, running):
                    tasks = []  # (cancelled: none to wait for)
            for _ in tasks:  # only task numbers come: no one reads the events
                item = inbox.ready()
                if item is None:
                    item = await inbox.get()
                assert isinstance(item, int)
                if self._fails_fast(item, outcomes, running):
                    break
        finally:
            if running.stop():
                await cancel_unfinished(running.tasks)
        for o in outcomes:
            run.add(o.usage)
            if o.error is None and verifier is not None:
                run.add((await verifier.score(o.task, o.text, run.ctx)).usage)

    def _fails_fast(self, i: int, outcomes: list[Outcome], running: Running) -> bool:
        """Task ``i`` ended: with ``fail_fast`` and an error, cancel the others (True)."""
        if not self.fail_fast or outcomes[i].error is None:
            return False
        for o, t in zip(running.outs, running.tasks, strict=True):
            if not t.done():
                t.cancel()
                o.error = FAIL_FAST_CANCELLED
        return True

    async def _work(self, job: Job, i: int, d: Dispatch, out: Outcome,
                    seen: list[Outcome], own_clock: bool, inline: bool = False) -> None:
        """One task: wait for the results it sees from this plan, then call its worker
        (bounded by the fan-out and the timeout: the fan-out's deadline, or with
        ``own_clock`` one from when the call starts). Never raises but on cancellation.
        ``inline``: run in the Conductor's task (``_dispatch_quietly``), reporting nothing
        to the inbox; a cancellation of that task by the plan is taken back here."""
        done, fanout = job.done, job.fanout
        running = job.running
        if inline:
            cancelling = running.owner.cancelling()  # type: ignore[union-attr]
        try:
            for o in seen:
                if o.ref in done:
                    await done[o.ref].wait()
            worker = self._worker(d.worker, job.depth)
            if worker is None:
                out.error = f"unknown worker `{d.worker}`"
                return
            call_req = _replace(job.req, messages=[user(_worker_prompt(d.task, seen))])
            if fanout is not None:
                await fanout.acquire()
            clock = None
            try:
                if inline and running.tasks:  # the others start their calls first
                    await asyncio.sleep(0)
                if own_clock and self.worker_timeout is not None:
                    me = asyncio.current_task()
                    assert me is not None  # a task of _dispatch's
                    clock = asyncio.get_running_loop().call_later(
                        self.worker_timeout, expire, [(me, out)])
                scores = (PartialScores(job.verifier, out.task, job.step, i + 1,
                                         job.ctx)
                          if job.verifier is not None else None)
                if job.events or (scores is not None and scores.scorer is not None):
                    await self._stream_worker(worker, call_req, job, i, out, scores)
                else:  # no one reads its deltas: the answer whole
                    turn = whole_turn(await worker.complete(call_req, job.ctx))
                    out.usage = turn.usage
                    _finish_worker(turn, out)
            except asyncio.CancelledError:
                if inline:
                    if not running.take_back(cancelling):
                        raise
                elif out.expired:
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                else:
                    raise
                if out.expired:  # (else a failed sibling stopped it: its error is set)
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
            if not inline:
                job.inbox.put(i)
                if out.error is not None and self.fail_fast:  # stops the inline task
                    running.stop_inline(expired=False)

    @staticmethod
    async def _stream_worker(worker: LlmProvider, call_req: ChatRequest, job: Job, i: int,
                             out: Outcome, scores: PartialScores | None) -> None:
        # the worker's stream read here rather than through ``relay``: one async generator
        # less per call (this coroutine already is the layer between worker and inbox)
        events, inbox = job.events, job.inbox
        turn = Turn()
        parts: list[str] = []
        stream = worker.stream(call_req, job.ctx)
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
                    inbox.put(CandidateDelta(step=job.step, branch=i + 1, delta=ev.text))
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
        _finish_worker(turn, out)

    def _worker(self, role: str, depth: int) -> LlmProvider | None:
        if role == SELF:
            return with_context(_Nested(self, depth + 1)) if depth < self.max_depth else None
        return self._streams.get(role)


def _number(plan: Plan, results: dict[int, Outcome], outcomes: list[Outcome]) -> None:
    """Give the plan's tasks the next result numbers: an outcome each, in ``outcomes`` (in
    dispatch order) and ``results`` (by number)."""
    first_ref = len(results) + 1
    for i, d in enumerate(plan.dispatch):
        o = Outcome(ref=first_ref + i, role=d.worker, task=d.task)
        outcomes.append(o)
        results[o.ref] = o


#: the stop reasons of a worker that answered (a tuple made once: reading an enum's member
#: is a descriptor call on Python 3.11, ~0.3 µs)
_ANSWERED = (StopReason.END_TURN, StopReason.STOP_SEQUENCE)


def _finish_worker(turn: Turn, out: Outcome) -> None:
    """A worker's call ended: its text is the result, unless it stopped early."""
    if turn.stop_reason not in _ANSWERED:
        out.error = f"the worker stopped: {turn.stop_reason}"
    out.text = turn.text


#: what a task that sees no earlier result reads (shared, never changed)
_NOTHING: list[Outcome] = []


def _seen(d: Dispatch, ref: int, results: Mapping[int, Outcome]) -> list[Outcome]:
    """The earlier results a task may read (only earlier numbers: no task waits for a
    later one, so dependencies cannot form a cycle)."""
    refs = range(1, ref) if d.sees == "all" else sorted({r for r in d.sees if 0 < r < ref})
    return [results[r] for r in refs if r in results]


def _worker_prompt(task: str, seen: list[Outcome]) -> str:
    if not seen:
        return task
    shown = "\n\n".join(f"#{o.ref} ({o.role}): " + (o.text if o.error is None
                                                     else f"ERROR: {o.error}")
                        for o in seen)
    return f"{task}\n\nResults you may use:\n\n{shown}"


def _results_message(outcomes: list[Outcome]) -> str:
    lines = ["Worker results:"]
    for o in outcomes:
        task = o.task if len(o.task) <= 60 else short(o.task)  # (most are: no call)
        body = o.text if o.error is None else f"ERROR: {o.error}"
        lines.append(f"- #{o.ref} {o.role} (task: \"{task}\"): {body}")
    return "\n".join(lines)
