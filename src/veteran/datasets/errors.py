"""What `veteran.datasets` raises: `DataError`, with `CurationError` and `ExportError`. They
are defined, and drawn in the whole tree, in `veteran.errors`; the datasets' modules import
them from here."""

from __future__ import annotations

from veteran.errors import CurationError, DataError, ExportError

__all__ = ["CurationError", "DataError", "ExportError"]
