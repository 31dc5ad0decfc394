//! The stream grammar validators (`a2o::stream::validate`): every rule has a failing stream
//! whose exact first violation (frame number and words) is asserted, and realistic streams,
//! including byte-exact recordings from the real APIs in `testdata/validate/`, must pass.

use a2o::sse::SseFrame;
use a2o::stream::validate::{
    validate_anthropic, validate_anthropic_bytes, validate_openai, validate_openai_bytes,
    AnthropicValidator, OpenAiValidator, Violation,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Anthropic stream builders: each returns one event's data; the SSE event name is its `type`.
// ---------------------------------------------------------------------------------------------

fn message_start() -> String {
    json!({"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 1}
    }})
    .to_string()
}

/// An edit of `message_start.message`, for table-driven cases.
type MessageEdit = Box<dyn FnOnce(&mut Value)>;

fn message_start_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut event: Value = serde_json::from_str(&message_start()).unwrap();
    edit(&mut event["message"]);
    event.to_string()
}

fn text_start(index: usize) -> String {
    block_start(index, json!({"type": "text", "text": ""}))
}

fn block_start(index: usize, block: Value) -> String {
    json!({"type": "content_block_start", "index": index, "content_block": block}).to_string()
}

fn tool_start(index: usize, name: &str) -> String {
    block_start(
        index,
        json!({"type": "tool_use", "id": "toolu_01", "name": name, "input": {}}),
    )
}

fn thinking_start(index: usize) -> String {
    block_start(
        index,
        json!({"type": "thinking", "thinking": "", "signature": ""}),
    )
}

fn delta(index: usize, delta: Value) -> String {
    json!({"type": "content_block_delta", "index": index, "delta": delta}).to_string()
}

fn text_delta(index: usize, text: &str) -> String {
    delta(index, json!({"type": "text_delta", "text": text}))
}

fn json_delta(index: usize, partial_json: &str) -> String {
    delta(
        index,
        json!({"type": "input_json_delta", "partial_json": partial_json}),
    )
}

fn thinking_delta(index: usize, thinking: &str) -> String {
    delta(
        index,
        json!({"type": "thinking_delta", "thinking": thinking}),
    )
}

fn signature_delta(index: usize) -> String {
    delta(
        index,
        json!({"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
    )
}

fn block_stop(index: usize) -> String {
    json!({"type": "content_block_stop", "index": index}).to_string()
}

fn message_delta(stop_reason: &str) -> String {
    json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
           "usage": {"output_tokens": 25}})
    .to_string()
}

fn message_stop() -> String {
    json!({"type": "message_stop"}).to_string()
}

fn ping() -> String {
    json!({"type": "ping"}).to_string()
}

fn anthropic_sse(events: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for data in events {
        let value: Value = serde_json::from_str(data).unwrap();
        let name = value["type"].as_str().unwrap();
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }
    out.into_bytes()
}

/// The first violation of an Anthropic stream, as `event N: message`.
fn anthropic_violation(events: &[String]) -> String {
    validate_anthropic_bytes(&anthropic_sse(events))
        .expect_err("the stream should be invalid")
        .to_string()
}

fn anthropic_raw_violation(sse: &str) -> String {
    validate_anthropic_bytes(sse.as_bytes())
        .expect_err("the stream should be invalid")
        .to_string()
}

fn assert_anthropic_ok(events: &[String]) {
    if let Err(violation) = validate_anthropic_bytes(&anthropic_sse(events)) {
        panic!("valid stream rejected: {violation}");
    }
}

/// A text block then a tool call, as Claude sends them.
fn text_then_tool() -> Vec<String> {
    vec![
        message_start(),
        text_start(0),
        ping(),
        text_delta(0, "Let me check"),
        text_delta(0, " the weather."),
        block_stop(0),
        tool_start(1, "get_weather"),
        json_delta(1, ""),
        json_delta(1, "{\"location\":"),
        json_delta(1, " \"Paris, \\\"FR\\\" ☀\"}"),
        block_stop(1),
        message_delta("tool_use"),
        message_stop(),
    ]
}

fn with(mut events: Vec<String>, at: usize, replacement: String) -> Vec<String> {
    events[at] = replacement;
    events
}

// ---------------------------------------------------------------------------------------------
// Anthropic: passing streams
// ---------------------------------------------------------------------------------------------

