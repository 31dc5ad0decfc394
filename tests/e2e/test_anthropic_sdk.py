"""The official `anthropic` Python SDK against a2o's Anthropic front, on both upstream
dialects: every test runs twice (`anthropic-upstream`: pass-through; `openai-upstream`:
translated). The SDK's `messages.stream()` helper rebuilds the message from the events and
rejects a delta that does not match its block, so a stream it accepts is well formed."""

from __future__ import annotations

import asyncio
import json
import re

import anthropic
import pydantic
import pytest

from common import (
    ANSWER, CITY_SCHEMA, IMAGE_URL, MODEL, PNG_BASE64, REDACTED_DATA, SIGNATURE, THINKING, TOOL_ARGS,
    anthropic_tool, ask, upstream_key, upstream_path,
)

WEATHER = anthropic_tool("get_weather")
TIME = anthropic_tool("get_time")
MAX_TOKENS = 256
THINKING_ON = {"type": "enabled", "budget_tokens": 1024}


def create(client, *messages, **options):
    options.setdefault("max_tokens", MAX_TOKENS)
    return client.messages.create(model=MODEL, messages=list(messages), **options)


def stream(client, *messages, **options):
    options.setdefault("max_tokens", MAX_TOKENS)
    return client.messages.stream(model=MODEL, messages=list(messages), **options)


# --- create, streams ------------------------------------------------------------------------

def test_create_without_streaming(claude, mock, upstream):
    message = create(claude, ask("Hi"))

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == ANSWER
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 7)
    [request] = mock.posts()
    assert request["path"] == upstream_path(upstream)
    assert upstream_key(request, upstream) == "sk-e2e"
    body = request["body"]
    if upstream == "anthropic":
        assert body["max_tokens"] == MAX_TOKENS
    else:
        assert body["max_completion_tokens"] == MAX_TOKENS or body.get("max_tokens") == MAX_TOKENS


def test_stream_helper_text_stream_and_final_message(claude, mock, upstream):
    with stream(claude, ask("Hi")) as messages:
        pieces = list(messages.text_stream)
        final = messages.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == ANSWER
    assert final.content[0].text == ANSWER
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 7)
    assert mock.last_body()["stream"] is True


def test_stream_helper_events(claude, mock, upstream):
    with stream(claude, ask("Hi")) as messages:
        events = list(messages)

    types = [event.type for event in events]
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    assert types.count("content_block_start") == types.count("content_block_stop") == 1
    texts = [event for event in events if event.type == "text"]
    assert "".join(event.text for event in texts) == ANSWER
    assert texts[-1].snapshot == ANSWER
    [stop] = [event for event in events if event.type == "content_block_stop"]
    assert stop.content_block.text == ANSWER


def test_raw_events(claude, mock, upstream):
    events = list(create(claude, ask("Hi"), stream=True))

    types = [event.type for event in events]
    assert types[0] == "message_start"
    assert types[1] == "content_block_start"
    assert set(types[2:-3]) == {"content_block_delta"}
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0].message
    assert (start.role, start.model, start.content) == ("assistant", MODEL, [])
    assert events[1].content_block.type == "text"
    assert "".join(event.delta.text for event in events if event.type == "content_block_delta") == ANSWER
    assert all(event.index == 0 for event in events if hasattr(event, "index"))
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 7


@pytest.mark.parametrize("streaming", [False, True], ids=["create", "stream-helper"])
def test_usage_with_cache(claude, mock, upstream, streaming):
    if streaming:
        with stream(claude, ask("Hi", "cache")) as messages:
            message = messages.get_final_message()
    else:
        message = create(claude, ask("Hi", "cache"))

    usage = message.usage
    assert message.content[0].text == ANSWER
    assert usage.output_tokens == 5
    assert usage.cache_read_input_tokens == 100
    if upstream == "anthropic":
        assert (usage.input_tokens, usage.cache_creation_input_tokens) == (10, 50)
    else:
        # OpenAI reports prompt 160 with 100 cached and no cache writes: 60 uncached input.
        assert usage.input_tokens == 60
        assert usage.cache_creation_input_tokens in (0, None)
        assert mock.last_body().get("stream_options", {"include_usage": True}) == {"include_usage": True}


