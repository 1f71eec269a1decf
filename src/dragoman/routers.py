"""``dragoman.routers``: the routers of the orchestrators (see ``dragoman.agents.routers``)."""

from .agents.routers import *  # noqa: F403
from .agents.routers import __all__ as __all__
