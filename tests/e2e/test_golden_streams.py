"""Issue 6, item 2: every converted stream in testdata/stream is fed to the official SDK's
stream accumulator for its dialect and must be accepted with the content, thinking, tool
calls, stop reason and usage that the source transcript implies. The expectation is computed
here from the `.in.sse`, not read from a2o's output, so a wrong conversion cannot agree with
itself. Outputs whose source ends in an error (or never finishes) must make the SDK raise."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import openai
import pytest

from harness import REPO
from sse_files import (
    ANTHROPIC_TO_OPENAI_FINISH, OPENAI_TO_ANTHROPIC_STOP, TranscriptServer,
    expect_from_anthropic, expect_from_openai,
)

STREAMS = REPO / "testdata" / "stream"
# The recorded corpus streams. The hand-written `hand-*` cases exercise faults and edge cases
# (truncation, restored names, synthesized ids) that this simple oracle does not model yet.
TO_OPENAI = sorted(p for p in (STREAMS / "anthropic-to-openai").glob("*.out.sse") if not p.name.startswith("hand-"))
TO_ANTHROPIC = sorted(p for p in (STREAMS / "openai-to-anthropic").glob("*.out.sse") if not p.name.startswith("hand-"))

def case_id(path: Path) -> str:
    return path.name.removesuffix(".out.sse")


def source_of(output: Path) -> Path:
    return output.with_name(output.name.replace(".out.sse", ".in.sse"))


def include_usage(output: Path) -> bool:
    options = output.with_name(output.name.replace(".out.sse", ".options.json"))
    if not options.is_file():
        return False
    return bool(json.loads(options.read_text()).get("include_usage"))


@pytest.fixture(scope="module")
def transcripts():
    server = TranscriptServer(STREAMS)
    yield server
    server.stop()


def test_there_are_golden_streams_for_both_directions():
    assert TO_OPENAI and TO_ANTHROPIC


@pytest.mark.parametrize("output", TO_OPENAI, ids=case_id)
def test_openai_sdk_accepts_converted_stream(transcripts, output):
    expected = expect_from_anthropic(source_of(output).read_bytes())
    client = openai.OpenAI(
        base_url=transcripts.base_url(output.relative_to(STREAMS).as_posix()) + "/v1",
        api_key="golden", max_retries=0, timeout=10,
    )
    request = dict(model="golden", messages=[{"role": "user", "content": "replay"}])
    if include_usage(output):
        request["stream_options"] = {"include_usage": True}

    if expected.error or not expected.complete:
        with pytest.raises(openai.APIError):
            with client.chat.completions.stream(**request) as stream:
                stream.get_final_completion()
        return

    with client.chat.completions.stream(**request) as stream:
        completion = stream.get_final_completion()

    [choice] = completion.choices
    message = choice.message
    assert (message.content or "") == expected.text
    extra = message.model_extra or {}
    assert (extra.get("reasoning_content") or "") == expected.reasoning
    # The accumulator merges `thinking_blocks` entries by index, so each block arrives whole:
    # its text, its signature or data, in order, ready to replay.
    sent_blocks = extra.get("thinking_blocks") or []
    assert [(b["type"], b.get("thinking", ""), b.get("signature") or b.get("data")) for b in sent_blocks] == [
        (b["type"], b.get("thinking", ""), b.get("signature") or b.get("data")) for b in expected.thinking
    ]
    calls = message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments or "{}")) for c in calls] == [
        (t["id"], t["name"], t["arguments"]) for t in expected.tools
    ]
    assert choice.finish_reason == ANTHROPIC_TO_OPENAI_FINISH[expected.stop]
    if include_usage(output):
        source = expected.usage
        cache_read = source.get("cache_read_input_tokens", 0)
        prompt = source.get("input_tokens", 0) + cache_read + source.get("cache_creation_input_tokens", 0)
        usage = completion.usage
        assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, source["output_tokens"])
        assert usage.total_tokens == prompt + source["output_tokens"]
        details = usage.prompt_tokens_details
        assert (details.cached_tokens if details else 0) == cache_read
    else:
        assert completion.usage is None


@pytest.mark.parametrize("output", TO_ANTHROPIC, ids=case_id)
def test_anthropic_sdk_accepts_converted_stream(transcripts, output):
    expected = expect_from_openai(source_of(output).read_bytes())
    client = anthropic.Anthropic(
        base_url=transcripts.base_url(output.relative_to(STREAMS).as_posix()),
        api_key="golden", max_retries=0, timeout=10,
    )
    request = dict(model="golden", max_tokens=1024, messages=[{"role": "user", "content": "replay"}])

    if expected.error or not expected.complete:
        with pytest.raises(anthropic.APIError):
            with client.messages.stream(**request) as stream:
                stream.get_final_message()
        return

    with client.messages.stream(**request) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()

    assert text == expected.text
    assert "".join(b.text for b in message.content if b.type == "text") == expected.text
    thinking = [b.thinking for b in message.content if b.type == "thinking"]
    assert "".join(thinking) == expected.reasoning
    tool_uses = [b for b in message.content if b.type == "tool_use"]
    assert [(b.id, b.name, b.input) for b in tool_uses] == [
        (t["id"], t["name"], t["arguments"]) for t in expected.tools
    ]
    assert message.stop_reason == OPENAI_TO_ANTHROPIC_STOP[expected.stop]
    if expected.usage:
        cached = (expected.usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        usage = message.usage
        assert usage.input_tokens == expected.usage["prompt_tokens"] - cached
        assert (usage.cache_read_input_tokens or 0) == cached
        assert usage.output_tokens == expected.usage["completion_tokens"]
