"""What a provider/model can do, consulted before dispatch."""

from __future__ import annotations

import msgspec


class Capabilities(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    max_context_tokens: int = 128_000
    max_output_tokens: int | None = None
    streaming: bool = True
    tools: bool = True
    vision: bool = True
    json_mode: bool = True
    thinking: bool = False
    input_cost_per_mtok: float = 0.0
    output_cost_per_mtok: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Price in the currency of the configured rates."""
        return (input_tokens * self.input_cost_per_mtok
                + output_tokens * self.output_cost_per_mtok) / 1_000_000
