"""Transport: pooled HTTP clients and stream decoders. Imports only ``dragoman.core``."""

from .http import HttpClient, Timeouts, UpstreamResponse
from .sse import SseDecoder

__all__ = ["HttpClient", "SseDecoder", "Timeouts", "UpstreamResponse"]
