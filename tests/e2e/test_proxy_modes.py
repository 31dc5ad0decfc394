"""Both SDKs against `a2o serve` in its other modes: `--force-non-stream` (the upstream is
called without streaming and a2o synthesises the stream the client asked for) and a short
`--http-timeout` (a stalled upstream must end the client's call with an SDK error, promptly,
in both the streaming and the non-streaming case)."""

from __future__ import annotations

import json
import time

import anthropic
import openai
import pytest

from common import ANSWER, MODEL, REDACTED_DATA, SIGNATURE, THINKING, TOOL_ARGS, anthropic_tool, ask, openai_tool
from harness import Proxy

STALL_TIMEOUT = 1


@pytest.fixture(scope="module")
def mode_proxies(mock_upstream, log_dir):
    started = {}
    try:
        for upstream in ("anthropic", "openai"):
            started["force", upstream] = Proxy(
                mock_upstream.url, upstream, log_dir, name=f"force-non-stream-{upstream}", extra=["--force-non-stream"],
            )
            started["stall", upstream] = Proxy(
                mock_upstream.url, upstream, log_dir, name=f"short-timeout-{upstream}", http_timeout=STALL_TIMEOUT,
            )
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()


def openai_client(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.openai_front}/v1", api_key="sk-e2e", max_retries=0, timeout=15)


def anthropic_client(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.anthropic_front, api_key="sk-e2e", max_retries=0, timeout=15)


def assert_upstream_was_not_streamed(mock) -> None:
    assert mock.last_body().get("stream") in (None, False)


# --- --force-non-stream ----------------------------------------------------------------------

def test_forced_openai_stream_helper(mode_proxies, mock, upstream):
    client = openai_client(mode_proxies["force", upstream])
    tools = [openai_tool("get_weather"), openai_tool("get_time")]
    with client.chat.completions.stream(
        model=MODEL, messages=[ask("Hi", "parallel_tools")], tools=tools, stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    assert_upstream_was_not_streamed(mock)
    message = final.choices[0].message
    assert message.content == "Let me check."
    assert [call.function.name for call in message.tool_calls] == ["get_weather", "get_time", "get_weather"]
    assert [json.loads(call.function.arguments) for call in message.tool_calls] == TOOL_ARGS
    assert final.choices[0].finish_reason == "tool_calls"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (12, 7)


def test_forced_openai_raw_chunks_with_cached_usage(mode_proxies, mock, upstream):
    client = openai_client(mode_proxies["force", upstream])
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[ask("Hi", "cache")], stream=True, stream_options={"include_usage": True},
    ))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.prompt_tokens_details.cached_tokens) == (160, 100)


def test_forced_openai_stream_with_thinking(mode_proxies, mock, upstream):
    client = openai_client(mode_proxies["force", upstream])
    with client.chat.completions.stream(model=MODEL, messages=[ask("Think.", "thinking_redacted")]) as stream:
        message = stream.get_final_completion().choices[0].message
    assert message.content == ANSWER
    assert (message.model_extra or {}).get("reasoning_content") == THINKING
    if upstream == "anthropic":
        blocks = [(block["type"], block.get("signature") or block.get("data"))
                  for block in message.model_extra["thinking_blocks"]]
        assert blocks == [("thinking", SIGNATURE), ("redacted_thinking", REDACTED_DATA)]


def test_forced_anthropic_stream_helper(mode_proxies, mock, upstream):
    client = anthropic_client(mode_proxies["force", upstream])
    tools = [anthropic_tool("get_weather"), anthropic_tool("get_time")]
    with client.messages.stream(
        model=MODEL, max_tokens=256, messages=[ask("Hi", "parallel_tools")], tools=tools,
    ) as messages:
        events = list(messages)
        final = messages.get_final_message()
    assert_upstream_was_not_streamed(mock)
    assert [event.type for event in events][0] == "message_start"
    assert [block.type for block in final.content] == ["text", "tool_use", "tool_use", "tool_use"]
    assert final.content[0].text == "Let me check."
    assert [block.input for block in final.content[1:]] == TOOL_ARGS
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 7)


def test_forced_anthropic_stream_with_thinking(mode_proxies, mock, upstream):
    client = anthropic_client(mode_proxies["force", upstream])
    with client.messages.stream(
        model=MODEL, max_tokens=2048, messages=[ask("Think.", "thinking_redacted")],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as messages:
        final = messages.get_final_message()
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == THINKING
    assert final.content[-1].text == ANSWER
    if upstream == "anthropic":
        assert final.content[0].signature == SIGNATURE
        assert (final.content[1].type, final.content[1].data) == ("redacted_thinking", REDACTED_DATA)


def test_forced_stream_upstream_error_is_an_sdk_error(mode_proxies, mock, upstream):
    with pytest.raises(openai.RateLimitError):
        with openai_client(mode_proxies["force", upstream]).chat.completions.stream(
            model=MODEL, messages=[ask("Hi", "error:429")],
        ) as stream:
            stream.get_final_completion()
    with pytest.raises(anthropic.RateLimitError):
        with anthropic_client(mode_proxies["force", upstream]).messages.stream(
            model=MODEL, max_tokens=256, messages=[ask("Hi", "error:429")],
        ) as messages:
            messages.get_final_message()


# --- a stalled upstream ----------------------------------------------------------------------

def elapsed(since: float) -> float:
    return time.monotonic() - since


def test_stalled_stream_ends_with_an_sdk_error_not_a_hang(mode_proxies, mock, upstream):
    proxy = mode_proxies["stall", upstream]
    started = time.monotonic()
    with pytest.raises(openai.APIError):
        with openai_client(proxy).chat.completions.stream(model=MODEL, messages=[ask("Hi", "stall")]) as stream:
            stream.get_final_completion()
    assert elapsed(started) < STALL_TIMEOUT + 5

    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError):
        with anthropic_client(proxy).messages.stream(
            model=MODEL, max_tokens=256, messages=[ask("Hi", "stall")],
        ) as messages:
            messages.get_final_message()
    assert elapsed(started) < STALL_TIMEOUT + 5


def test_stalled_response_is_a_504(mode_proxies, mock, upstream):
    proxy = mode_proxies["stall", upstream]
    with pytest.raises(openai.InternalServerError) as raised:
        openai_client(proxy).chat.completions.create(model=MODEL, messages=[ask("Hi", "stall")])
    assert raised.value.status_code == 504
    with pytest.raises(anthropic.APIStatusError) as raised:
        anthropic_client(proxy).messages.create(model=MODEL, max_tokens=256, messages=[ask("Hi", "stall")])
    assert raised.value.status_code == 504
