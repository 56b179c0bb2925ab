"""The Space as an MCP server: the app (tiny model) launched with `mcp_server=True`, as `--mcp` does, in this
process; an MCP client (the `mcp` package, from gradio[mcp]) lists its tools over streamable HTTP, checks the
speak / clone / list_voices descriptions name every parameter, and calls speak once.
"""
from __future__ import annotations

import asyncio
import re
import tempfile
import urllib.request

import pytest

from test_app import app, check_wav, free_port, load_model, make_voices, speechlike  # isort: skip

mcp = pytest.importorskip("mcp", reason="the mcp package is not installed (pip install -r requirements.txt)")
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

TOOLS = {"speak": ["text", "preset", "voice_file", "top_k", "temperature", "seed", "glossary", "speed"],
         "clone": ["text", "prompt_audio", "transcript", "top_k", "temperature", "seed", "candidates"],
         "list_voices": []}


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory):
    loaded = load_model("tiny-random")
    voices = make_voices(tmp_path_factory.mktemp("mcp-voices"), loaded.tts, speechlike(seed=5))
    demo = app.build_demo(loaded, voices)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            mcp_server=True, **app.launch_options(voices))
    yield url.rstrip("/") + "/gradio_api/mcp/"
    demo.close()


async def _session(url: str, work):
    async with streamablehttp_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def test_flag_and_env_var_turn_the_mcp_server_on(monkeypatch):
    monkeypatch.delenv(app.MCP_ENV_VAR, raising=False)
    assert not app.parse_args([]).mcp and app.parse_args(["--mcp"]).mcp
    monkeypatch.setenv(app.MCP_ENV_VAR, "1")
    assert app.parse_args([]).mcp


def test_tools_are_listed_with_every_parameter_described_and_speak_answers(mcp_url):
    async def work(session):
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        result = await session.call_tool("speak", {"text": "Hello over MCP.", "preset": "demo", "seed": 3})
        return tools, result

    tools, result = asyncio.run(_session(mcp_url, work))
    for name, parameters in TOOLS.items():
        assert name in tools, sorted(tools)
        schema = tools[name].inputSchema["properties"]
        assert list(schema) == parameters
        for parameter in parameters:  # each described in words, not just typed
            assert len(schema[parameter].get("description", "")) > 15, (name, parameter, schema[parameter])
        assert len(tools[name].description) > 40
    assert '"" to have them recognized' in tools["clone"].inputSchema["properties"]["transcript"]["description"]
    assert not result.isError, result.content
    text = " ".join(c.text for c in result.content if c.type == "text")
    assert "Model: tiny-random" in text and "Preset: Demo" in text, text
    (url,) = re.findall(r"'url': '(http://[^']+\.wav)'", text)  # the WAV, served by the app
    with urllib.request.urlopen(url, timeout=30) as response, tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        wav.write(response.read())
        wav.flush()
        check_wav(wav.name)
