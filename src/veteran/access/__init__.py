"""Access control: API keys (stored hashed), roles, teams, and limits on model calls.

See docs/security.md for what is protected and how.
"""

from veteran.access.auth import PUBLIC, Permission, Principal, allow, is_loopback
from veteran.access.control import (
    PRINCIPAL_KEY,
    AccessControl,
    admit,
    check_bind,
    principal_of,
    settle,
)
from veteran.access.keys import ROLES, ApiKey, Limits, create_key, list_keys, revoke_key

__all__ = [
    "PRINCIPAL_KEY",
    "PUBLIC",
    "ROLES",
    "AccessControl",
    "ApiKey",
    "Limits",
    "Permission",
    "Principal",
    "admit",
    "allow",
    "check_bind",
    "create_key",
    "is_loopback",
    "list_keys",
    "principal_of",
    "revoke_key",
    "settle",
]
