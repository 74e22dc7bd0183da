"""The company's rules on every call: detection of secrets, personal data and the company's own
terms, redaction and pseudonymisation, the ordered policies, and the watch on vendors'
hand-offs (issue 14; docs/policies.md).

`veteran.policies` sits with `memory` and `access`: it imports only `config`,
`policy_settings`, `types` and `errors`, and `http` (the hand-off watch's webhook).
"""

from veteran.policies.detect import Detector
from veteran.policies.dictionaries import read_terms
from veteran.policies.entities import Finding
from veteran.policies.handoff import HandoffWatch, answered_model, substituted
from veteran.policies.pseudonym import Masking, Reveal, StreamReveal, Vault, Vaults
from veteran.policies.rules import Decision, Rules, Subject
from veteran.policies.walk import map_chunk, map_request, map_response, request_texts

__all__ = [
    "Decision",
    "Detector",
    "Finding",
    "HandoffWatch",
    "Masking",
    "Reveal",
    "Rules",
    "StreamReveal",
    "Subject",
    "Vault",
    "Vaults",
    "answered_model",
    "map_chunk",
    "map_request",
    "map_response",
    "read_terms",
    "request_texts",
    "substituted",
]
