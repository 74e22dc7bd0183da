"""What the evaluation library raises: `EvalError` (with `DatasetError`, `GraderError`) and
`Skip`, the grader's "nothing to say about this sample". They are defined, and drawn in the
whole tree, in `veteran.errors`; the evals' modules import them from here."""

from __future__ import annotations

from veteran.errors import DatasetError, EvalError, GraderError, Skip

__all__ = ["DatasetError", "EvalError", "GraderError", "Skip"]
