"""Which model a generation request goes to, when the client's ``model`` is missing or
unknown (agentick's OpenAI plugin behaviour, opt-in).

``server.default_model`` serves requests that name no model (a Chat Completions body
without ``model``); with ``server.unknown_model: default`` it also serves every name no
route matches, instead of the 404 ``model_not_found``. The request's ``model`` becomes the
name that serves it, so the answer names the model that really answered, and access
rules (``allowed_models``) apply to that model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..auth import Principal, require_model
from ..core import ChatRequest, InvalidRequest, NotFound
from ..router import ModelTable, Route

UnknownModel = Literal["404", "default"]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    default_model: str | None = None
    unknown_model: UnknownModel = "404"

    def __post_init__(self) -> None:
        if self.unknown_model == "default" and not self.default_model:
            raise ValueError("unknown_model 'default' needs a default_model")

    def route(self, models: ModelTable, principal: Principal, req: ChatRequest) -> Route:
        """The route for ``req`` (its ``model`` rewritten when the default serves it);
        raises 403 for a model the caller may not use, 404 for one that does not exist."""
        default = self.default_model
        if default is not None and (not req.model or (
                self.unknown_model == "default" and not _known(models, req.model))):
            req.model = default
        elif not req.model:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model")
        if principal.allowed_models:  # (empty: every model, nothing to check)
            require_model(principal, req.model)
        return models.resolve(req.model)


def _known(models: ModelTable, name: str) -> bool:
    try:
        models.resolve(name)
    except NotFound:
        return False
    return True


NO_CHOICE = ModelChoice()
