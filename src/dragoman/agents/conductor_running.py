"""One Conductor plan's running tasks (``conductor``): each task's outcome, the deadline
the tasks that start at once share, and in a quiet run the task run inline in the
Conductor's own task, whose cancellation by the plan (its deadline, a failed sibling with
``fail_fast``) is taken back."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from ..core import ChatRequest, RequestContext, StreamEvent, Usage
from .judging import Scorer
from .tasks import Inbox

#: the error of a worker cancelled because another one failed (``fail_fast``)
FAIL_FAST_CANCELLED = "cancelled: another worker failed (fail_fast)"


class Outcome(msgspec.Struct):
    """A dispatched task's result (``expired``: its time ran out). (A struct: a dataclass
    with a default factory costs ~20x more to make, and there is one per task.)"""

    ref: int
    role: str
    task: str
    text: str = ""
    error: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    expired: bool = False


class Running:
    """One plan's started tasks: where they report (``inbox``), those that started their
    call at once (they share one deadline), and in a quiet run the task run inline in the
    Conductor's own task (``inline``: its outcome while it runs)."""

    __slots__ = ("at_once", "deadline", "inbox", "inline", "outs", "over", "owner",
                 "stopped_inline", "tasks", "when")

    def __init__(self) -> None:
        self.inbox: Inbox[StreamEvent | int] = Inbox()
        self.tasks: list[asyncio.Task[None]] = []
        #: the outcome of each of ``tasks`` (the inline task has none)
        self.outs: list[Outcome] = []
        self.at_once: list[tuple[asyncio.Task[None], Outcome]] = []
        self.deadline: asyncio.TimerHandle | None = None
        self.inline: Outcome | None = None
        #: the task the inline worker runs in (the Conductor's), and whether this plan
        #: cancelled it (its deadline, a failed sibling with fail_fast)
        self.owner: asyncio.Task[Any] | None = None
        self.stopped_inline = False
        self.when = 0.0
        self.over = False

    async def arm(self, timeout: float | None) -> None:
        """The deadline of the tasks that started at once, armed only if one of them is
        still running after its first step (an instant worker is done by then: no timer
        to make and cancel). Its time counts from now, when they started."""
        if not self.at_once or timeout is None:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + timeout
        await asyncio.sleep(0)  # the tasks take their first step (queued before this one)
        for task, _ in self.at_once:
            if not task.done():
                self.deadline = loop.call_at(when, expire, self.at_once)
                return

    def arm_later(self, timeout: float | None) -> None:
        """``arm`` for a plan with an inline task: its time counts from now, but the timer
        is made only once something of the plan waits — by the first of the other tasks
        to start while the inline one is suspended (``arm_inline``), by ``arm_after`` if
        some of them still run once the inline one is done; with no other task, at the
        next turn of the event loop if the inline task is still running then."""
        if timeout is None:
            return
        loop = asyncio.get_running_loop()
        self.when = loop.time() + timeout
        if not self.tasks:
            loop.call_soon(self.arm_inline)

    def arm_inline(self) -> None:
        """The inline task is suspended (a task of the plan or the loop runs): the plan's
        deadline if it has none yet."""
        if self.inline is not None and self.deadline is None and not self.over and self.when:
            self.deadline = asyncio.get_running_loop().call_at(self.when, self._expire)

    def arm_after(self) -> None:
        """The inline task is done and the others took their first step: the plan's
        deadline if it has none yet and some of those that started at once still run."""
        if self.deadline is None and self.when:
            for task, _ in self.at_once:
                if not task.done():
                    self.deadline = asyncio.get_running_loop().call_at(self.when,
                                                                       self._expire)
                    return

    def _expire(self) -> None:
        """The plan's deadline passed: the tasks that started at once and still run are
        cancelled, marked as timed out, the inline one too."""
        expire(self.at_once)
        self.stop_inline(expired=True)

    def stop_inline(self, *, expired: bool) -> None:
        """Cancel the inline task if it still runs, once: its time ran out (``expired``)
        or another task failed with fail_fast. It runs in ``owner``, suspended (the only
        time a timer or another task runs); ``take_back`` undoes the cancellation."""
        out = self.inline
        if out is None or self.stopped_inline or self.owner is None:
            return
        if expired:
            out.expired = True
        else:
            out.error = FAIL_FAST_CANCELLED
        self.stopped_inline = True
        self.owner.cancel()

    def take_back(self, cancelling: int) -> bool:
        """The inline task got a CancelledError: True when it came from ``stop_inline``
        alone (taken back: the Conductor goes on), False when the Conductor's task is
        cancelled from outside too (``cancelling``: its count when the task began)."""
        if not self.stopped_inline or self.owner is None:
            return False
        self.stopped_inline = False
        return self.owner.uncancel() <= cancelling

    def stop(self) -> bool:
        """The tasks are over (or abandoned): no deadline left; True when some are still
        running (then ``await cancel_unfinished(self.tasks)``: most plans end with none,
        and need no coroutine for it)."""
        self.over = True
        if self.deadline is not None:
            self.deadline.cancel()
        return not all(map(asyncio.Task.done, self.tasks))  # (no generator to make)


class Job(msgspec.Struct):
    """What every task of one plan shares: the worker request (but for its messages), the
    outer context, the step, the nesting depth, the Events of results a later task of the
    plan waits for, the fan-out semaphore (None: all may run at once), where the tasks
    report (and, with an inline task, what stops it), whether anyone reads events, the
    verifier."""

    req: ChatRequest
    ctx: RequestContext
    step: int
    depth: int
    done: dict[int, asyncio.Event]
    fanout: asyncio.Semaphore | None
    inbox: Inbox[StreamEvent | int]
    running: Running
    events: bool
    verifier: Scorer | None


def expire(running: list[tuple[asyncio.Task[Any], Outcome]]) -> None:
    """A deadline passed: cancel the tasks still running, marked as timed out."""
    for task, out in running:
        if not task.done():
            out.expired = True
            task.cancel()
