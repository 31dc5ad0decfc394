"""The official `openai` Python SDK against a2o's OpenAI front, on both upstream dialects:
every test runs twice (`anthropic-upstream`: translated; `openai-upstream`: pass-through).
The SDK's parsers, stream helpers and exception mapping are the judges; the mock's request
log shows what reached the upstream, in its own dialect."""

from __future__ import annotations

import asyncio
import json
import re

import openai
import pydantic
import pytest

from common import (
    ANSWER, CITY_SCHEMA, IMAGE_URL, MODEL, PNG_BASE64, REDACTED_DATA, SIGNATURE, THINKING, TOOL_ARGS,
    ask, openai_tool, system_text, upstream_key, upstream_path,
)

WEATHER = openai_tool("get_weather")
TIME = openai_tool("get_time")


def text_of(completion) -> str | None:
    return completion.choices[0].message.content


# --- create, streams ------------------------------------------------------------------------

def test_create_without_streaming(oai, mock, upstream):
    completion = oai.chat.completions.create(model=MODEL, messages=[ask("Hi")])

    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 7, 19)
    [request] = mock.posts()
    assert request["path"] == upstream_path(upstream)
    assert upstream_key(request, upstream) == "sk-e2e"
    assert request["body"]["messages"][-1]["content"] == "Hi"


def test_stream_helper_final_completion(oai, mock, upstream):
    with oai.chat.completions.stream(model=MODEL, messages=[ask("Hi")]) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    deltas = [event.delta for event in events if event.type == "content.delta"]
    assert len(deltas) > 1, "the answer should arrive in several deltas"
    assert "".join(deltas) == ANSWER
    [done] = [event for event in events if event.type == "content.done"]
    assert done.content == ANSWER
    assert final.choices[0].message.content == ANSWER
    assert final.choices[0].finish_reason == "stop"
    assert mock.last_body()["stream"] is True


def test_raw_chunks(oai, mock, upstream):
    chunks = list(oai.chat.completions.create(model=MODEL, messages=[ask("Hi")], stream=True))

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1, "every chunk of one completion has the same id"
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == ANSWER
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == ["stop"]
    # Without stream_options.include_usage, OpenAI sends no usage chunk.
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)


def test_include_usage_with_cached_tokens_in_stream(oai, mock, upstream):
    chunks = list(oai.chat.completions.create(
        model=MODEL, messages=[ask("Hi", "cache")], stream=True, stream_options={"include_usage": True},
    ))

    *content_chunks, usage_chunk = chunks
    assert usage_chunk.choices == []
    assert all(chunk.usage is None for chunk in content_chunks)
    usage = usage_chunk.usage
    # Anthropic input 10 + cache read 100 + cache creation 50; OpenAI upstream says 160 itself.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (160, 5, 165)
    assert usage.prompt_tokens_details.cached_tokens == 100
    body = mock.last_body()
    if upstream == "openai":
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in body


def test_cached_tokens_without_streaming(oai, mock, upstream):
    completion = oai.chat.completions.create(model=MODEL, messages=[ask("Hi", "cache")])

    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (160, 5, 165)
    assert usage.prompt_tokens_details.cached_tokens == 100


