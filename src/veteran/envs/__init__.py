"""Reinforcement-learning environments: a function's real tasks, rewarded by a suite's graders.

`Environment` runs in-process (async `reset`/`step`, `rollout`, `evaluate`); `reward_funcs`
gives TRL `GRPOTrainer` reward functions; `export_verifiers` writes an installable `verifiers`
environment package. Every reward is the graders' own score (`veteran.evals.graders`), so what
an evaluation measures and what training rewards cannot drift apart.

Errors: `EnvError` (a `VeteranError`) says why an environment cannot be
built, used or exported.
"""

from veteran.envs.environment import (
    EnvError,
    Environment,
    Evaluation,
    Observation,
    Reward,
    Rollout,
    StepResult,
    output_of,
)
from veteran.envs.export import export_suite, export_verifiers, read_bundle
from veteran.envs.rewards import reward_funcs, reward_funcs_for_suite, reward_weights

__all__ = [
    "EnvError",
    "Environment",
    "Evaluation",
    "Observation",
    "Reward",
    "Rollout",
    "StepResult",
    "export_suite",
    "export_verifiers",
    "output_of",
    "read_bundle",
    "reward_funcs",
    "reward_funcs_for_suite",
    "reward_weights",
]
