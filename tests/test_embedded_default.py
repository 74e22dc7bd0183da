"""The embedded default, as `make run` serves it: `veteran init`, then the official openai SDK
gets real answers from the local model, plain and streamed, and both are captured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from tests.conftest import serve
from veteran.workspace import init_workspace

pytestmark = pytest.mark.slow


def test_default_workspace_answers_with_the_local_model(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "workspace")
    question = [{"role": "user", "content": "What is the capital of France?"}]
    with serve(workspace) as server, openai.OpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120
    ) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=question, max_tokens=24, temperature=0
        )
        answer = raw.parse()
        plain_id = raw.headers["x-veteran-trajectory-id"]
        assert "Paris" in (answer.choices[0].message.content or "")
        assert answer.usage is not None and answer.usage.completion_tokens > 0

        with client.chat.completions.with_streaming_response.create(
            model="local/smollm2-135m-instruct", messages=question, max_tokens=24,
            temperature=0, stream=True, stream_options={"include_usage": True},
        ) as response:
            streamed_id = response.headers["x-veteran-trajectory-id"]
            chunks = list(response.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert len([c for c in chunks if c.choices]) > 3  # real token streaming
        assert text == answer.choices[0].message.content

        with pytest.raises(openai.BadRequestError, match="tools"):
            client.chat.completions.create(
                model="chat", messages=question,
                tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            )

        with httpx.Client(base_url=server.url) as http:
            stored = http.get(f"/v1/trajectories/{streamed_id}").json()
            assert stored["status"] == "ok" and stored["stream"] is True
            assert stored["response"]["choices"][0]["message"]["content"] == text
            assert len(http.get("/v1/trajectories").json()["data"]) == 2  # the 400 stored nothing

    shown = subprocess.run(
        [sys.executable, "-m", "veteran.cli", "trajectories", "show", plain_id,
         "--workspace", str(workspace.path)], capture_output=True, check=True,
    )
    assert "Paris" in orjson.loads(shown.stdout)["response"]["choices"][0]["message"]["content"]
    assert (workspace.path / "veteran.db").exists()
