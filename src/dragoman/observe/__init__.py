"""What an operator watches: Prometheus metrics (``metrics``), the usage ledger's
batching writer (``ledger``), the dashboard's time series (``series``) and traces
(``tracing``, fed from the hooks in ``core.spans``).

Fed from request outcomes the server hands over (one call per finished request, one
per stream start and end) and from state sampled now and then (breakers, upstream
pools); no HTTP here: the server's admin routes render what these collect.
"""

from .ledger import BatchWriter
from .metrics import BREAKER_VALUES, FinishedRequest, GatewayMetrics
from .series import LedgerEntry, percentile, series

__all__ = ["BREAKER_VALUES", "BatchWriter", "FinishedRequest", "GatewayMetrics", "LedgerEntry",
           "percentile", "series"]