#[test]
fn anthropic_recorded_streams_pass() {
    for name in [
        "stream-text",
        "stream-thinking-then-tool-use",
        "stream-web-search-server-tool",
        "stream-redacted-thinking",
    ] {
        let path = format!(
            "{}/testdata/validate/anthropic/{name}.sse",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        if let Err(violation) = validate_anthropic_bytes(&bytes) {
            panic!("{name}: {violation}");
        }
    }
}

#[test]
fn anthropic_text_then_tool_passes() {
    assert_anthropic_ok(&text_then_tool());
}

#[test]
fn anthropic_thinking_then_text_passes() {
    assert_anthropic_ok(&[
        message_start(),
        thinking_start(0),
        thinking_delta(0, "27 * 453 = 12,231"),
        signature_delta(0),
        block_stop(0),
        text_start(1),
        text_delta(1, "12,231"),
        block_stop(1),
        message_delta("end_turn"),
        message_stop(),
    ]);
}

#[test]
fn anthropic_tool_without_arguments_passes() {
    // No fragment at all, or only an empty one: the input stays the start's `{}`.
    assert_anthropic_ok(&[
        message_start(),
        tool_start(0, "now"),
        block_stop(0),
        tool_start(1, "today"),
        json_delta(1, ""),
        block_stop(1),
        message_delta("tool_use"),
        message_stop(),
    ]);
}

#[test]
fn anthropic_pings_anywhere_and_unknown_types_pass() {
    assert_anthropic_ok(&[
        ping(),
        message_start(),
        json!({"type": "future_event", "anything": [1, 2]}).to_string(),
        block_start(0, json!({"type": "future_block", "payload": {}})),
        delta(
            0,
            json!({"type": "text_delta", "text": "unknown blocks take any delta"}),
        ),
        delta(0, json!({"type": "future_delta", "bits": 3})),
        block_stop(0),
        text_start(1),
        delta(1, json!({"type": "future_delta"})),
        block_stop(1),
        block_start(
            2,
            json!({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": []}),
        ),
        block_stop(2),
        message_delta("end_turn"),
        ping(),
        message_stop(),
        ping(),
    ]);
}

#[test]
fn anthropic_ping_without_data_passes() {
    let mut bytes = b"event: ping\n\n".to_vec();
    bytes.extend(anthropic_sse(&text_then_tool()));
    assert_eq!(validate_anthropic_bytes(&bytes), Ok(()));
}

#[test]
fn anthropic_null_stop_reason_and_several_message_deltas_pass() {
    // The streaming docs allow "one or more" message_delta events.
    let events = [
        message_start(),
        text_start(0),
        block_stop(0),
        json!({"type": "message_delta", "delta": {"stop_reason": null},
               "usage": {"output_tokens": 3}})
        .to_string(),
        message_delta("pause_turn"),
        message_stop(),
    ];
    assert_anthropic_ok(&events);
}

#[test]
fn anthropic_error_event_ends_the_stream() {
    let error =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            .to_string();
    assert_anthropic_ok(std::slice::from_ref(&error));
    assert_anthropic_ok(&[message_start(), text_start(0), text_delta(0, "Hi"), error]);
}

// ---------------------------------------------------------------------------------------------
// Anthropic: framing and envelope
// ---------------------------------------------------------------------------------------------

#[test]
fn anthropic_frame_without_event_line() {
    let sse = format!("data: {}\n\n", message_start());
    assert_eq!(
        anthropic_raw_violation(&sse),
        "event 0: frame without an `event:` line; the Anthropic SDKs skip such frames, so its \
        data never reaches the client"
    );
}

#[test]
fn anthropic_event_name_must_match_type() {
    let sse = format!(
        "event: message_start\ndata: {}\n\nevent: content_block_delta\ndata: {}\n\n",
        message_start(),
        text_start(0)
    );
    assert_eq!(
        anthropic_raw_violation(&sse),
        "event 1: `event: content_block_delta` carries data of `type` \"content_block_start\"; \
        the two must match (the SDKs pick the event by its name and parse the data by its `type`)"
    );
}

#[test]
fn anthropic_data_must_be_a_json_object() {
    assert_eq!(
        anthropic_raw_violation("event: message_start\ndata: {\"type\":\n\n"),
        "event 0: `message_start` data is not valid JSON (EOF while parsing a value at line 1 \
        column 8)"
    );
    assert_eq!(
        anthropic_raw_violation("event: message_start\ndata: [1]\n\n"),
        "event 0: `message_start` data is an array, not a JSON object"
    );
    assert_eq!(
        anthropic_raw_violation("event: message_stop\n\n"),
        "event 0: `message_stop` has no data; it must be a JSON object whose `type` is \
        \"message_stop\""
    );
    assert_eq!(
        anthropic_raw_violation("event: message_stop\ndata: {\"kind\":\"message_stop\"}\n\n"),
        "event 0: `message_stop` data has no `type`; it must be \"message_stop\""
    );
}

#[test]
fn anthropic_last_event_must_be_terminated() {
    let mut bytes = anthropic_sse(&text_then_tool());
    bytes.truncate(bytes.len() - 1);
    assert_eq!(
        validate_anthropic_bytes(&bytes).unwrap_err().to_string(),
        "event 12: the last event is not terminated by a blank line; the SDKs' SSE parsers only \
        dispatch an event at its blank line, so they drop it"
    );
}

// ---------------------------------------------------------------------------------------------
// Anthropic: message envelope
// ---------------------------------------------------------------------------------------------

#[test]
fn anthropic_first_event_must_be_message_start() {
    assert_eq!(
        anthropic_violation(&[text_start(0)]),
        "event 0: `content_block_start` before `message_start`; the Anthropic SDK's stream helper \
        raises \"Unexpected event order, got content_block_start before \"message_start\"\""
    );
}

#[test]
fn anthropic_second_message_start() {
    assert_eq!(
        anthropic_violation(&[message_start(), message_start()]),
        "event 1: second `message_start`; a stream carries one message (the Anthropic SDK's \
        stream helper raises \"Unexpected event order, got message_start before receiving \
        \"message_stop\"\")"
    );
}

#[test]
fn anthropic_message_start_fields() {
    let cases: Vec<(MessageEdit, &str)> =
        vec![
        (
            Box::new(|m| drop(m.as_object_mut().unwrap().remove("id"))),
            "event 0: `message.id` is missing (expected a string)",
        ),
        (Box::new(|m| m["type"] = json!("completion")), "event 0: `message.type` is the string \
        \"completion\", expected \"message\""),
        (Box::new(|m| m["role"] = json!("user")), "event 0: `message.role` is the string \
        \"user\", expected \"assistant\""),
        (
            Box::new(|m| m["content"] = json!([{"type": "text", "text": "Hi"}])),
            "event 0: `message.content` has 1 block(s) but must be empty; the SDK stream helpers \
            append every `content_block_start` to it, so the indices would no longer line up",
        ),
        (Box::new(|m| m["content"] = json!(null)), "event 0: `message.content` is null, expected \
        an empty array"),
        (Box::new(|m| m["model"] = json!(4)), "event 0: `message.model` is the number 4, expected \
        a string"),
        (
            Box::new(|m| drop(m.as_object_mut().unwrap().remove("usage"))),
            "event 0: `message.usage` is missing (expected an object); the SDK stream helpers \
            keep it as the message's usage and update it from `message_delta`",
        ),
        (
            Box::new(|m| m["usage"] = json!({"output_tokens": 1})),
            "event 0: `message.usage.input_tokens` is missing (expected a non-negative integer)",
        ),
    ];
    for (edit, expected) in cases {
        assert_eq!(anthropic_violation(&[message_start_with(edit)]), expected);
    }
}

#[test]
fn anthropic_error_event_needs_type_and_message() {
    assert_eq!(
        anthropic_violation(&[
            message_start(),
            json!({"type": "error", "error": {"type": "api_error"}}).to_string()
        ]),
        "event 1: `error.message` is missing (expected a string)"
    );
    assert_eq!(
        anthropic_violation(&[json!({"type": "error", "message": "boom"}).to_string()]),
        "event 0: `error` is missing (expected an object)"
    );
}

#[test]
fn anthropic_nothing_follows_an_error() {
    let error =
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}).to_string();
    assert_eq!(
        anthropic_violation(&[message_start(), error.clone(), ping()]),
        "event 2: `ping` after the `error` event; an error ends the stream, so nothing may follow \
        it"
    );
    assert_eq!(
        anthropic_violation(&[message_start(), error, message_stop()]),
        "event 2: `message_stop` after the `error` event; an error ends the stream, so nothing \
        may follow it"
    );
}

// ---------------------------------------------------------------------------------------------
// Anthropic: blocks
// ---------------------------------------------------------------------------------------------

#[test]
fn anthropic_block_indices_start_at_zero() {
    assert_eq!(
        anthropic_violation(&[message_start(), text_start(1)]),
        "event 1: `content_block_start` for index 1, expected 0: indices start at 0 and go up by \
        1 (the SDK stream helpers append each block to the content array and find it again by \
        index)"
    );
}

#[test]
fn anthropic_block_indices_go_up_by_one() {
    let events = [
        message_start(),
        text_start(0),
        block_stop(0),
        tool_start(2, "f"),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 3: `content_block_start` for index 2, expected 1: indices start at 0 and go up by \
        1 (the SDK stream helpers append each block to the content array and find it again by \
        index)"
    );
    let events = [message_start(), text_start(0), block_stop(0), text_start(0)];
    assert_eq!(
        anthropic_violation(&events),
        "event 3: `content_block_start` reuses index 0; indices go 0, 1, 2… and the next one is 1"
    );
}

#[test]
fn anthropic_block_index_must_be_an_integer() {
    let start = json!({"type": "content_block_start", "index": "0",
                       "content_block": {"type": "text", "text": ""}});
    assert_eq!(
        anthropic_violation(&[message_start(), start.to_string()]),
        "event 1: `content_block_start` has an `index` that is the string \"0\", expected a \
        non-negative integer"
    );
    let stop = json!({"type": "content_block_stop"});
    assert_eq!(
        anthropic_violation(&[message_start(), text_start(0), stop.to_string()]),
        "event 2: `content_block_stop` has no `index`"
    );
}

#[test]
fn anthropic_delta_for_a_block_never_started() {
    let events = [
        message_start(),
        text_start(0),
        text_delta(0, "a"),
        block_stop(0),
        text_start(1),
        text_delta(2, "b"),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 5: `content_block_delta` for index 2, which was never started (the Python SDK's \
        stream helper raises IndexError)"
    );
}

#[test]
fn anthropic_delta_after_block_stop() {
    let events = [
        message_start(),
        text_start(0),
        block_stop(0),
        text_delta(0, "late"),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 3: `content_block_delta` for index 0 after its `content_block_stop`"
    );
}

#[test]
fn anthropic_block_stopped_exactly_once() {
    let events = [message_start(), text_start(0), block_stop(0), block_stop(0)];
    assert_eq!(
        anthropic_violation(&events),
        "event 3: second `content_block_stop` for index 0; a block is stopped exactly once"
    );
    let events = [message_start(), text_start(0), block_stop(1)];
    assert_eq!(
        anthropic_violation(&events),
        "event 2: `content_block_stop` for index 1, which was never started"
    );
}

#[test]
fn anthropic_blocks_must_not_overlap() {
    let events = [
        message_start(),
        text_start(0),
        text_delta(0, "a"),
        tool_start(1, "f"),
        block_stop(0),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 3: `content_block_start` for index 1 while block 0 is still open; blocks must not \
        overlap (the TypeScript SDK's stream helper reports each delta against the last started \
        block)"
    );
}

#[test]
fn anthropic_text_block_start_needs_text() {
    // PITFALLS 25: a converter that omits `"text": ""`.
    let events = [message_start(), block_start(0, json!({"type": "text"}))];
    assert_eq!(
        anthropic_violation(&events),
        "event 1: `content_block.text` is missing (expected a string); a text block starts with \
        `\"text\": \"\"` (the Python SDK's stream helper appends each delta to it and fails \
        without it)"
    );
}

#[test]
fn anthropic_tool_block_start_fields() {
    let cases = [
        (
            json!({"type": "tool_use", "name": "f", "input": {}}),
            "event 1: `content_block.id` is missing (expected a string)",
        ),
        (
            json!({"type": "tool_use", "id": "toolu_1", "input": {}}),
            "event 1: `content_block.name` is missing (expected a string)",
        ),
        (
            json!({"type": "tool_use", "id": "toolu_1", "name": "f", "input": "{}"}),
            "event 1: `content_block.input` is the string \"{}\", expected an object",
        ),
        (
            json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}),
            "event 1: `content_block.input` is missing (expected an object)",
        ),
    ];
    for (block, expected) in cases {
        assert_eq!(
            anthropic_violation(&[message_start(), block_start(0, block)]),
            expected
        );
    }
}

#[test]
fn anthropic_thinking_block_start_fields() {
    let events = [
        message_start(),
        block_start(0, json!({"type": "thinking", "thinking": ""})),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 1: `content_block.signature` is missing (expected a string)"
    );
    let events = [
        message_start(),
        block_start(0, json!({"type": "thinking", "signature": ""})),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 1: `content_block.thinking` is missing (expected a string)"
    );
    let events = [
        message_start(),
        block_start(0, json!({"type": "redacted_thinking"})),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 1: `content_block.data` is missing (expected a string)"
    );
}

#[test]
fn anthropic_delta_type_must_match_block_type() {
    let consequence =
        "the SDK stream helpers drop such a delta, and Claude Code fails with \"Mismatched \
        content block type\"";
    let cases = [
        (
            vec![tool_start(0, "f"), text_delta(0, "x")],
            "`text_delta` for index 0, which is a `tool_use` block",
        ),
        (
            vec![text_start(0), thinking_delta(0, "hmm")],
            "`thinking_delta` for index 0, which is a `text` block",
        ),
        (
            vec![text_start(0), json_delta(0, "{}")],
            "`input_json_delta` for index 0, which is a `text` block",
        ),
        (
            vec![text_start(0), signature_delta(0)],
            "`signature_delta` for index 0, which is a `text` block",
        ),
        (
            vec![
                tool_start(0, "f"),
                delta(0, json!({"type": "citations_delta", "citation": {}})),
            ],
            "`citations_delta` for index 0, which is a `tool_use` block",
        ),
        (
            vec![
                block_start(0, json!({"type": "redacted_thinking", "data": "abc"})),
                thinking_delta(0, "x"),
            ],
            "`thinking_delta` for index 0, which is a `redacted_thinking` block",
        ),
        (
            vec![
                block_start(0, json!({"type": "web_search_tool_result", "content": []})),
                text_delta(0, "x"),
            ],
            "`text_delta` for index 0, which is a `web_search_tool_result` block",
        ),
    ];
    for (blocks, expected) in cases {
        let mut events = vec![message_start()];
        events.extend(blocks);
        assert_eq!(
            anthropic_violation(&events),
            format!("event 2: {expected}; a delta must match its block's type ({consequence})")
        );
    }
}

#[test]
fn anthropic_delta_payload_types() {
    let events = [
        message_start(),
        text_start(0),
        delta(0, json!({"type": "text_delta", "content": "x"})),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 2: `text_delta` for index 0: `delta.text` is missing (expected a string)"
    );
    let events = [
        message_start(),
        tool_start(0, "f"),
        delta(0, json!({"type": "input_json_delta", "partial_json": {}})),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 2: `input_json_delta` for index 0: `delta.partial_json` is an object, expected a \
        string"
    );
    let events = [
        message_start(),
        text_start(0),
        json!({"type": "content_block_delta", "index": 0}).to_string(),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 2: `delta` is missing (expected an object)"
    );
}

#[test]
fn anthropic_tool_input_must_parse_as_an_object_at_its_stop() {
    let events = [
        message_start(),
        tool_start(0, "get_weather"),
        json_delta(0, "{\"location\": \"Par"),
        block_stop(0),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 3: the `input_json_delta` fragments of block 0 (`tool_use` `get_weather`) do not \
        parse as JSON at its stop (EOF while parsing a string at line 1 column 17); clients parse \
        the input there, and Claude Code rejects the call with InputValidationError"
    );
    let events = [
        message_start(),
        tool_start(0, "get_weather"),
        json_delta(0, "[\"Paris\"]"),
        block_stop(0),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 3: the `input_json_delta` fragments of block 0 (`tool_use` `get_weather`) form an \
        array, not a JSON object; a tool's input is always an object"
    );
}

// ---------------------------------------------------------------------------------------------
// Anthropic: message_delta and message_stop
// ---------------------------------------------------------------------------------------------

#[test]
fn anthropic_message_delta_after_all_blocks_stopped() {
    let events = [message_start(), text_start(0), message_delta("end_turn")];
    assert_eq!(
        anthropic_violation(&events),
        "event 2: `message_delta` while block 0 is still open; every block is stopped before it"
    );
    let events = [
        message_start(),
        text_start(0),
        block_stop(0),
        message_delta("end_turn"),
        text_start(1),
    ];
    assert_eq!(
        anthropic_violation(&events),
        "event 4: `content_block_start` after `message_delta`; every content block comes before it"
    );
}

#[test]
fn anthropic_message_delta_stop_reason() {
    let events = [message_start(), message_delta("error")];
    assert_eq!(
        anthropic_violation(&events),
        "event 1: `delta.stop_reason` is \"error\", which Anthropic does not define (expected one \
        of end_turn, max_tokens, stop_sequence, tool_use, pause_turn, refusal, \
        model_context_window_exceeded or null); clients decide what to do next from it"
    );
    let missing =
        json!({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 1}}).to_string();
    assert_eq!(
        anthropic_violation(&[message_start(), missing]),
        "event 1: `delta.stop_reason` is missing (expected a stop reason string or null)"
    );
}

