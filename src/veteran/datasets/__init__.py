"""Training data from the store: curate a function's trajectories into examples (filtered,
de-duplicated, split by episode) and export them in open formats with a manifest.

```python
from veteran.datasets import Filters, curate, export

curated = curate(store, config, "support", Filters(metric="resolved"), kind="sft")
manifest = export(curated, "openai-sft", Path("out/support-sft"))
```
"""

from veteran.datasets.curate import KINDS, Curated, Filters, check_split, curate
from veteran.datasets.errors import CurationError, DataError, ExportError
from veteran.datasets.export import (
    content_hash,
    export,
    manifest_from_json,
    manifest_to_json,
    read_manifest,
    write_manifest,
)
from veteran.datasets.formats import FORMATS
from veteran.datasets.types import Example, Kind, Manifest

__all__ = [
    "FORMATS",
    "KINDS",
    "Curated",
    "CurationError",
    "DataError",
    "Example",
    "ExportError",
    "Filters",
    "Kind",
    "Manifest",
    "check_split",
    "content_hash",
    "curate",
    "export",
    "manifest_from_json",
    "manifest_to_json",
    "read_manifest",
    "write_manifest",
]
