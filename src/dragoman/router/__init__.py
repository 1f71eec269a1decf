"""Model name → deployments: load balancing, retries, fallbacks, circuit breakers
(``attempts``), and rate limits and budgets (``limits``)."""

from .attempts import Started, dispatch
from .health import BreakerPolicy
from .table import Deployment, ModelTable, RetryPolicy, Route, RoutePolicy, unknown_model

__all__ = ["BreakerPolicy", "Deployment", "ModelTable", "RetryPolicy", "Route", "RoutePolicy",
           "Started", "dispatch", "unknown_model"]