#[test]
fn anthropic_message_delta_stop_sequence() {
    let event = json!({"type": "message_delta", "delta": {"stop_reason": "stop_sequence",
                       "stop_sequence": 7}, "usage": {"output_tokens": 1}});
    assert_eq!(
        anthropic_violation(&[message_start(), event.to_string()]),
        "event 1: `delta.stop_sequence` is the number 7, expected a string or null"
    );
}

#[test]
fn anthropic_message_delta_usage() {
    let no_usage =
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}).to_string();
    assert_eq!(
        anthropic_violation(&[message_start(), no_usage]),
        "event 1: `usage` is missing (expected an object); the SDK stream helpers read \
        `usage.output_tokens` from every `message_delta`"
    );
    let no_output = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"input_tokens": 3}})
    .to_string();
    assert_eq!(
        anthropic_violation(&[message_start(), no_output]),
        "event 1: `usage.output_tokens` is missing (expected a non-negative integer)"
    );
}

#[test]
fn anthropic_message_stop_needs_message_delta_and_closed_blocks() {
    assert_eq!(
        anthropic_violation(&[
            message_start(),
            text_start(0),
            block_stop(0),
            message_stop()
        ]),
        "event 3: `message_stop` without a `message_delta` before it; the final message would \
        have no `stop_reason` and no output usage"
    );
    assert_eq!(
        anthropic_violation(&[message_start(), text_start(0), message_stop()]),
        "event 2: `message_stop` while block 0 is still open"
    );
}

