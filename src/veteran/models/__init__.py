"""Owned models: the file format of a trained model's folder (`format`) and the workspace's
registry of them with their lineage (`registry`).

Both sit below `veteran.train`, which writes models, and `veteran.providers` and
`veteran.gateway`, which serve them, so that writer and readers share one definition and
neither reaches up into the other.
"""

from veteran.models.format import (
    KINDS,
    MANIFEST,
    ClassifierModel,
    FewshotExamples,
    Head,
    Matrix,
    ModelKind,
    ServedClassifier,
    embedder_named,
    input_text,
    load_causal_lm,
    owned_kind,
    read_manifest,
)
from veteran.models.registry import (
    Lineage,
    ModelRecord,
    Registry,
    StagedModel,
    Trained,
    code_version,
)

__all__ = [
    "ClassifierModel",
    "FewshotExamples",
    "Head",
    "KINDS",
    "Lineage",
    "MANIFEST",
    "Matrix",
    "ModelKind",
    "ModelRecord",
    "Registry",
    "ServedClassifier",
    "StagedModel",
    "Trained",
    "code_version",
    "embedder_named",
    "input_text",
    "load_causal_lm",
    "owned_kind",
    "read_manifest",
]
