"""Transport: pooled HTTP clients and stream decoders. Imports only ``dragoman.core``."""

from .http import HttpClient, Timeouts, UpstreamResponse
from .ndjson import NdjsonDecoder
from .sse import SseDecoder

__all__ = ["HttpClient", "NdjsonDecoder", "SseDecoder", "Timeouts", "UpstreamResponse"]
