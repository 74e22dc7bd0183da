"""A trajectory as stored: `TrajectoryRecord.to_row` with its payload columns through the codec.

The capture writer turns each record into its stored row once, and that row goes to the store
or, while the store is away, to the spool (which keeps exactly what the store would have
received, so a drain inserts it as it is). Reads decode the same columns before the row
becomes a `Trajectory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from veteran.store.codec import PAYLOAD, PayloadCodec
from veteran.store.schema import trajectories
from veteran.types import TrajectoryRecord

TRAJECTORY_PAYLOAD = tuple(c.name for c in trajectories.c if c.info.get(PAYLOAD))
_POSITIONS = tuple(
    i for i, name in enumerate(TrajectoryRecord.COLUMNS) if name in TRAJECTORY_PAYLOAD
)


def stored_row(record: TrajectoryRecord, codec: PayloadCodec) -> tuple[Any, ...]:
    """The `trajectories` row to insert or spool, in `TrajectoryRecord.COLUMNS` order."""
    if type(codec) is PayloadCodec:  # the identity: skip the copy, 1.2 µs a captured call
        return record.to_row()
    values = list(record.to_row())
    for i in _POSITIONS:
        if values[i] is not None:
            values[i] = codec.encode(values[i])
    return tuple(values)


class DecodedRow:
    """A stored row with its payload columns decoded, shaped like a SQLAlchemy `Row` for
    `Trajectory.from_row` (which reads `row._mapping`)."""

    __slots__ = ("_mapping",)

    def __init__(self, row: Any, codec: PayloadCodec) -> None:
        mapping: dict[str, Any] = dict(row._mapping)
        for name in TRAJECTORY_PAYLOAD:
            value = mapping.get(name)
            if value is not None:
                mapping[name] = codec.decode(value)
        self._mapping: Mapping[str, Any] = mapping