def test_stop_reasons(claude, mock, upstream):
    assert create(claude, ask("Hi", "max_tokens"), max_tokens=1).stop_reason == "max_tokens"

    stopped = create(claude, ask("Hi", "stop_sequence"), stop_sequences=["END"])
    if upstream == "anthropic":
        assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "END")
    else:
        # OpenAI's finish_reason "stop" does not say whether a stop sequence matched.
        assert stopped.stop_reason == "end_turn"
        assert mock.last_body()["stop"] == ["END"]


# --- tools -----------------------------------------------------------------------------------

def test_one_tool_call(claude, mock, upstream):
    message = create(claude, ask("Weather in Paris?", "tool"), tools=[WEATHER])

    assert message.stop_reason == "tool_use"
    [tool_use] = [block for block in message.content if block.type == "tool_use"]
    assert tool_use.id
    assert (tool_use.name, tool_use.input) == ("get_weather", TOOL_ARGS[0])
    body = mock.last_body()
    if upstream == "openai":
        assert body["tools"][0]["type"] == "function"
        assert body["tools"][0]["function"]["name"] == "get_weather"
        assert body["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}


def test_one_tool_call_stream_helper(claude, mock, upstream):
    with stream(claude, ask("Weather in Paris?", "tool"), tools=[WEATHER]) as messages:
        events = list(messages)
        final = messages.get_final_message()

    partial = "".join(event.partial_json for event in events if event.type == "input_json")
    assert partial.replace(" ", "") == '{"city":"Paris"}'
    [tool_use] = [block for block in final.content if block.type == "tool_use"]
    assert (tool_use.name, tool_use.input) == ("get_weather", TOOL_ARGS[0])
    assert final.stop_reason == "tool_use"


def check_parallel(message) -> None:
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Let me check."
    calls = message.content[1:]
    assert [block.type for block in calls] == ["tool_use"] * 3
    assert [block.name for block in calls] == ["get_weather", "get_time", "get_weather"]
    assert [block.input for block in calls] == TOOL_ARGS
    assert len({block.id for block in calls}) == 3


def test_parallel_tool_calls(claude, mock, upstream):
    check_parallel(create(claude, ask("Weather and time?", "parallel_tools"), tools=[WEATHER, TIME]))


def test_parallel_tool_calls_stream_helper(claude, mock, upstream):
    with stream(claude, ask("Weather and time?", "parallel_tools"), tools=[WEATHER, TIME]) as messages:
        check_parallel(messages.get_final_message())


def test_parallel_tool_calls_raw_events(claude, mock, upstream):
    events = list(create(claude, ask("Weather and time?", "parallel_tools"), tools=[WEATHER, TIME], stream=True))
    blocks: dict[int, dict] = {}
    for event in events:
        if event.type == "content_block_start":
            assert event.index not in blocks, "each block starts once"
            blocks[event.index] = {"type": event.content_block.type, "json": "", "text": "", "open": True}
            if event.content_block.type == "tool_use":
                blocks[event.index]["name"] = event.content_block.name
        elif event.type == "content_block_delta":
            block = blocks[event.index]
            assert block["open"], "no delta after content_block_stop"
            if event.delta.type == "input_json_delta":
                assert block["type"] == "tool_use"
                block["json"] += event.delta.partial_json
            else:
                assert (block["type"], event.delta.type) == ("text", "text_delta")
                block["text"] += event.delta.text
        elif event.type == "content_block_stop":
            blocks[event.index]["open"] = False
    assert sorted(blocks) == [0, 1, 2, 3]
    assert not any(block["open"] for block in blocks.values())
    assert blocks[0]["text"] == "Let me check."
    assert [json.loads(blocks[i]["json"]) for i in (1, 2, 3)] == TOOL_ARGS


@pytest.mark.parametrize("streaming", [False, True], ids=["create", "stream-helper"])
def test_tool_round_trip(claude, mock, upstream, streaming):
    question = "Weather in Paris?"
    if streaming:
        with stream(claude, ask(question, "tool"), tools=[WEATHER]) as messages:
            answer = messages.get_final_message()
    else:
        answer = create(claude, ask(question, "tool"), tools=[WEATHER])
    [tool_use] = [block for block in answer.content if block.type == "tool_use"]

    # The SDK's own content blocks go back as the assistant turn; the question loses its
    # scenario token so the mock answers with text.
    final = create(
        claude,
        ask(question),
        {"role": "assistant", "content": answer.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "22 C and sunny"}]},
        tools=[WEATHER],
    )
    assert final.content[0].text == ANSWER
    assert final.stop_reason == "end_turn"

    messages = mock.last_body()["messages"]
    if upstream == "anthropic":
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        [sent] = [block for block in messages[1]["content"] if block["type"] == "tool_use"]
        assert (sent["id"], sent["name"], sent["input"]) == (tool_use.id, "get_weather", TOOL_ARGS[0])
        assert messages[2]["content"][0]["tool_use_id"] == tool_use.id
    else:
        assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
        [call] = messages[1]["tool_calls"]
        assert call["id"] == tool_use.id
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == TOOL_ARGS[0]
        assert messages[2]["tool_call_id"] == tool_use.id
        assert messages[2]["content"] in ("22 C and sunny", [{"type": "text", "text": "22 C and sunny"}])


