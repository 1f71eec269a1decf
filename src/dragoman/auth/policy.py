"""What an authenticated principal may do, checked where the request says what it wants."""

from __future__ import annotations

from .errors import PolicyDenied
from .principal import Principal


def require_model(principal: Principal, model: str) -> None:
    """Refuse (403, in the caller's dialect) a model outside ``allowed_models``."""
    if not principal.may_use(model):
        raise PolicyDenied(f"You are not allowed to use the model '{model[:200]}'.",
                           param="model", code="model_not_allowed")
