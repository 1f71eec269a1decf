"""HTTP ingress: the ASGI app and its routes (the only layer that knows HTTP ingress)."""

from .gateway import Gateway, Principal, StaticKeys

__all__ = ["Gateway", "Principal", "StaticKeys"]