# --- thinking --------------------------------------------------------------------------------

@pytest.mark.parametrize("streaming", [False, True], ids=["create", "stream-helper"])
def test_thinking_signature_is_replayed(claude, mock, upstream, streaming):
    question = "Think first."
    if streaming:
        with stream(claude, ask(question, "thinking"), max_tokens=2048, thinking=THINKING_ON) as messages:
            events = list(messages)
            answer = messages.get_final_message()
        assert "".join(event.thinking for event in events if event.type == "thinking") == THINKING
    else:
        answer = create(claude, ask(question, "thinking"), max_tokens=2048, thinking=THINKING_ON)

    assert [block.type for block in answer.content] == ["thinking", "text"]
    thinking, text = answer.content
    assert thinking.thinking == THINKING
    assert text.text == ANSWER
    if upstream == "anthropic":
        assert thinking.signature == SIGNATURE
    else:
        # OpenAI-compatible upstreams send reasoning_content without a signature.
        assert isinstance(thinking.signature, str)

    create(
        claude,
        ask(question),
        {"role": "assistant", "content": answer.content},
        ask("Go on."),
        max_tokens=2048,
        thinking=THINKING_ON,
    )
    replayed = mock.last_body()["messages"][1]
    if upstream == "anthropic":
        assert replayed["content"][0] == {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}
    else:
        assert replayed["role"] == "assistant"
        assert replayed["content"] == ANSWER or replayed["content"] == [{"type": "text", "text": ANSWER}]
        assert replayed["reasoning_content"] == THINKING


def test_redacted_thinking_is_replayed(claude, mock, upstream):
    answer = create(claude, ask("Think.", "thinking_redacted"), max_tokens=2048, thinking=THINKING_ON)
    types = [block.type for block in answer.content]
    if upstream == "openai":
        assert types == ["thinking", "text"]
        return
    assert types == ["thinking", "redacted_thinking", "text"]
    assert answer.content[1].data == REDACTED_DATA
    create(claude, ask("Think."), {"role": "assistant", "content": answer.content}, ask("More."),
           max_tokens=2048, thinking=THINKING_ON)
    assert mock.last_body()["messages"][1]["content"][1] == {"type": "redacted_thinking", "data": REDACTED_DATA}


# --- request features reaching the upstream -------------------------------------------------

def test_base64_image_reaches_the_upstream_in_its_dialect(claude, mock, upstream):
    message = create(claude, {"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
        {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
        {"type": "text", "text": "What is in these images?"},
    ]})
    assert message.content[0].text == ANSWER

    parts = mock.last_body()["messages"][0]["content"]
    if upstream == "anthropic":
        assert parts[0]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}
        assert parts[1]["source"] == {"type": "url", "url": IMAGE_URL}
    else:
        assert parts[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}}
        assert parts[1] == {"type": "image_url", "image_url": {"url": IMAGE_URL}}
        assert parts[2] == {"type": "text", "text": "What is in these images?"}


def test_system_prompt_and_max_tokens(claude, mock, upstream):
    create(claude, ask("Hi"), system="Answer in French.", max_tokens=77)
    body = mock.last_body()
    if upstream == "anthropic":
        assert (body["system"], body["max_tokens"]) == ("Answer in French.", 77)
    else:
        assert body["messages"][0]["role"] in ("system", "developer")
        assert body["messages"][0]["content"] in ("Answer in French.", [{"type": "text", "text": "Answer in French."}])
        assert body.get("max_completion_tokens", body.get("max_tokens")) == 77


def test_structured_output_format(claude, mock, upstream):
    schema = CITY_SCHEMA
    output_config = {"format": {"type": "json_schema", "schema": schema}}
    message = create(claude, ask("Weather?"), output_config=output_config)
    assert message.content[0].text == ANSWER
    body = mock.last_body()
    if upstream == "anthropic":
        assert body["output_config"]["format"]["schema"] == schema
    else:
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"] == schema


