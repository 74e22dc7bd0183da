"""veteran: a company's own learning loop around any model.

The public face; internals live in the rooms below (see docs/design.md).
"""

from veteran.config import Config, load_config
from veteran.errors import ConfigError, HTTPError, VeteranError
from veteran.gateway import Gateway, create_app
from veteran.providers.base import ModelRequest, Provider, ProviderSettings
from veteran.store import Store, TrajectoryFilter
from veteran.types import Feedback, Trajectory, TrajectoryRecord
from veteran.workspace import Workspace, init_workspace

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "Feedback",
    "Gateway",
    "HTTPError",
    "ModelRequest",
    "Provider",
    "ProviderSettings",
    "Store",
    "Trajectory",
    "TrajectoryFilter",
    "TrajectoryRecord",
    "VeteranError",
    "Workspace",
    "__version__",
    "create_app",
    "init_workspace",
    "load_config",
]
