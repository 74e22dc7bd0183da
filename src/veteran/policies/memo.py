"""`Memoised`: a validator's answers kept for the values it has seen, without the values.

A chat sends its whole history again with every turn, so the detector meets the same phone
numbers and ids over and over, and python-stdnum or phonenumbers take 10 to 130 us to judge one.
The answers are kept in a bounded map (`SIZE` entries a validator, the oldest dropped first)
whose keys are a keyed BLAKE2b digest of the value (16 bytes, a key drawn per process), not the
value: what stays in memory is that some value was valid, not which. A digest costs about 1.5
us, so only the validators dearer than that are memoised (identifiers.py's national ids, the
IBANs that stdnum checks further, phonenumbers' own parse in phones.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import suppress
from typing import Generic, TypeVar

SIZE = 65_536
_KEY = os.urandom(16)
T = TypeVar("T")


class Memoised(Generic[T]):
    """`validate`, its answers kept by the digest of the value. Safe from many threads: a race
    costs at most a second call of `validate`."""

    def __init__(self, validate: Callable[[str], T]) -> None:
        self._validate = validate
        self._answers: dict[bytes, T] = {}
        self.__doc__ = validate.__doc__

    def __call__(self, value: str) -> T:
        key = hashlib.blake2b(value.encode(), key=_KEY, digest_size=16).digest()
        try:
            return self._answers[key]
        except KeyError:
            pass
        answer = self._validate(value)
        if len(self._answers) >= SIZE:
            with suppress(KeyError, RuntimeError, StopIteration):  # another thread was first
                del self._answers[next(iter(self._answers))]
        self._answers[key] = answer
        return answer

    def clear(self) -> None:
        """Forget every answer (a cold start, for tests and measurements)."""
        self._answers.clear()