def test_count_tokens(claude, mock, upstream):
    counted = claude.messages.count_tokens(
        model=MODEL, system="Be brief.", tools=[WEATHER],
        messages=[ask("How many tokens is this sentence?")],
    )
    assert isinstance(counted.input_tokens, int) and counted.input_tokens > 0
    posts = mock.posts()
    if upstream == "anthropic":
        [request] = posts
        assert request["path"] == "/v1/messages/count_tokens"
        assert request["body"]["tools"] == [WEATHER]
    else:
        assert posts == [], "an OpenAI upstream has no count_tokens: a2o estimates locally"


def test_count_tokens_grows_with_content(claude, mock, upstream):
    short = claude.messages.count_tokens(model=MODEL, messages=[ask("Hi")]).input_tokens
    longer = claude.messages.count_tokens(model=MODEL, messages=[ask("Hi " * 400)]).input_tokens
    assert longer > short


def test_models_list(claude, mock, upstream):
    models = list(claude.models.list())
    expected = "claude-mock-1" if upstream == "anthropic" else "gpt-mock-1"
    assert [model.id for model in models] == [expected]
    assert all(model.type == "model" for model in models)


def test_models_retrieve(claude, mock, upstream):
    expected = "claude-mock-1" if upstream == "anthropic" else "gpt-mock-1"
    model = claude.models.retrieve(expected)
    assert (model.id, model.type) == (expected, "model")
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("no-such-model")


# --- errors ----------------------------------------------------------------------------------

