"""The verifiers side of an exported environment (verifiers 0.4, `verifiers.v1`).

verifiers 0.4 has no Environment/Rubric classes any more: an environment is a **taskset**
package, found by id (`vf eval ID` imports module ID and takes the `Taskset` subclass in its
`__all__`), whose tasks score a finished rollout's **trace** with `@vf.reward` methods. An
exported package (see `export.py`) subclasses `VeteranTaskset` with the name of the package
holding its bundle, and also exports `VeteranHarness` (verifiers' tool-less chat loop, which
runs no code) so `vf eval PACKAGE` plays each task as one chat turn.

A task's reward is `Environment.score` on the trace's last assistant message: the graders'
weighted mean, from graders rebuilt out of the suite's tables. The per-grader scores are
recorded as the trace's metrics. A trace with nothing gradable fails scoring rather than
being rewarded 0.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import TypeAdapter

from veteran.envs.environment import MODEL_GRADERS, EnvError, Environment
from veteran.envs.export import BUNDLE_FILE, read_bundle
from veteran.evals.types import Complete, Output, Sample

try:  # the `train` extra: verifiers, and aiohttp for judge calls (verifiers needs it too)
    import aiohttp
    import verifiers.v1 as vf
    from verifiers.v1.harnesses.null import NullHarness
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise EnvError("verifiers environments need the `verifiers` package: "
                   "pip install 'veteran[train]'") from exc

JUDGE_KEY_VAR = "VETERAN_API_KEY"
_ENVIRONMENTS: dict[tuple[str, str | None, str], Environment] = {}


class VeteranTaskData(vf.TaskData):  # type: ignore[misc]
    sample: dict[str, Any]  # the veteran sample, exactly as the graders see it
    bundle: str  # the package holding environment.json


class VeteranTaskConfig(vf.TaskConfig):  # type: ignore[misc]
    judge_base_url: str | None = None
    """OpenAI-compatible base URL for LLM-judge graders (a veteran gateway: http://HOST/v1)."""
    judge_api_key_var: str = JUDGE_KEY_VAR
    """Environment variable holding the judge endpoint's API key."""


class VeteranTasksetConfig(vf.TasksetConfig):  # type: ignore[misc]
    task: VeteranTaskConfig = VeteranTaskConfig()


class VeteranTask(vf.Task[VeteranTaskData, vf.State, VeteranTaskConfig]):  # type: ignore[misc]
    @property
    def key(self) -> str:
        return str(self.data.id)  # the sample id is durable; idx is not

    @vf.reward  # type: ignore[untyped-decorator]
    async def reward(self, task: VeteranTaskData, trace: Any) -> float:
        env = bundle_environment(task.bundle, self.config)
        result = await env.score(Sample(**task.sample), trace_output(trace))
        for name, score in result.scores.items():
            trace.record_metric(name, score.value)
        if result.value is None:
            raise EnvError(f"no grader scored task {task.id!r}: "
                           f"{result.skipped or result.errors}")
        return result.value

    @vf.stop  # type: ignore[untyped-decorator]
    def answered_with_tools(self, response: vf.Response) -> bool:
        """Single turn: tool calls are the answer (the tools are not run)."""
        return bool(response.message.tool_calls)


class VeteranTaskset(vf.Taskset[VeteranTask, VeteranTasksetConfig]):  # type: ignore[misc]
    BUNDLE: ClassVar[str] = ""  # set by the exported package: its module name

    def __init__(self, config: VeteranTasksetConfig) -> None:
        super().__init__(config)
        self.environment = bundle_environment(self.BUNDLE, config.task)  # fail early

    def load(self) -> Any:
        system = "\n\n".join(self.environment.system) or None
        for sample in self.environment.tasks:
            data = VeteranTaskData(id=sample.id, prompt=vf_messages(sample.messages),
                                   system_prompt=system, sample=_sample_json(sample),
                                   bundle=self.BUNDLE)
            yield VeteranTask(data, self.config.task)


class VeteranHarness(NullHarness):  # type: ignore[misc]
    """verifiers' plain chat loop: a task is one model turn, no code runs."""


def load_bundle_environment(bundle: str, *, judge_base_url: str | None = None,
                            **config: Any) -> Any:
    """verifiers' own loader on the bundle's taskset (a `SingleAgentEnv`), in a local
    subprocess runtime unless `config` says otherwise."""
    raw: dict[str, Any] = {"agent": {"runtime": {"type": "subprocess"}}}
    _merge(raw, config)
    taskset = raw.setdefault("taskset", {})
    taskset["id"] = bundle
    if judge_base_url is not None:
        taskset.setdefault("task", {})["judge_base_url"] = judge_base_url
    return vf.load_environment(vf.SingleAgentEnvConfig.model_validate(raw))


def bundle_environment(bundle: str, config: VeteranTaskConfig) -> Environment:
    """The veteran environment in package `bundle`, built once per judge setting."""
    key = (bundle, config.judge_base_url, config.judge_api_key_var)
    if key not in _ENVIRONMENTS:
        header = orjson.loads((files(bundle) / BUNDLE_FILE).read_bytes())
        judges = [n for n, s in header.get("graders", {}).items()
                  if s.get("type") in MODEL_GRADERS]
        complete = None
        if judges:
            if config.judge_base_url is None:
                raise EnvError(f"grader(s) {', '.join(judges)} are LLM judges: give "
                               "judge_base_url (--env.taskset.task.judge-base-url)")
            complete = http_complete(config.judge_base_url,
                                     os.environ.get(config.judge_api_key_var))
        _ENVIRONMENTS[key] = read_bundle(Path(str(files(bundle))), complete=complete)
    return _ENVIRONMENTS[key]


def http_complete(base_url: str, api_key: str | None) -> Complete:
    """A judge call to an OpenAI-compatible `POST {base_url}/chat/completions`."""
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    async def complete(body: dict[str, Any]) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                url, json=body, headers=headers) as response:
            answer = await response.json(content_type=None)
            if response.status >= 400 or not isinstance(answer, dict):
                raise EnvError(f"judge call to {url} failed: HTTP {response.status}")
            return answer

    return complete


def trace_output(trace: Any) -> Output:
    """The trace's last model answer, as a veteran `Output` (OpenAI tool-call shape)."""
    answers = trace.assistant_messages
    if not answers:
        return Output(text="", error="the rollout produced no answer")
    message = answers[-1]
    calls = [{"id": c.id, "type": "function",
              "function": {"name": c.name, "arguments": c.arguments}}
             for c in message.tool_calls or []]
    return Output(text=message.content or "", tool_calls=calls)


_MESSAGE = TypeAdapter(vf.Message)


def vf_messages(messages: list[dict[str, Any]]) -> list[Any]:
    """OpenAI chat messages as verifiers messages."""
    out = []
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role")
        message: dict[str, Any] = {**m, "role": role}
        if role != "assistant" and message.get("content") is None:
            message["content"] = ""
        if m.get("tool_calls"):
            message["tool_calls"] = [_vf_call(c) for c in m["tool_calls"]]
        out.append(_MESSAGE.validate_python(message))
    return out


def _vf_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function", call)
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments).decode()
    return {"id": call.get("id") or "", "name": function.get("name"), "arguments": arguments}


def _sample_json(sample: Sample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in Sample.__slots__}


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
