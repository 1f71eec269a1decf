"""One Conductor plan's running tasks (``conductor``): each task's outcome, the deadline
the tasks that start at once share (on the run's one timer, ``RunClock``), and in a quiet
run the task run inline in the Conductor's own task, whose cancellation by the plan (its
deadline, a failed sibling with ``fail_fast``) is taken back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


class RunClock:
    """The deadline of a run's plans, one plan after another, on ONE timer for the whole
    run rather than one made and cancelled per plan (a ``TimerHandle``, its heap entry
    and its cancellation: the largest part of arming a plan's deadline). ``set`` gives
    the current plan's deadline; the timer, once made, fires at the first plan's and
    moves itself on to the current one's (plans come in order, each deadline later than
    the last), so a run of plans that end in time makes one timer, fired at most once per
    ``worker_timeout``. ``close`` at the end of the run."""

    __slots__ = ("_expire", "_handle", "_when")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._expire: Callable[[], None] | None = None

    def set(self, when: float, expire: Callable[[], None]) -> None:
        """Call ``expire`` at ``when`` (loop time) unless ``clear`` comes first."""
        self._when = when
        self._expire = expire
        handle = self._handle
        if handle is None or handle.when() > when:
            if handle is not None:
                handle.cancel()
            self._handle = asyncio.get_running_loop().call_at(when, self._fire)

    def clear(self) -> None:
        self._expire = None

    def _fire(self) -> None:
        self._handle = None
        expire = self._expire
        if expire is None:  # (no plan running: made again by the next ``set``)
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._when:  # an earlier plan's time: on to this one's
            self._handle = loop.call_at(self._when, self._fire)
            return
        self._expire = None
        expire()

    def close(self) -> None:
        self._expire = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Running:
    """One plan's started tasks: where they report (``inbox``), those that started their
    call at once (they share one deadline, on the run's ``clock``), and in a quiet run the
    task run inline in the Conductor's own task (``inline``: its outcome while it
    runs)."""

    __slots__ = ("armed", "at_once", "clock", "inbox", "inline", "outs", "owner",
                 "stopped_inline", "tasks")

    def __init__(self, clock: RunClock) -> None:
        self.inbox: Inbox[StreamEvent | int] = Inbox()
        self.tasks: list[asyncio.Task[None]] = []
        #: the outcome of each of ``tasks`` (the inline task has none)
        self.outs: list[Outcome] = []
        self.at_once: list[tuple[asyncio.Task[None], Outcome]] = []
        self.clock = clock
        self.armed = False
        self.inline: Outcome | None = None
        #: the task the inline worker runs in (the Conductor's), and whether this plan
        #: cancelled it (its deadline, a failed sibling with fail_fast)
        self.owner: asyncio.Task[Any] | None = None
        self.stopped_inline = False

    async def arm(self, timeout: float | None) -> None:
        """The deadline of the tasks that started at once, armed only if one of them is
        still running after its first step (an instant worker is done by then: nothing
        to arm). Its time counts from now, when they started."""
        if not self.at_once or timeout is None:
            return
        when = asyncio.get_running_loop().time() + timeout
        await asyncio.sleep(0)  # the tasks take their first step (queued before this one)
        for task, _ in self.at_once:
            if not task.done():
                self.clock.set(when, self._expire)
                self.armed = True
                return

    def arm_now(self, timeout: float | None) -> None:
        """``arm`` for a plan with an inline task: its time counts from now, armed at once
        (on the run's one timer, this costs two attribute writes)."""
        if timeout is not None:
            self.clock.set(asyncio.get_running_loop().time() + timeout, self._expire)
            self.armed = True

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
        if self.armed:
            self.clock.clear()
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