def test_stream_helper_usage(oai, mock, upstream):
    with oai.chat.completions.stream(
        model=MODEL, messages=[ask("Hi", "cache")], stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == ANSWER
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (160, 5)
    assert final.usage.prompt_tokens_details.cached_tokens == 100


def test_finish_reason_length_and_stop_sequence(oai, mock, upstream):
    truncated = oai.chat.completions.create(model=MODEL, messages=[ask("Hi", "max_tokens")], max_completion_tokens=1)
    assert truncated.choices[0].finish_reason == "length"
    assert truncated.choices[0].message.content == "Hello"

    stopped = oai.chat.completions.create(model=MODEL, messages=[ask("Hi", "stop_sequence")], stop=["END"])
    assert stopped.choices[0].finish_reason == "stop"
    body = mock.last_body()
    assert body["stop_sequences" if upstream == "anthropic" else "stop"] == ["END"]


# --- tools -----------------------------------------------------------------------------------

def test_one_tool_call(oai, mock, upstream):
    completion = oai.chat.completions.create(model=MODEL, messages=[ask("Weather in Paris?", "tool")], tools=[WEATHER])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_ARGS[0]
    body = mock.last_body()
    if upstream == "anthropic":
        assert body["tools"][0]["name"] == "get_weather"
        assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    else:
        assert body["tools"] == [WEATHER]


class GetWeather(pydantic.BaseModel):
    city: str


def test_one_tool_call_stream_helper_with_strict_pydantic_tool(oai, mock, upstream):
    tool = openai.pydantic_function_tool(GetWeather)
    with oai.chat.completions.stream(
        model=MODEL, messages=[ask("Weather in Paris?", "tool")], tools=[tool],
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    [done] = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert done.name == "GetWeather"
    assert done.parsed_arguments == GetWeather(city="Paris")
    [call] = final.choices[0].message.tool_calls
    assert call.function.name == "GetWeather"
    assert call.function.parsed_arguments == GetWeather(city="Paris")
    assert final.choices[0].finish_reason == "tool_calls"
    upstream_tool = mock.last_body()["tools"][0]
    if upstream == "openai":
        assert upstream_tool["function"]["strict"] is True
    else:
        assert upstream_tool["name"] == "GetWeather"


def check_parallel(message) -> None:
    assert message.content == "Let me check."
    calls = message.tool_calls
    assert [call.function.name for call in calls] == ["get_weather", "get_time", "get_weather"]
    assert [json.loads(call.function.arguments) for call in calls] == TOOL_ARGS
    assert len({call.id for call in calls}) == 3


def test_parallel_tool_calls(oai, mock, upstream):
    completion = oai.chat.completions.create(
        model=MODEL, messages=[ask("Weather and time?", "parallel_tools")], tools=[WEATHER, TIME],
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    check_parallel(completion.choices[0].message)


def test_parallel_tool_calls_stream_helper(oai, mock, upstream):
    with oai.chat.completions.stream(
        model=MODEL, messages=[ask("Weather and time?", "parallel_tools")], tools=[WEATHER, TIME],
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    check_parallel(final.choices[0].message)
    done = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert [event.index for event in done] == [0, 1, 2]
    assert [json.loads(event.arguments) for event in done] == TOOL_ARGS


def test_parallel_tool_calls_raw_chunks_accumulate_by_index(oai, mock, upstream):
    stream = oai.chat.completions.create(
        model=MODEL, messages=[ask("Weather and time?", "parallel_tools")], tools=[WEATHER, TIME], stream=True,
    )
    calls: dict[int, dict] = {}
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            if delta.id:
                assert call["id"] is None, "a tool call's id comes once"
                call["id"] = delta.id
            if delta.function and delta.function.name:
                call["name"] += delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
    assert sorted(calls) == [0, 1, 2]
    assert [calls[i]["name"] for i in range(3)] == ["get_weather", "get_time", "get_weather"]
    assert [json.loads(calls[i]["arguments"]) for i in range(3)] == TOOL_ARGS
    assert all(calls[i]["id"] for i in range(3))


@pytest.mark.parametrize("streaming", [False, True], ids=["create", "stream-helper"])
def test_tool_round_trip(oai, mock, upstream, streaming):
    question = "Weather in Paris?"
    first_request = dict(model=MODEL, messages=[ask(question, "tool")], tools=[WEATHER])
    if streaming:
        with oai.chat.completions.stream(**first_request) as stream:
            assistant = stream.get_final_completion().choices[0].message
    else:
        assistant = oai.chat.completions.create(**first_request).choices[0].message
    [call] = assistant.tool_calls

    # The SDK's own message object goes back as the assistant turn. The question loses its
    # scenario token so the mock answers with text.
    final = oai.chat.completions.create(
        model=MODEL,
        tools=[WEATHER],
        messages=[
            ask(question),
            assistant,
            {"role": "tool", "tool_call_id": call.id, "content": "22 C and sunny"},
        ],
    )
    assert final.choices[0].message.content == ANSWER
    assert final.choices[0].finish_reason == "stop"

    messages = mock.last_body()["messages"]
    if upstream == "anthropic":
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        [tool_use] = [block for block in messages[1]["content"] if block["type"] == "tool_use"]
        assert (tool_use["id"], tool_use["name"], tool_use["input"]) == (call.id, "get_weather", TOOL_ARGS[0])
        [result] = messages[2]["content"]
        assert result["type"] == "tool_result"
        assert result["tool_use_id"] == call.id
        result_text = result["content"] if isinstance(result["content"], str) else result["content"][0]["text"]
        assert result_text == "22 C and sunny"
    else:
        assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
        [sent_call] = messages[1]["tool_calls"]
        assert sent_call["id"] == call.id
        assert sent_call["function"]["name"] == "get_weather"
        assert json.loads(sent_call["function"]["arguments"]) == TOOL_ARGS[0]
        assert messages[2] == {"role": "tool", "tool_call_id": call.id, "content": "22 C and sunny"}


# --- thinking over the OpenAI dialect -------------------------------------------------------

def test_reasoning_content_and_replay(oai, mock, upstream):
    completion = oai.chat.completions.create(model=MODEL, messages=[ask("Think.", "thinking")], reasoning_effort="low")
    message = completion.choices[0].message
    assert message.content == ANSWER
    extra = message.model_extra or {}
    assert extra.get("reasoning_content") == THINKING
    if upstream == "anthropic":
        # LiteLLM's convention: the signed blocks travel verbatim so they can be replayed.
        [block] = extra["thinking_blocks"]
        assert block["signature"] == SIGNATURE

    oai.chat.completions.create(model=MODEL, messages=[ask("Think."), message, ask("And now?")], reasoning_effort="low")
    replayed = mock.last_body()["messages"][1]
    if upstream == "anthropic":
        thinking = [block for block in replayed["content"] if block["type"] == "thinking"]
        assert thinking == [{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}]
    else:
        assert replayed["reasoning_content"] == THINKING


# --- request features reaching the upstream -------------------------------------------------

def test_images_reach_the_upstream_in_its_dialect(oai, mock, upstream):
    data_url = f"data:image/png;base64,{PNG_BASE64}"
    completion = oai.chat.completions.create(model=MODEL, messages=[{
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_url", "image_url": {"url": data_url}},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        ],
    }])
    assert completion.choices[0].message.content == ANSWER

    parts = mock.last_body()["messages"][0]["content"]
    if upstream == "anthropic":
        assert parts[0] == {"type": "text", "text": "What is in these images?"}
        assert parts[1]["type"] == "image"
        assert parts[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}
        assert parts[2]["type"] == "image"
        assert parts[2]["source"] == {"type": "url", "url": IMAGE_URL}
    else:
        assert parts[1] == {"type": "image_url", "image_url": {"url": data_url}}
        assert parts[2] == {"type": "image_url", "image_url": {"url": IMAGE_URL}}


def test_max_completion_tokens_and_developer_message(oai, mock, upstream):
    completion = oai.chat.completions.create(
        model=MODEL,
        max_completion_tokens=77,
        messages=[{"role": "developer", "content": "Answer in French."}, ask("Hi")],
    )
    assert completion.choices[0].message.content == ANSWER

    body = mock.last_body()
    if upstream == "anthropic":
        assert body["max_tokens"] == 77
        assert "Answer in French." in system_text(body)
        assert [m["role"] for m in body["messages"]] == ["user"]
    else:
        assert body["max_completion_tokens"] == 77
        assert body["messages"][0] == {"role": "developer", "content": "Answer in French."}


WEATHER_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "weather", "strict": True, "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
        "required": ["city", "celsius"],
        "additionalProperties": False,
    }},
}


def test_response_format_json_schema(oai, mock, upstream):
    completion = oai.chat.completions.create(model=MODEL, messages=[ask("Weather?")], response_format=WEATHER_FORMAT)
    assert completion.choices[0].message.content == ANSWER

    body = mock.last_body()
    if upstream == "anthropic":
        assert body["output_config"]["format"] == {
            "type": "json_schema", "schema": WEATHER_FORMAT["json_schema"]["schema"],
        }
    else:
        assert body["response_format"] == WEATHER_FORMAT


class EchoedRequest(pydantic.BaseModel):
    """Part of any request body: `mock:echo` answers with the upstream request as JSON."""

    model: str


def test_parse_with_pydantic_response_format(oai, mock, upstream):
    completion = oai.chat.completions.parse(model=MODEL, messages=[ask("Echo.", "echo")], response_format=EchoedRequest)

    parsed = completion.choices[0].message.parsed
    assert parsed == EchoedRequest(model=MODEL)
    body = mock.last_body()
    if upstream == "anthropic":
        schema = body["output_config"]["format"]["schema"]
    else:
        assert body["response_format"]["json_schema"]["name"] == "EchoedRequest"
        schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"] == {"model": {"title": "Model", "type": "string"}}


def test_models_list(oai, mock, upstream):
    models = list(oai.models.list())
    expected = "claude-mock-1" if upstream == "anthropic" else "gpt-mock-1"
    assert [model.id for model in models] == [expected]
    assert all(model.object == "model" for model in models)


def test_models_retrieve(oai, mock, upstream):
    expected = "claude-mock-1" if upstream == "anthropic" else "gpt-mock-1"
    model = oai.models.retrieve(expected)
    assert (model.id, model.object) == (expected, "model")
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")


# --- errors ----------------------------------------------------------------------------------

def test_missing_key_is_a2os_own_401(make_openai, mock, upstream):
    with pytest.raises(openai.AuthenticationError) as raised:
        # The SDK insists on a key, so the header is removed instead.
        make_openai().chat.completions.create(
            model=MODEL, messages=[ask("Hi")], extra_headers={"Authorization": openai.Omit()},
        )
    assert raised.value.status_code == 401
    assert mock.posts() == [], "a request without a key never reaches the upstream"


@pytest.mark.parametrize(
    ("scenario", "error_class", "status"),
    [
        ("error:401", openai.AuthenticationError, 401),
        ("error:429", openai.RateLimitError, 429),
        ("error:500", openai.InternalServerError, 500),
    ],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["create", "stream"])
def test_upstream_errors_raise_the_sdk_classes(oai, mock, upstream, scenario, error_class, status, streaming):
    with pytest.raises(error_class) as raised:
        oai.chat.completions.create(model=MODEL, messages=[ask("Hi", scenario)], stream=streaming)
    assert raised.value.status_code == status
    assert isinstance(raised.value.body, dict) and raised.value.message


def test_overloaded_is_an_internal_server_error(oai, mock, upstream):
    # Anthropic's 529 overloaded becomes 503 for OpenAI clients.
    with pytest.raises(openai.InternalServerError) as raised:
        oai.chat.completions.create(model=MODEL, messages=[ask("Hi", "error:529")])
    assert raised.value.status_code == (503 if upstream == "anthropic" else 529)


@pytest.mark.parametrize("scenario", ["html", "bad_json", "reset", "truncate"])
def test_broken_upstream_answers_are_502(oai, mock, upstream, scenario):
    with pytest.raises(openai.InternalServerError) as raised:
        oai.chat.completions.create(model=MODEL, messages=[ask("Hi", scenario)])
    assert raised.value.status_code == 502


def test_midstream_error_raises_a_clean_api_error(oai, mock, upstream):
    received = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in oai.chat.completions.create(model=MODEL, messages=[ask("Hi", "midstream_error")], stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received and ANSWER.startswith("".join(received))
    assert raised.value.message


def test_midstream_error_through_the_stream_helper(oai, mock, upstream):
    with pytest.raises(openai.APIError):
        with oai.chat.completions.stream(model=MODEL, messages=[ask("Hi", "midstream_error")]) as stream:
            for _ in stream:
                pass


def test_truncated_stream_ends_with_an_sdk_error(oai, mock, upstream):
    received = []
    with pytest.raises(openai.APIError):
        for chunk in oai.chat.completions.create(model=MODEL, messages=[ask("Hi", "truncate")], stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received and ANSWER.startswith("".join(received))


# --- keys ------------------------------------------------------------------------------------

def test_key_pool_rotates_round_robin(make_openai, mock, upstream, fresh_keys):
    keys = fresh_keys(3)
    client = make_openai(api_key=",".join(keys))
    for _ in range(4):
        assert text_of(client.chat.completions.create(model=MODEL, messages=[ask("Hi")])) == ANSWER
    assert [upstream_key(r, upstream) for r in mock.posts()] == [keys[0], keys[1], keys[2], keys[0]]


@pytest.mark.parametrize("failure", ["fail_key", "fail_key_529"])
def test_failover_to_the_next_key(make_openai, mock, upstream, fresh_keys, failure):
    first, second = fresh_keys(2)
    client = make_openai(api_key=f"{first},{second}")
    completion = client.chat.completions.create(model=MODEL, messages=[ask("Hi", f"{failure}:{first}")])
    assert text_of(completion) == ANSWER
    assert [upstream_key(r, upstream) for r in mock.posts()] == [first, second]


def test_stream_failover_before_the_first_byte(make_openai, mock, upstream, fresh_keys):
    first, second = fresh_keys(2)
    client = make_openai(api_key=f"{first},{second}")
    with client.chat.completions.stream(model=MODEL, messages=[ask("Hi", f"fail_key:{first}")]) as stream:
        assert stream.get_final_completion().choices[0].message.content == ANSWER
    assert [upstream_key(r, upstream) for r in mock.posts()] == [first, second]


# --- more of what real OpenAI clients do -----------------------------------------------------

def test_stream_helper_reasoning_is_replayed_with_its_signature(oai, mock, upstream):
    with oai.chat.completions.stream(model=MODEL, messages=[ask("Think.", "thinking")]) as stream:
        message = stream.get_final_completion().choices[0].message
    assert message.content == ANSWER
    assert (message.model_extra or {}).get("reasoning_content") == THINKING

    # What an agent loop does: the accumulated assistant message goes back as it is.
    oai.chat.completions.create(model=MODEL, messages=[ask("Think."), message, ask("And now?")])
    replayed = mock.last_body()["messages"][1]
    if upstream == "anthropic":
        thinking = [block for block in replayed["content"] if block["type"] == "thinking"]
        assert thinking == [{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}]
    else:
        assert replayed["reasoning_content"] == THINKING


def test_stream_helper_accepts_thinking_and_redacted_thinking(oai, mock, upstream):
    with oai.chat.completions.stream(model=MODEL, messages=[ask("Think.", "thinking_redacted")]) as stream:
        message = stream.get_final_completion().choices[0].message
    assert message.content == ANSWER
    extra = message.model_extra or {}
    assert extra.get("reasoning_content") == THINKING
    if upstream == "anthropic":
        blocks = [(block["type"], block.get("thinking"), block.get("signature") or block.get("data"))
                  for block in extra["thinking_blocks"]]
        assert blocks == [("thinking", THINKING, SIGNATURE), ("redacted_thinking", None, REDACTED_DATA)]
        # Replayed, both blocks reach Anthropic as valid blocks, without the stream's `index`.
        oai.chat.completions.create(model=MODEL, messages=[ask("Think."), message, ask("And now?")])
        replayed = mock.last_body()["messages"][1]["content"]
        assert replayed[:2] == [
            {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED_DATA},
        ]


@pytest.mark.parametrize(
    "name",
    ["weather.get", "get weather", "mcp__weather_server__" + "get_the_current_weather_" * 3],
    ids=["dot", "space", "over-64-chars"],
)
def test_tool_names_the_upstream_would_refuse_come_back_intact(oai, mock, upstream, name):
    tool = {"type": "function", "function": {"name": name, "parameters": CITY_SCHEMA}}
    completion = oai.chat.completions.create(
        model=MODEL, messages=[ask("Weather?", "parallel_tools")], tools=[tool],
    )
    assert [call.function.name for call in completion.choices[0].message.tool_calls] == [name] * 3
    with oai.chat.completions.stream(model=MODEL, messages=[ask("Weather?", "tool")], tools=[tool]) as stream:
        [call] = stream.get_final_completion().choices[0].message.tool_calls
    assert call.function.name == name
    sent = mock.last_body()["tools"][0]
    if upstream == "anthropic":
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", sent["name"])
    else:
        assert sent["function"]["name"] == name


def test_tool_choice_and_parallel_tool_calls(oai, mock, upstream):
    oai.chat.completions.create(
        model=MODEL, messages=[ask("Hi")], tools=[WEATHER], tool_choice="required", parallel_tool_calls=False,
    )
    body = mock.last_body()
    if upstream == "anthropic":
        assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    else:
        assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)

    oai.chat.completions.create(
        model=MODEL, messages=[ask("Hi")], tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    expected = (
        {"type": "tool", "name": "get_weather"} if upstream == "anthropic"
        else {"type": "function", "function": {"name": "get_weather"}}
    )
    assert mock.last_body()["tool_choice"] == expected


def test_stream_helper_parses_a_pydantic_response_format(oai, mock, upstream):
    with oai.chat.completions.stream(
        model=MODEL, messages=[ask("Echo.", "echo")], response_format=EchoedRequest,
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == EchoedRequest(model=MODEL)
    [done] = [event for event in events if event.type == "content.done"]
    assert done.parsed == EchoedRequest(model=MODEL)


def test_async_client_streams(proxy, mock, upstream):
    async def run():
        client = openai.AsyncOpenAI(base_url=f"{proxy.openai_front}/v1", api_key="sk-e2e", max_retries=0, timeout=15)
        async with client.chat.completions.stream(
            model=MODEL, messages=[ask("Hi", "parallel_tools")], tools=[WEATHER, TIME],
            stream_options={"include_usage": True},
        ) as stream:
            final = await stream.get_final_completion()
        await client.close()
        return final

    final = asyncio.run(run())
    check_parallel(final.choices[0].message)
    assert final.usage.total_tokens == 19


def test_concurrent_streams_do_not_mix(proxy, mock, upstream):
    """Twenty streams at once on one client: each gets its own whole answer."""

    async def one(client, index):
        scenario = "parallel_tools" if index % 2 else "text"
        async with client.chat.completions.stream(
            model=f"{MODEL}-{index}", messages=[ask("Hi", scenario)], tools=[WEATHER, TIME],
        ) as stream:
            return index, await stream.get_final_completion()

    async def run():
        client = openai.AsyncOpenAI(base_url=f"{proxy.openai_front}/v1", api_key="sk-e2e", max_retries=0, timeout=15)
        results = await asyncio.gather(*(one(client, i) for i in range(20)))
        await client.close()
        return results

    for index, final in asyncio.run(run()):
        assert final.model == f"{MODEL}-{index}"
        if index % 2:
            check_parallel(final.choices[0].message)
        else:
            assert final.choices[0].message.content == ANSWER
    assert len(mock.posts()) == 20


def test_unknown_route_is_an_openai_not_found(oai, mock, upstream):
    with pytest.raises(openai.NotFoundError) as raised:
        oai.embeddings.create(model=MODEL, input="hello")
    assert raised.value.status_code == 404


def test_request_a2o_cannot_convert_is_a_bad_request(oai, mock, upstream):
    if upstream == "openai":
        pytest.skip("a pass-through does not judge the request; the upstream does")
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(model=MODEL, messages=[{"role": "wizard", "content": "Hi"}])
    assert raised.value.status_code == 400
    assert "messages[0]" in raised.value.message
    assert mock.posts() == []


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (422, openai.UnprocessableEntityError),
        (503, openai.InternalServerError),
        (504, openai.InternalServerError),
    ],
)
def test_more_upstream_statuses_keep_their_meaning(oai, mock, upstream, status, error_class):
    with pytest.raises(error_class) as raised:
        oai.chat.completions.create(model=MODEL, messages=[ask("Hi", f"error:{status}")])
    assert raised.value.status_code == status


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(401, openai.AuthenticationError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_every_key_failing_gives_the_last_error(make_openai, mock, upstream, fresh_keys, status, error_class):
    keys = fresh_keys(2)
    with pytest.raises(error_class) as raised:
        make_openai(api_key=",".join(keys)).chat.completions.create(
            model=MODEL, messages=[ask("Hi", f"error:{status}")],
        )
    assert raised.value.status_code == status
    assert [upstream_key(r, upstream) for r in mock.posts()] == keys