def test_missing_key_is_a2os_own_401(proxy, mock, upstream, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    client = anthropic.Anthropic(
        base_url=proxy.anthropic_front, api_key=None, auth_token=None, max_retries=0,
        default_headers={"Authorization": anthropic.Omit()},
    )
    with pytest.raises(anthropic.AuthenticationError) as raised:
        create(client, ask("Hi"))
    assert raised.value.status_code == 401
    assert raised.value.body["type"] == "error"
    assert mock.posts() == []


@pytest.mark.parametrize(
    ("scenario", "error_class", "status"),
    [
        ("error:401", anthropic.AuthenticationError, 401),
        ("error:429", anthropic.RateLimitError, 429),
        ("error:500", anthropic.InternalServerError, 500),
    ],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["create", "stream-helper"])
def test_upstream_errors_raise_the_sdk_classes(claude, mock, upstream, scenario, error_class, status, streaming):
    with pytest.raises(error_class) as raised:
        if streaming:
            with stream(claude, ask("Hi", scenario)) as messages:
                messages.get_final_message()
        else:
            create(claude, ask("Hi", scenario))
    assert raised.value.status_code == status
    assert raised.value.body["type"] == "error"


@pytest.mark.parametrize("scenario", ["error:529", "error:503"])
def test_overloaded_is_529(claude, mock, upstream, scenario):
    if upstream == "anthropic" and scenario == "error:503":
        pytest.skip("a pass-through keeps the Anthropic upstream's own 503")
    with pytest.raises(anthropic.OverloadedError) as raised:
        create(claude, ask("Hi", scenario))
    assert raised.value.status_code == 529
    assert isinstance(raised.value, anthropic.InternalServerError) or isinstance(raised.value, anthropic.APIStatusError)
    assert raised.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize("scenario", ["html", "bad_json", "reset", "truncate"])
def test_broken_upstream_answers_are_502(claude, mock, upstream, scenario):
    with pytest.raises(anthropic.InternalServerError) as raised:
        create(claude, ask("Hi", scenario))
    assert raised.value.status_code == 502


def test_midstream_error_raises_a_clean_api_error(claude, mock, upstream):
    received = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        for event in create(claude, ask("Hi", "midstream_error"), stream=True):
            if event.type == "content_block_delta":
                received.append(event.delta.text)
    assert received and ANSWER.startswith("".join(received))
    assert raised.value.body["type"] == "error"
    # An OpenAI upstream's in-band error says `server_error`, which is Anthropic's `api_error`.
    expected = "overloaded_error" if upstream == "anthropic" else "api_error"
    assert raised.value.body["error"]["type"] == expected


def test_midstream_error_through_the_stream_helper(claude, mock, upstream):
    with pytest.raises(anthropic.APIStatusError):
        with stream(claude, ask("Hi", "midstream_error")) as messages:
            messages.get_final_message()


def test_truncated_stream_ends_with_an_sdk_error(claude, mock, upstream):
    received = []
    with pytest.raises(anthropic.APIError):
        with stream(claude, ask("Hi", "truncate")) as messages:
            for text in messages.text_stream:
                received.append(text)
    assert received and ANSWER.startswith("".join(received))


# --- keys ------------------------------------------------------------------------------------

def test_key_pool_rotates_round_robin(make_anthropic, mock, upstream, fresh_keys):
    keys = fresh_keys(3)
    client = make_anthropic(api_key=",".join(keys))
    for _ in range(4):
        assert create(client, ask("Hi")).content[0].text == ANSWER
    assert [upstream_key(r, upstream) for r in mock.posts()] == [keys[0], keys[1], keys[2], keys[0]]


def test_key_pool_in_bearer_auth_token(make_anthropic, mock, upstream, fresh_keys):
    # Claude Code's ANTHROPIC_AUTH_TOKEN arrives as `Authorization: Bearer`.
    keys = fresh_keys(2)
    client = anthropic.Anthropic(
        base_url=make_anthropic().base_url, auth_token=",".join(keys), max_retries=0, timeout=15,
    )
    for _ in range(3):
        assert create(client, ask("Hi")).content[0].text == ANSWER
    assert [upstream_key(r, upstream) for r in mock.posts()] == [keys[0], keys[1], keys[0]]


@pytest.mark.parametrize("failure", ["fail_key", "fail_key_529"])
def test_failover_to_the_next_key(make_anthropic, mock, upstream, fresh_keys, failure):
    first, second = fresh_keys(2)
    client = make_anthropic(api_key=f"{first},{second}")
    assert create(client, ask("Hi", f"{failure}:{first}")).content[0].text == ANSWER
    assert [upstream_key(r, upstream) for r in mock.posts()] == [first, second]


def test_stream_failover_before_the_first_byte(make_anthropic, mock, upstream, fresh_keys):
    first, second = fresh_keys(2)
    client = make_anthropic(api_key=f"{first},{second}")
    with stream(client, ask("Hi", f"fail_key_529:{first}")) as messages:
        assert messages.get_final_message().content[0].text == ANSWER
    assert [upstream_key(r, upstream) for r in mock.posts()] == [first, second]


# --- more of what real Anthropic clients do --------------------------------------------------

@pytest.mark.parametrize(
    "name",
    ["weather.get", "get weather", "mcp__weather_server__" + "get_the_current_weather_" * 3],
    ids=["dot", "space", "over-64-chars"],
)
def test_tool_names_the_upstream_would_refuse_come_back_intact(claude, mock, upstream, name):
    tool = {"name": name, "input_schema": CITY_SCHEMA}
    message = create(claude, ask("Weather?", "parallel_tools"), tools=[tool])
    assert [block.name for block in message.content if block.type == "tool_use"] == [name] * 3
    with stream(claude, ask("Weather?", "tool"), tools=[tool]) as messages:
        answer = messages.get_final_message()
    [tool_use] = [block for block in answer.content if block.type == "tool_use"]
    assert tool_use.name == name
    sent = mock.last_body()["tools"][0]
    if upstream == "openai":
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", sent["function"]["name"])
    else:
        assert sent["name"] == name

    # The round trip sends the restored name back; the upstream must see its own name again.
    create(
        claude, ask("Weather?"), {"role": "assistant", "content": answer.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}]},
        tools=[tool],
    )
    body = mock.last_body()
    if upstream == "openai":
        assert body["messages"][1]["tool_calls"][0]["function"]["name"] == body["tools"][0]["function"]["name"]
    else:
        assert body["messages"][1]["content"][0]["name"] == name


