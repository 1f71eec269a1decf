"""HTTP ingress: the ASGI app and its routes (the only layer that knows HTTP ingress)."""

from .gateway import Gateway

__all__ = ["Gateway"]
