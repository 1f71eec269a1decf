"""Model name → target. Retries, fallbacks and budgets arrive with the routing issue."""

from .table import Deployment, ModelTable

__all__ = ["Deployment", "ModelTable"]