def test_tool_choice(claude, mock, upstream):
    create(claude, ask("Hi"), tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True})
    body = mock.last_body()
    if upstream == "openai":
        assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)
    else:
        assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}

    create(claude, ask("Hi"), tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    expected = (
        {"type": "function", "function": {"name": "get_weather"}} if upstream == "openai"
        else {"type": "tool", "name": "get_weather"}
    )
    assert mock.last_body()["tool_choice"] == expected


class EchoedRequest(pydantic.BaseModel):
    """Part of any request body: `mock:echo` answers with the upstream request as JSON."""

    model: str


def test_parse_with_pydantic_output_format(claude, mock, upstream):
    message = claude.messages.parse(
        model=MODEL, max_tokens=MAX_TOKENS, messages=[ask("Echo.", "echo")], output_format=EchoedRequest,
    )
    assert message.parsed_output == EchoedRequest(model=MODEL)
    body = mock.last_body()
    if upstream == "anthropic":
        schema = body["output_config"]["format"]["schema"]
    else:
        assert body["response_format"]["type"] == "json_schema"
        schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["model"]["type"] == "string"


def test_beta_messages_stream(claude, mock, upstream):
    # Claude Code's client: the beta namespace, with anthropic-beta headers.
    with claude.beta.messages.stream(
        model=MODEL, max_tokens=MAX_TOKENS, messages=[ask("Hi", "parallel_tools")], tools=[WEATHER, TIME],
        betas=["interleaved-thinking-2025-05-14"],
    ) as messages:
        final = messages.get_final_message()
    assert [block.type for block in final.content] == ["text", "tool_use", "tool_use", "tool_use"]
    assert [block.input for block in final.content[1:]] == TOOL_ARGS
    headers = mock.posts()[-1]["headers"]
    if upstream == "anthropic":
        assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    else:
        assert not any(name.startswith("anthropic-") for name in headers)


def test_async_client_streams(proxy, mock, upstream):
    async def run():
        client = anthropic.AsyncAnthropic(base_url=proxy.anthropic_front, api_key="sk-e2e", max_retries=0, timeout=15)
        async with client.messages.stream(
            model=MODEL, max_tokens=MAX_TOKENS, messages=[ask("Hi", "parallel_tools")], tools=[WEATHER, TIME],
        ) as messages:
            final = await messages.get_final_message()
        await client.close()
        return final

    check_parallel(asyncio.run(run()))


def test_concurrent_streams_do_not_mix(proxy, mock, upstream):
    async def one(client, index):
        scenario = "parallel_tools" if index % 2 else "thinking"
        async with client.messages.stream(
            model=f"{MODEL}-{index}", max_tokens=2048, messages=[ask("Hi", scenario)], tools=[WEATHER, TIME],
        ) as messages:
            return index, await messages.get_final_message()

    async def run():
        client = anthropic.AsyncAnthropic(base_url=proxy.anthropic_front, api_key="sk-e2e", max_retries=0, timeout=15)
        results = await asyncio.gather(*(one(client, i) for i in range(20)))
        await client.close()
        return results

    for index, final in asyncio.run(run()):
        assert final.model == f"{MODEL}-{index}"
        if index % 2:
            check_parallel(final)
        else:
            assert [block.type for block in final.content] == ["thinking", "text"]
            assert final.content[1].text == ANSWER
    assert len(mock.posts()) == 20


def test_unknown_route_is_an_anthropic_not_found(claude, mock, upstream):
    with pytest.raises(anthropic.NotFoundError) as raised:
        claude.messages.batches.list()
    assert raised.value.status_code == 404
    assert raised.value.body["type"] == "error"


def test_request_a2o_cannot_convert_is_a_bad_request(claude, mock, upstream):
    if upstream == "anthropic":
        pytest.skip("a pass-through does not judge the request; the upstream does")
    with pytest.raises(anthropic.BadRequestError) as raised:
        create(claude, {"role": "user", "content": [{"type": "tool_result"}]})
    assert raised.value.status_code == 400
    assert "tool_use_id" in raised.value.message
    assert mock.posts() == []


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.APIStatusError),
        (504, anthropic.APIStatusError),
    ],
)
def test_more_upstream_statuses_keep_their_meaning(claude, mock, upstream, status, error_class):
    with pytest.raises(error_class) as raised:
        create(claude, ask("Hi", f"error:{status}"))
    assert raised.value.status_code == status


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(401, anthropic.AuthenticationError), (429, anthropic.RateLimitError), (529, anthropic.OverloadedError)],
)
def test_every_key_failing_gives_the_last_error(make_anthropic, mock, upstream, fresh_keys, status, error_class):
    if upstream == "openai" and status == 529:
        status_sent = 503  # what an OpenAI upstream says when overloaded; a2o makes it 529
    else:
        status_sent = status
    keys = fresh_keys(2)
    with pytest.raises(error_class) as raised:
        create(make_anthropic(api_key=",".join(keys)), ask("Hi", f"error:{status_sent}"))
    assert raised.value.status_code == status
    assert [upstream_key(r, upstream) for r in mock.posts()] == keys
