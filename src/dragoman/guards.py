"""``dragoman.guards``: the guards of the orchestrators (see ``dragoman.agents.guards``)."""

from .agents.guards import *  # noqa: F403
from .agents.guards import __all__ as __all__
