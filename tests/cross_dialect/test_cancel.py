"""Cancellation: a client that walks away from a slow answer makes the gateway close its
upstream connection — the fake upstream must see the close within 1 s.

The ``slow`` scenario sends a chunk every 50 ms for ~10 s. The measured delay (client close
→ upstream close) is printed and recorded as a junit property ``upstream_close_delay_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import SLOW_TICK, FakeUpstream

from .clients import INGRESS, UPSTREAMS, prompt

log = logging.getLogger(__name__)

BOUND = 1.0
TICKS_BEFORE_CLOSE = 3


def _open_stream(ingress: str, up: str, user: str, oai: openai.OpenAI,
                 ant: anthropic.Anthropic) -> tuple[Iterator[str], Callable[[], None]]:
    """(iterator over text deltas, close function) of a raw SDK stream."""
    if ingress == "chat":
        s: Any = oai.chat.completions.create(model=up, stream=True,
                                             messages=[{"role": "user", "content": user}])
        texts = (ch.delta.content for c in s for ch in c.choices if ch.delta.content)
    elif ingress == "responses":
        s = oai.responses.create(model=up, input=user, stream=True)
        texts = (e.delta for e in s if e.type == "response.output_text.delta")
    else:
        s = ant.messages.create(model=up, max_tokens=1000, stream=True,
                                messages=[{"role": "user", "content": user}])
        texts = (e.delta.text for e in s
                 if e.type == "content_block_delta" and e.delta.type == "text_delta")
    return texts, s.close


def _assert_upstream_closed(upstream: FakeUpstream, nonce: str, t0: float,
                            record_property: Callable[[str, object], None], what: str) -> None:
    rec = upstream.one(nonce)
    assert rec.wait(BOUND + 4), f"{what}: the upstream is still streaming after 5 s"
    assert rec.closed_early, f"{what}: the upstream finished instead of being cancelled"
    assert rec.closed_at is not None
    delay = rec.closed_at - t0
    record_property("upstream_close_delay_s", round(delay, 4))
    print(f"\n{what}: upstream saw the close {delay * 1000:.1f} ms after the client")
    log.info("%s: upstream close delay %.1f ms", what, delay * 1000)
    assert delay < BOUND, f"{what}: upstream closed {delay:.3f} s after the client"


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_stream_cancel_reaches_upstream(ingress: str, up: str, oai: openai.OpenAI,
                                        ant: anthropic.Anthropic, upstream: FakeUpstream,
                                        record_property: Callable[[str, object], None]) -> None:
    user, nonce = prompt("slow")
    texts, close = _open_stream(ingress, up, user, oai, ant)
    got = [next(texts) for _ in range(TICKS_BEFORE_CLOSE)]
    # end-to-end streaming: three 50 ms ticks arrive while the 10 s answer is still being
    # written (the upstream's own record, not a wall-clock bound a loaded machine misses)
    assert got == [SLOW_TICK] * TICKS_BEFORE_CLOSE
    assert not upstream.one(nonce).completed, "the gateway buffered the stream"
    t0 = time.monotonic()
    close()
    _assert_upstream_closed(upstream, nonce, t0, record_property, f"{ingress}->{up} stream")


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_nonstream_cancel_reaches_upstream(ingress: str, up: str, oai: openai.OpenAI,
                                           ant: anthropic.Anthropic, upstream: FakeUpstream,
                                           record_property: Callable[[str, object], None]
                                           ) -> None:
    """A non-streamed request abandoned by its client (here: a client timeout) must not
    keep the upstream generating for the full ~10 s."""
    user, nonce = prompt("slow")
    if ingress == "messages":
        with pytest.raises(anthropic.APITimeoutError):
            ant.with_options(timeout=0.5).messages.create(
                model=up, max_tokens=1000, messages=[{"role": "user", "content": user}])
    else:
        with pytest.raises(openai.APITimeoutError):
            client = oai.with_options(timeout=0.5)
            if ingress == "chat":
                client.chat.completions.create(model=up,
                                               messages=[{"role": "user", "content": user}])
            else:
                client.responses.create(model=up, input=user)
    t0 = time.monotonic()
    _assert_upstream_closed(upstream, nonce, t0, record_property, f"{ingress}->{up} json")