#[test]
fn anthropic_message_stop_is_last() {
    let mut events = text_then_tool();
    events.push(text_start(2));
    assert_eq!(
        anthropic_violation(&events),
        "event 13: `content_block_start` after `message_stop`, which must be the last event"
    );
}

#[test]
fn anthropic_stream_must_end_with_message_stop() {
    let mut events = text_then_tool();
    events.truncate(9);
    assert_eq!(
        anthropic_violation(&events),
        "event 9: stream ended before message_stop, with block 1 still open; the SDK stream \
        helpers never produce the final message"
    );
    assert_eq!(
        validate_anthropic(&[]).unwrap_err().to_string(),
        "event 0: stream ended before message_stop (there was no `message_start` either); the SDK \
        stream helpers never produce a message"
    );
}

// ---------------------------------------------------------------------------------------------
// Anthropic: the incremental API
// ---------------------------------------------------------------------------------------------

fn frame(event: Option<&str>, data: &str) -> SseFrame {
    SseFrame {
        event: event.map(str::to_owned),
        data: data.to_owned(),
        id: None,
        retry: None,
    }
}

fn anthropic_frames(events: &[String]) -> Vec<SseFrame> {
    events
        .iter()
        .map(|data| {
            let value: Value = serde_json::from_str(data).unwrap();
            frame(value["type"].as_str(), data)
        })
        .collect()
}

