"""What `veteran.datasets` raises.

```
VeteranError (veteran.errors)
└── DataError              training data cannot be made or written; the message says why
    ├── CurationError      unknown function or kind, bad filters or split, nothing left
    └── ExportError        unknown format, data the format cannot hold, an output folder in the way
```
"""

from __future__ import annotations

from veteran.errors import VeteranError


class DataError(VeteranError):
    """Training data cannot be made or written."""


class CurationError(DataError):
    """The store cannot give the asked-for examples (the message names the filter)."""


class ExportError(DataError):
    """An export cannot be written; nothing was left behind."""
