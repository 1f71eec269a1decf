"""What a provider/model can do, consulted before dispatch, and what it costs."""

from __future__ import annotations

import msgspec

from .response import Usage


class Capabilities(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Rates are per million tokens, in the currency the operator configures (USD in the
    response headers' name). ``cached_input_cost_per_mtok`` prices prompt tokens read from
    the provider's cache and ``cache_write_cost_per_mtok`` prompt tokens written to it;
    when unset they cost what other input tokens cost."""

    max_context_tokens: int = 128_000
    max_output_tokens: int | None = None
    streaming: bool = True
    tools: bool = True
    vision: bool = True
    json_mode: bool = True
    thinking: bool = False
    input_cost_per_mtok: float = 0.0
    output_cost_per_mtok: float = 0.0
    cached_input_cost_per_mtok: float | None = None
    cache_write_cost_per_mtok: float | None = None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Price in the currency of the configured rates."""
        return (input_tokens * self.input_cost_per_mtok
                + output_tokens * self.output_cost_per_mtok) / 1_000_000

    def cost_of(self, usage: Usage) -> float:
        """Price of one response's usage. ``Usage.input_tokens`` counts the whole prompt,
        cache reads and writes included, so those are taken out of the plain-input share
        and priced at their own rates."""
        rate_in = self.input_cost_per_mtok
        cached = usage.cached_tokens
        written = usage.cache_write_tokens
        plain = max(0, usage.input_tokens - cached - written)
        rate_cached = rate_in if self.cached_input_cost_per_mtok is None \
            else self.cached_input_cost_per_mtok
        rate_written = rate_in if self.cache_write_cost_per_mtok is None \
            else self.cache_write_cost_per_mtok
        return (plain * rate_in + cached * rate_cached + written * rate_written
                + usage.output_tokens * self.output_cost_per_mtok) / 1_000_000
