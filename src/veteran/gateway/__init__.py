"""The gateway: OpenAI-compatible HTTP surface, routing to providers, capture of every call."""

from veteran.gateway.app import create_app
from veteran.gateway.core import Gateway

__all__ = ["Gateway", "create_app"]
