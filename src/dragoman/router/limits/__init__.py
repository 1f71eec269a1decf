"""Rate limits and budgets: counters (``store``), in process or in Redis, and the policy
that decides what a request is charged (``policy``)."""

from .policy import ADMIT_ALL, Admission, Budget, Limiter, LimitsPolicy, RateLimit
from .store import BUCKETS, Charge, Held, LimitExceeded, LimitStore, MemoryLimitStore

__all__ = ["ADMIT_ALL", "BUCKETS", "Admission", "Budget", "Charge", "Held", "LimitExceeded",
           "LimitStore", "Limiter", "LimitsPolicy", "MemoryLimitStore", "RateLimit"]
