"""``dragoman.verifiers``: the orchestrators' verifiers (``dragoman.agents.verifiers``)."""

from .agents.verifiers import *  # noqa: F403
from .agents.verifiers import __all__ as __all__