#[test]
fn anthropic_validator_reports_at_the_offending_push_and_stays_failed() {
    let events = [
        message_start(),
        text_start(0),
        json_delta(0, "{}"),
        block_stop(0),
    ];
    let frames = anthropic_frames(&events);
    let mut validator = AnthropicValidator::new();
    assert_eq!(validator.push(&frames[0]), Ok(()));
    assert_eq!(validator.push(&frames[1]), Ok(()));
    let violation = validator.push(&frames[2]).unwrap_err();
    assert_eq!(violation.event, 2);
    assert!(violation
        .message
        .starts_with("`input_json_delta` for index 0, which is a `text` block"));
    assert_eq!(validator.push(&frames[3]), Err(violation.clone()));
    assert_eq!(validator.finish(), Err(violation.clone()));
    assert_eq!(validate_anthropic(&frames), Err(violation));
}

#[test]
fn anthropic_frames_and_bytes_agree() {
    let events = text_then_tool();
    assert_eq!(validate_anthropic(&anthropic_frames(&events)), Ok(()));
    let mut validator = AnthropicValidator::new();
    for frame in anthropic_frames(&events) {
        validator.push(&frame).unwrap();
    }
    assert_eq!(validator.finish(), Ok(()));
    let broken = with(events, 7, text_delta(1, "x"));
    assert_eq!(
        validate_anthropic(&anthropic_frames(&broken)).unwrap_err(),
        validate_anthropic_bytes(&anthropic_sse(&broken)).unwrap_err()
    );
}

#[test]
fn violation_displays_event_number_and_message() {
    let violation = Violation {
        event: 7,
        message: "`content_block_delta` for index 2, which was never started".into(),
    };
    assert_eq!(
        violation.to_string(),
        "event 7: `content_block_delta` for index 2, which was never started"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenAI stream builders
// ---------------------------------------------------------------------------------------------

const DONE: &str = "[DONE]";

fn chunk_with(choices: Value, usage: Option<Value>) -> String {
    let mut chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                           "created": 1_731_368_640, "model": "gpt-4o-2024-08-06",
                           "system_fingerprint": "fp_1", "choices": choices});
    if let Some(usage) = usage {
        chunk["usage"] = usage;
    }
    chunk.to_string()
}

fn chunk(index: usize, delta: Value, finish_reason: Option<&str>) -> String {
    chunk_with(
        json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]),
        None,
    )
}

fn role(index: usize) -> String {
    chunk(
        index,
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )
}

fn content(index: usize, text: &str) -> String {
    chunk(index, json!({"content": text}), None)
}

fn finish(index: usize, reason: &str) -> String {
    chunk(index, json!({}), Some(reason))
}

fn tool_first(index: usize, call: usize, id: &str, name: &str) -> String {
    chunk(
        index,
        json!({"tool_calls": [{"index": call, "id": id, "type": "function",
                               "function": {"name": name, "arguments": ""}}]}),
        None,
    )
}

fn tool_args(index: usize, call: usize, arguments: &str) -> String {
    chunk(
        index,
        json!({"tool_calls": [{"index": call, "function": {"arguments": arguments}}]}),
        None,
    )
}

fn usage_chunk(prompt: u64, completion: u64, total: u64) -> String {
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
                       "total_tokens": total});
    chunk_with(json!([]), Some(usage))
}

fn openai_sse(frames: &[String]) -> Vec<u8> {
    frames
        .iter()
        .map(|data| format!("data: {data}\n\n"))
        .collect::<String>()
        .into_bytes()
}

fn openai_violation(frames: &[String]) -> String {
    validate_openai_bytes(&openai_sse(frames))
        .expect_err("the stream should be invalid")
        .to_string()
}

fn assert_openai_ok(frames: &[String]) {
    if let Err(violation) = validate_openai_bytes(&openai_sse(frames)) {
        panic!("valid stream rejected: {violation}");
    }
}

fn text_stream() -> Vec<String> {
    vec![
        role(0),
        content(0, "Hello"),
        content(0, " there"),
        finish(0, "stop"),
        usage_chunk(9, 2, 11),
        DONE.into(),
    ]
}

fn tool_stream() -> Vec<String> {
    vec![
        role(0),
        tool_first(0, 0, "call_a", "get_weather"),
        tool_args(0, 0, "{\"location\": \"Par"),
        tool_args(0, 0, "is\"}"),
        tool_first(0, 1, "call_b", "get_time"),
        tool_args(0, 1, "{}"),
        finish(0, "tool_calls"),
        DONE.into(),
    ]
}

