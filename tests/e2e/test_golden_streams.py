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
# Every converted stream: the recorded corpus and the hand-written faults and edge cases
# (truncation, restored names, made-up ids, refusals, stop sequences).
TO_OPENAI = sorted(p for p in (STREAMS / "anthropic-to-openai").glob("*.out.sse"))
TO_ANTHROPIC = sorted(p for p in (STREAMS / "openai-to-anthropic").glob("*.out.sse"))

def case_id(path: Path) -> str:
    return path.name.removesuffix(".out.sse")


def source_of(output: Path) -> Path:
    return output.with_name(output.name.replace(".out.sse", ".in.sse"))


def options(output: Path) -> dict:
    path = output.with_name(output.name.replace(".out.sse", ".options.json"))
    return json.loads(path.read_text()) if path.is_file() else {}


def include_usage(output: Path) -> bool:
    return bool(options(output).get("include_usage"))


def client_request(output: Path) -> dict | None:
    """The client's own request the conversion was made for, when the case names one."""
    name = options(output).get("request")
    return json.loads((output.parent / name).read_text()) if name else None


def same_calls(actual: list[tuple], expected: list[dict]) -> bool:
    """Tool calls match; an expected id of None or name of "" means the upstream sent none,
    and any made-up, non-empty one will do."""
    if len(actual) != len(expected):
        return False
    return all(
        (want["id"] is None and bool(got_id) or got_id == want["id"])
        and (want["name"] == "" and bool(got_name) or got_name == want["name"])
        and got_args == want["arguments"]
        for (got_id, got_name, got_args), want in zip(actual, expected)
    )


# The OpenAI stream helper's final parse refuses these finishes, as it does with OpenAI itself.
FINISH_REFUSED_BY_SDK = {
    "length": openai.LengthFinishReasonError,
    "content_filter": openai.ContentFilterFinishReasonError,
}


@pytest.fixture(scope="module")
def transcripts():
    server = TranscriptServer(STREAMS)
    yield server
    server.stop()


def test_there_are_golden_streams_for_both_directions():
    assert TO_OPENAI and TO_ANTHROPIC


@pytest.mark.parametrize("output", TO_OPENAI, ids=case_id)
def test_openai_sdk_accepts_converted_stream(transcripts, output):
    expected = expect_from_anthropic(source_of(output).read_bytes(), client_request(output))
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

    finish = ANTHROPIC_TO_OPENAI_FINISH[expected.stop]
    with client.chat.completions.stream(**request) as stream:
        for _ in stream:
            pass
        if finish in FINISH_REFUSED_BY_SDK:
            with pytest.raises(FINISH_REFUSED_BY_SDK[finish]):
                stream.get_final_completion()
            completion = stream.current_completion_snapshot
        else:
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
    calls = [(c.id, c.function.name, json.loads(c.function.arguments or "{}")) for c in message.tool_calls or []]
    assert same_calls(calls, expected.tools), (calls, expected.tools)
    assert choice.finish_reason == finish
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
    expected = expect_from_openai(source_of(output).read_bytes(), client_request(output))
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
    tool_uses = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert same_calls(tool_uses, expected.tools), (tool_uses, expected.tools)
    stop = OPENAI_TO_ANTHROPIC_STOP[expected.stop]
    if expected.stop_sequence:
        stop = "stop_sequence"
    elif expected.refused and not expected.tools:
        stop = "refusal"
    elif stop == "end_turn" and expected.tools:
        # Some upstreams finish a turn that called tools with "stop"; the calls still ask for
        # results, which Anthropic clients only send after "tool_use".
        stop = "tool_use"
    assert message.stop_reason == stop
    if expected.usage:
        cached = (expected.usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        usage = message.usage
        assert usage.input_tokens == expected.usage["prompt_tokens"] - cached
        assert (usage.cache_read_input_tokens or 0) == cached
        assert usage.output_tokens == expected.usage["completion_tokens"]
