"""dragoman: an LLM gateway and agent runtime."""

__version__ = "0.1.0"
