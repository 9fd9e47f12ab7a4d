"""The socket side: the `/chat` namespace (namespace.py), the handshake's checks
(handshake.py) and the per-process background task (housekeeping.py)."""

from .namespace import ChatNamespace, register_namespaces

__all__ = ["ChatNamespace", "register_namespaces"]
