"""What the evaluation library raises.

```
VeteranError (veteran.errors)
└── EvalError              an evaluation cannot be set up: message names what is wrong
    ├── DatasetError       a dataset file or query is unusable (names file:line for a bad row)
    └── GraderError        a grader definition is invalid, or cannot be exported
Skip                       not an error: a grader has nothing to say about this sample
```

`Skip` is control flow for the runner: the sample lacks what the grader needs (a `feedback`
grader on a trajectory without that metric, a judge whose verdict cannot be read). The runner
records the reason and leaves the sample out of that grader's statistics, rather than scoring
it 0 and biasing the mean.
"""

from __future__ import annotations

from veteran.errors import VeteranError


class EvalError(VeteranError):
    """An evaluation cannot be set up."""


class DatasetError(EvalError):
    """A dataset cannot be read; a bad row is named `file:line`."""


class GraderError(EvalError):
    """A grader definition is invalid, or has no OpenAI graders equivalent."""


class Skip(Exception):  # noqa: N818 - control flow, not an error
    """Raised by `Grader.grade` when the sample cannot be graded by this grader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
