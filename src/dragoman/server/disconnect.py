"""Noticing that the client left: ``unless_client_leaves`` cancels the work it guards when
``http.disconnect`` arrives, which closes the upstream connection and so stops the
upstream from generating for nobody.

Watching costs a task per request (a coroutine parked in ``receive()``): ~10 % of the
instructions of a short pass-through request (bench/README.md). A short request is over
before a disconnect could save anything, so the watcher is started only for work still
running after one to two ``WATCH_AFTER`` ticks: one timer per event loop sweeps the
guarded requests, and a request that ends sooner never creates a task. A client that
leaves is noticed at most ``2 * WATCH_AFTER`` after it could have been.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from .http import Receive

T = TypeVar("T")

#: Seconds between the sweeps that start watchers for requests still in flight.
WATCH_AFTER = 0.02


class _Guard:
    """One guarded piece of work: the task running it and its watcher, once started."""

    __slots__ = ("current", "finished", "gone", "receive", "watcher")

    def __init__(self, current: asyncio.Task[object], receive: Receive) -> None:
        self.current = current
        self.receive = receive
        self.finished = False
        self.gone = False
        self.watcher: asyncio.Task[None] | None = None

    def watch(self) -> None:
        w = self.watcher = asyncio.ensure_future(_wait_disconnect(self.receive))
        w.add_done_callback(self._on_disconnect)

    def _on_disconnect(self, watcher: asyncio.Future[None]) -> None:
        # A callback queued just before the work finished must not cancel what follows.
        if not self.finished and not watcher.cancelled() and watcher.exception() is None:
            self.gone = True
            self.current.cancel()


class _Sweeper:
    """The guards of one event loop, in two generations: a guard still in flight at its
    second sweep gets its watcher."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.young: dict[_Guard, None] = {}  # insertion-ordered sets
        self.old: dict[_Guard, None] = {}
        self.timer: asyncio.TimerHandle | None = None

    def _sweep(self) -> None:
        for guard in self.old:
            guard.watch()
        self.old, self.young = self.young, {}
        self.timer = self.loop.call_later(WATCH_AFTER, self._sweep) if self.old else None


_sweepers: dict[asyncio.AbstractEventLoop, _Sweeper] = {}


def _sweeper(loop: asyncio.AbstractEventLoop) -> _Sweeper:
    s = _sweepers.get(loop)
    if s is None:
        for dead in [lp for lp in _sweepers if lp.is_closed()]:
            del _sweepers[dead]
        s = _sweepers[loop] = _Sweeper(loop)
    return s


async def unless_client_leaves(work: Awaitable[T], receive: Receive) -> T | None:
    """Await ``work`` in this task; if the client disconnects first, cancel it and return
    None. Cancelling a provider call closes its upstream connection, which is what stops
    the upstream from generating for nobody.

    The watcher, once started, cancels this very task when ``http.disconnect`` arrives
    (not a task for the work plus ``asyncio.wait``)."""
    current = asyncio.current_task()
    assert current is not None
    guard = _Guard(current, receive)
    loop = current.get_loop()
    sweeper = _sweepers.get(loop) or _sweeper(loop)
    # ``_Sweeper.add``, inline (this runs on every request): ``young`` is the generation
    # the guard joins; a sweep makes it the old one, the next drops it (by then the guard
    # has its watcher), so the guard is always discarded from this very dict.
    young = sweeper.young
    young[guard] = None
    if sweeper.timer is None:
        sweeper.timer = loop.call_later(WATCH_AFTER, sweeper._sweep)
    try:
        return await work
    except asyncio.CancelledError:
        if not guard.gone:
            raise
        current.uncancel()  # the cancellation was ours: the request simply ends
        return None
    finally:
        guard.finished = True
        if guard.watcher is not None:
            guard.watcher.cancel()
        else:
            young.pop(guard, None)


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
