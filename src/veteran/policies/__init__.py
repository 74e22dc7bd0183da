"""The company's rules on every call: detection of secrets, personal data and the company's own
terms, redaction and pseudonymisation, the ordered policies, and the watch on vendors'
hand-offs (issue 14; docs/policies.md).

`veteran.policies` sits with `memory` and `access`: it imports only `config`,
`policy_settings`, `types` and `errors`, and `http` (the hand-off watch's webhook).
"""

from veteran.policies.detect import Detector
from veteran.policies.entities import Finding
from veteran.policies.handoff import HandoffWatch, answered_model, substituted

__all__ = [
    "Detector",
    "Finding",
    "HandoffWatch",
    "answered_model",
    "substituted",
]