// ---------------------------------------------------------------------------------------------
// OpenAI: passing streams
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_recorded_streams_pass() {
    for name in [
        "stream-n2-multiple-choices",
        "stream-parallel-tool-calls",
        "stream-text-include-usage",
    ] {
        let path = format!(
            "{}/testdata/validate/openai/{name}.sse",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        if let Err(violation) = validate_openai_bytes(&bytes) {
            panic!("{name}: {violation}");
        }
    }
}

#[test]
fn openai_n2_choices_pass() {
    // n > 1 is legal: choices interleave and each finishes on its own.
    let path = format!(
        "{}/testdata/validate/openai/stream-n2-multiple-choices.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    assert_eq!(validate_openai_bytes(&std::fs::read(path).unwrap()), Ok(()));
    assert_openai_ok(&[
        role(0),
        role(1),
        content(1, "B"),
        content(0, "A"),
        finish(1, "length"),
        finish(0, "stop"),
        usage_chunk(5, 2, 7),
        DONE.into(),
    ]);
}

#[test]
fn openai_text_and_tool_streams_pass() {
    assert_openai_ok(&text_stream());
    assert_openai_ok(&tool_stream());
}

#[test]
fn openai_text_before_tool_calls_and_null_usage_pass() {
    let mut first = role(0);
    first = first.replace(
        "\"system_fingerprint\"",
        "\"usage\":null,\"system_fingerprint\"",
    );
    assert_openai_ok(&[
        first,
        content(0, "Checking."),
        tool_first(0, 0, "call_a", "now"),
        tool_args(0, 0, "{}"),
        // Content and finish in the same chunk, as some servers send them.
        chunk(0, json!({"content": ""}), Some("tool_calls")),
        DONE.into(),
    ]);
}

#[test]
fn openai_truncated_arguments_pass_when_the_choice_says_length() {
    assert_openai_ok(&[
        role(0),
        tool_first(0, 0, "call_a", "write"),
        tool_args(0, 0, "{\"text\": \"aaa"),
        finish(0, "length"),
        DONE.into(),
    ]);
}

#[test]
fn openai_in_band_error_passes() {
    let error = json!({"error": {"message": "The server had an error", "type": "server_error",
                                 "param": null, "code": null}});
    assert_openai_ok(&[role(0), content(0, "Hel"), error.to_string(), DONE.into()]);
    // The SDKs raise at the error, so a missing `[DONE]` after it changes nothing.
    assert_openai_ok(&[role(0), error.to_string()]);
}

// ---------------------------------------------------------------------------------------------
// OpenAI: framing and terminator
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_data_must_be_a_json_object() {
    assert_eq!(
        validate_openai_bytes(b"data: {\"id\":\n\n")
            .unwrap_err()
            .to_string(),
        "event 0: data is not valid JSON (EOF while parsing a value at line 1 column 6); the \
        OpenAI SDKs fail parsing it"
    );
    assert_eq!(
        openai_violation(&["\"hello\"".into()]),
        "event 0: data is the string \"hello\", not a JSON object"
    );
    assert_eq!(
        validate_openai_bytes(b"event: ping\n\n")
            .unwrap_err()
            .to_string(),
        "event 0: frame without data; the OpenAI SDKs parse every frame's data as JSON and fail \
        on an empty one"
    );
    assert_eq!(
        validate_openai_bytes(b"data:  [DONE]\n\n")
            .unwrap_err()
            .to_string(),
        "event 0: `[DONE]` with leading whitespace; the OpenAI SDKs only recognise data that \
        starts with `[DONE]` and try to parse this as JSON"
    );
}

#[test]
fn openai_done_is_last_and_once() {
    let mut frames = text_stream();
    frames.push(DONE.into());
    assert_eq!(
        openai_violation(&frames),
        "event 6: frame after `[DONE]`, which must be the last one; the OpenAI SDKs stop reading \
        at `[DONE]`, so it is lost"
    );
}

#[test]
fn openai_stream_must_end_with_done() {
    let mut frames = text_stream();
    frames.pop();
    assert_eq!(
        openai_violation(&frames),
        "event 5: stream ended before [DONE], which OpenAI always sends last; without it a client \
        cannot tell a complete stream from a dropped connection"
    );
}

#[test]
fn openai_last_event_must_be_terminated() {
    let mut bytes = openai_sse(&text_stream());
    bytes.truncate(bytes.len() - 1);
    assert_eq!(
        validate_openai_bytes(&bytes).unwrap_err().to_string(),
        "event 5: the last event is not terminated by a blank line; the SDKs' SSE parsers only \
        dispatch an event at its blank line, so they drop it"
    );
}

#[test]
fn openai_done_needs_chunks_and_finished_choices() {
    assert_eq!(
        openai_violation(&[DONE.into()]),
        "event 0: `[DONE]` before any chunk; the openai SDK's stream helper fails with \"request \
        ended without sending any chunks\""
    );
    assert_eq!(
        openai_violation(&[role(0), content(0, "Hi"), DONE.into()]),
        "event 2: `[DONE]` before choice 0 got a `finish_reason`; the openai SDK's stream helper \
        fails with \"missing finish_reason for choice 0\""
    );
}

#[test]
fn openai_in_band_error_needs_a_message_and_ends_the_stream() {
    assert_eq!(
        openai_violation(&[
            role(0),
            json!({"error": {"type": "server_error"}}).to_string(),
            DONE.into()
        ]),
        "event 1: in-band error without a string `error.message`; the openai SDK raises \"An \
        error occurred during streaming\" instead of the upstream's reason"
    );
    let error = json!({"error": {"message": "overloaded", "type": "server_error"}}).to_string();
    assert_eq!(
        openai_violation(&[role(0), error, content(0, "more"), DONE.into()]),
        "event 2: frame after the in-band error; only `[DONE]` may follow it"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenAI: chunk envelope
// ---------------------------------------------------------------------------------------------

/// An edit of a chunk's top-level object, for table-driven cases.
type ChunkEdit = Box<dyn FnOnce(&mut serde_json::Map<String, Value>)>;

fn edited_chunk(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut value: Value = serde_json::from_str(&role(0)).unwrap();
    edit(value.as_object_mut().unwrap());
    value.to_string()
}

#[test]
fn openai_chunk_envelope_fields() {
    let cases: Vec<(ChunkEdit, &str)> =
        vec![
        (Box::new(|c| drop(c.remove("id"))), "event 0: `id` is missing (expected a string)"),
        (
            Box::new(|c| drop(c.insert("object".into(), json!("chat.completion")))),
            "event 0: `object` is the string \"chat.completion\", expected \
            \"chat.completion.chunk\"; the openai SDK's stream helper skips such chunks",
        ),
        (
            Box::new(|c| drop(c.insert("created".into(), json!("2024-11-11")))),
            "event 0: `created` is the string \"2024-11-11\", expected an integer (Unix seconds)",
        ),
        (Box::new(|c| drop(c.remove("model"))), "event 0: `model` is missing (expected a string)"),
        (Box::new(|c| drop(c.insert("choices".into(), json!({})))), "event 0: `choices` is an \
        object, expected an array"),
    ];
    for (edit, expected) in cases {
        assert_eq!(openai_violation(&[edited_chunk(edit)]), expected);
    }
}

#[test]
fn openai_chunk_ids_are_all_the_same() {
    let other = content(0, "Hi").replace("chatcmpl-1", "chatcmpl-2");
    assert_eq!(
        openai_violation(&[role(0), other]),
        "event 1: chunk `id` is \"chatcmpl-2\" but the first chunk's was \"chatcmpl-1\"; every \
        chunk of a stream has the same id"
    );
}

#[test]
fn openai_choice_needs_index_and_delta() {
    assert_eq!(
        openai_violation(&[chunk_with(json!([{"delta": {"role": "assistant"}}]), None)]),
        "event 0: `choices[0]` has no `index`"
    );
    assert_eq!(
        openai_violation(&[chunk_with(
            json!([{"index": 0, "finish_reason": null}]),
            None
        )]),
        "event 0: choice 0: `delta` is missing (expected an object); the OpenAI SDKs read every \
        choice's delta"
    );
}

#[test]
fn openai_choices_first_appear_in_order() {
    assert_eq!(
        openai_violation(&[role(1)]),
        "event 0: choice 1 appears before choice 0; choice indices first appear in order 0, 1, 2… \
        (the openai SDK's stream helper appends a new choice to its list and looks choices up by \
        position)"
    );
}

#[test]
fn openai_first_delta_carries_the_assistant_role() {
    assert_eq!(
        openai_violation(&[content(0, "Hi")]),
        "event 0: the first delta of choice 0 has no `role`; it must carry `\"role\": \
        \"assistant\"` (the openai-node stream helper fails with \"missing role for choice 0\")"
    );
    assert_eq!(
        openai_violation(&[chunk(0, json!({"role": "user"}), None)]),
        "event 0: choice 0: `delta.role` is the string \"user\", expected \"assistant\""
    );
    assert_eq!(
        openai_violation(&[
            role(0),
            chunk(0, json!({"role": "assistant", "content": "Hi"}), None)
        ]),
        "event 1: choice 0 repeats `role` in a later delta; the openai Python SDK's stream helper \
        concatenates string fields across deltas, so the role becomes \"assistantassistant\""
    );
}

#[test]
fn openai_delta_content_types() {
    assert_eq!(
        openai_violation(&[role(0), chunk(0, json!({"content": ["Hi"]}), None)]),
        "event 1: choice 0: `delta.content` is an array, expected a string or null"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenAI: tool calls
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_tool_call_fragments_need_an_integer_index() {
    let fragment =
        json!({"tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "f"}}]});
    assert_eq!(
        openai_violation(&[role(0), chunk(0, fragment, None)]),
        "event 1: choice 0: `delta.tool_calls[0]` has no `index`; the openai SDK's stream helper \
        accumulates tool calls by it and raises without one"
    );
    let fragment = json!({"tool_calls": [{"index": "0", "function": {"arguments": "{}"}}]});
    assert_eq!(
        openai_violation(&[role(0), chunk(0, fragment, None)]),
        "event 1: choice 0: `delta.tool_calls[0].index` is the string \"0\", expected a \
        non-negative integer (the openai SDK's stream helper accumulates tool calls by it)"
    );
}

#[test]
fn openai_tool_call_indices_start_at_zero_and_go_up_by_one() {
    assert_eq!(
        openai_violation(&[role(0), tool_first(0, 1, "call_a", "f")]),
        "event 1: tool call 1 of choice 0 skips index 0; tool-call indices start at 0 and go up \
        by 1 (the openai Python SDK's stream helper raises IndexError)"
    );
}

#[test]
fn openai_first_tool_fragment_carries_id_type_and_name() {
    let needed = "the first fragment of a tool call carries `id`, `\"type\": \"function\"` and \
    `function.name`, which the openai SDKs' stream helpers need";
    let no_id = json!({"tool_calls": [{"index": 0, "type": "function",
                                       "function": {"name": "f", "arguments": ""}}]});
    assert_eq!(
        openai_violation(&[role(0), chunk(0, no_id, None)]),
        format!("event 1: tool call 0 of choice 0: the first fragment has no `id`; {needed}")
    );
    let no_type = json!({"tool_calls": [{"index": 0, "id": "call_a",
                                         "function": {"name": "f", "arguments": ""}}]});
    assert_eq!(
        openai_violation(&[role(0), chunk(0, no_type, None)]),
        format!(
            "event 1: tool call 0 of choice 0: `type` is missing (expected \"function\"); {needed}"
        )
    );
    let no_name = json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                         "function": {"arguments": "{}"}}]});
    assert_eq!(
        openai_violation(&[role(0), chunk(0, no_name, None)]),
        format!(
            "event 1: tool call 0 of choice 0: the first fragment has no `function.name`; {needed}"
        )
    );
}

#[test]
fn openai_every_tool_fragment_has_a_function_object() {
    let bare = json!({"tool_calls": [{"index": 0}]});
    assert_eq!(
        openai_violation(&[
            role(0),
            tool_first(0, 0, "call_a", "f"),
            chunk(0, bare, None)
        ]),
        "event 2: tool call 0 of choice 0: `function` is missing (expected an object); the openai \
        Python SDK's stream helper asserts every fragment has one"
    );
}

#[test]
fn openai_later_tool_fragments_keep_id_and_name() {
    let changed =
        json!({"tool_calls": [{"index": 0, "id": "call_b", "function": {"arguments": "{}"}}]});
    assert_eq!(
        openai_violation(&[
            role(0),
            tool_first(0, 0, "call_a", "f"),
            chunk(0, changed, None)
        ]),
        "event 2: tool call 0 of choice 0: a later fragment changes `id` from \"call_a\" to \
        \"call_b\""
    );
    let repeated =
        json!({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]});
    assert_eq!(
        openai_violation(&[
            role(0),
            tool_first(0, 0, "call_a", "f"),
            chunk(0, repeated, None)
        ]),
        "event 2: tool call 0 of choice 0: a later fragment repeats `function.name`; the openai \
        Python SDK's stream helper concatenates string fields across fragments, so it becomes \
        \"ff\""
    );
}

#[test]
fn openai_tool_call_fragments_do_not_interleave() {
    let frames = [
        role(0),
        tool_first(0, 0, "call_a", "f"),
        tool_first(0, 1, "call_b", "g"),
        tool_args(0, 0, "{}"),
    ];
    assert_eq!(
        openai_violation(&frames),
        "event 3: tool call 0 of choice 0 continues after tool call 1 started; fragments of one \
        call are contiguous (the openai SDK's stream helper has already emitted \
        `tool_calls.function.arguments.done` for it)"
    );
}

#[test]
fn openai_tool_arguments_parse_as_an_object_at_the_finish() {
    let mut frames = tool_stream();
    frames[3] = tool_args(0, 0, "is\"");
    assert_eq!(
        openai_violation(&frames),
        "event 6: the arguments of tool call 0 (`get_weather`) of choice 0 are not valid JSON at \
        its finish (EOF while parsing an object at line 1 column 20); clients decode them to run \
        the tool"
    );
    let mut frames = tool_stream();
    frames[5] = tool_args(0, 1, "");
    assert_eq!(
        openai_violation(&frames),
        "event 6: the arguments of tool call 1 (`get_time`) of choice 0 are empty at its finish; \
        a call without arguments sends `{}`"
    );
    let mut frames = tool_stream();
    frames[5] = tool_args(0, 1, "42");
    assert_eq!(
        openai_violation(&frames),
        "event 6: the arguments of tool call 1 (`get_time`) of choice 0 are the number 42 at its \
        finish, not a JSON object; function arguments are always an object"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenAI: finish_reason and usage
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_finish_reason_values() {
    assert_eq!(
        openai_violation(&[role(0), finish(0, "end_turn")]),
        "event 1: choice 0: `finish_reason` is \"end_turn\", expected one of stop, length, \
        tool_calls, content_filter, function_call"
    );
}

#[test]
fn openai_finish_reason_once_and_nothing_after() {
    assert_eq!(
        openai_violation(&[role(0), finish(0, "stop"), finish(0, "stop")]),
        "event 2: second `finish_reason` for choice 0 (the first came in event 1)"
    );
    assert_eq!(
        openai_violation(&[role(0), finish(0, "stop"), content(0, "more")]),
        "event 2: choice 0 gets `delta.content` after its `finish_reason` (event 1); nothing may \
        follow the end of a choice"
    );
    let mut frames = tool_stream();
    frames.insert(7, tool_args(0, 1, " "));
    assert_eq!(
        openai_violation(&frames),
        "event 7: choice 0 gets `delta.tool_calls` after its `finish_reason` (event 6); nothing \
        may follow the end of a choice"
    );
}

#[test]
fn openai_tool_calls_must_not_finish_with_stop() {
    // PITFALLS 4.
    let mut frames = tool_stream();
    frames[6] = finish(0, "stop");
    assert_eq!(
        openai_violation(&frames),
        "event 6: choice 0 made tool calls but finished with `stop`; it must be `tool_calls`, or \
        agents stop instead of running the tools"
    );
    assert_eq!(
        openai_violation(&[
            role(0),
            content(0, "Hi"),
            finish(0, "tool_calls"),
            DONE.into()
        ]),
        "event 2: choice 0 finished with `tool_calls` but made no tool calls"
    );
}

#[test]
fn openai_usage_chunk_comes_last() {
    assert_eq!(
        openai_violation(&[
            role(0),
            content(0, "Hi"),
            usage_chunk(3, 1, 4),
            finish(0, "stop"),
            DONE.into()
        ]),
        "event 2: the usage chunk (`choices: []` with `usage`) comes before choice 0 finished; it \
        must be the last chunk, after every `finish_reason`"
    );
    assert_eq!(
        openai_violation(&[
            role(0),
            finish(0, "stop"),
            usage_chunk(3, 1, 4),
            usage_chunk(3, 1, 4),
            DONE.into()
        ]),
        "event 3: chunk after the usage chunk (`choices: []` with `usage`), which must be the \
        last chunk"
    );
}

#[test]
fn openai_usage_counts() {
    assert_eq!(
        openai_violation(&[
            role(0),
            finish(0, "stop"),
            usage_chunk(3, 1, 5),
            DONE.into()
        ]),
        "event 2: `usage.total_tokens` is 5, but `prompt_tokens` + `completion_tokens` is 4"
    );
    let usage = chunk_with(
        json!([]),
        Some(json!({"completion_tokens": 1, "total_tokens": 1})),
    );
    assert_eq!(
        openai_violation(&[role(0), finish(0, "stop"), usage, DONE.into()]),
        "event 2: `usage.prompt_tokens` is missing (expected a non-negative integer)"
    );
    let usage = chunk_with(
        json!([]),
        Some(json!({"prompt_tokens": 1.5, "completion_tokens": 1, "total_tokens": 2})),
    );
    assert_eq!(
        openai_violation(&[role(0), finish(0, "stop"), usage, DONE.into()]),
        "event 2: `usage.prompt_tokens` is the number 1.5, expected a non-negative integer"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenAI: the incremental API
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_validator_reports_at_the_offending_push_and_stays_failed() {
    let frames: Vec<SseFrame> = [role(0), content(1, "x"), finish(0, "stop"), DONE.into()]
        .iter()
        .map(|data| frame(None, data))
        .collect();
    let mut validator = OpenAiValidator::new();
    assert_eq!(validator.push(&frames[0]), Ok(()));
    let violation = validator.push(&frames[1]).unwrap_err();
    assert_eq!(violation.event, 1);
    assert_eq!(validator.push(&frames[2]), Err(violation.clone()));
    assert_eq!(validator.finish(), Err(violation.clone()));
    assert_eq!(validate_openai(&frames), Err(violation));

    let frames: Vec<SseFrame> = text_stream().iter().map(|data| frame(None, data)).collect();
    assert_eq!(validate_openai(&frames), Ok(()));
}
