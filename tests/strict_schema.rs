//! Tests of the strict test-only schema (`tests/strict/mod.rs`): every real recorded body in
//! `testdata/` validates, hand-written documents cover the parts of the specs the recordings
//! don't, and unknown keys, wrong types and out-of-vocabulary values are rejected with their path.

mod strict;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

// -------------------------------------------------------------------------------------------
// Recorded traffic

/// Keys real Anthropic traffic carries that the 2025-09 reference predates and that a2o never
/// produces (it has no source for them when converting from OpenAI), so the strict model leaves
/// them out on purpose and the recordings drop them before validation. Each is documented in the
/// official SDK (`anthropic-sdk-python`, `src/anthropic/types/`); add one to the model if a2o
/// ever starts emitting it.
const NEWER_THAN_SPEC: &[(&str, &[&str])] = &[
    // `Message.stop_details` (`RefusalStopDetails`: refusal category and explanation).
    (
        "stop_details",
        &[
            "/stop_details",
            "/message/stop_details",
            "/delta/stop_details",
        ],
    ),
    // `Usage.inference_geo`: where inference ran.
    (
        "inference_geo",
        &["/usage/inference_geo", "/message/usage/inference_geo"],
    ),
    // `Usage.output_tokens_details` (`thinking_tokens`), seen on `message_delta`.
    (
        "output_tokens_details",
        &[
            "/usage/output_tokens_details",
            "/message/usage/output_tokens_details",
        ],
    ),
    // `ServerToolUsage.web_fetch_requests`, for the web fetch tool a2o doesn't model.
    (
        "web_fetch_requests",
        &[
            "/usage/server_tool_use/web_fetch_requests",
            "/message/usage/server_tool_use/web_fetch_requests",
        ],
    ),
    // `caller` on server tool blocks (who invoked the tool: `{"type":"direct"}`).
    (
        "caller",
        &[
            "/content/*/caller",
            "/content_block/caller",
            "/messages/*/content/*/caller",
        ],
    ),
    // `thinking.display` (`summarized` | `omitted`), a request option with no OpenAI source.
    ("display", &["/thinking/display"]),
];

fn testdata(kind: &str, direction: &str, extension: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(kind)
        .join(direction);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(extension))
        // Hand-written cases are often deliberately not valid API documents (that is what
        // they test); only recorded traffic must satisfy the strict models.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("hand-"))
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no {extension} files in {}",
        dir.display()
    );
    files
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes the value at `pattern` (a JSON pointer where `*` matches any array element);
/// returns how many keys were removed.
fn remove_at(value: &mut Value, pattern: &str) -> usize {
    fn walk(value: &mut Value, segments: &[&str]) -> usize {
        match segments {
            [] => 0,
            [last] => value
                .as_object_mut()
                .and_then(|o| o.remove(*last))
                .map_or(0, |_| 1),
            ["*", rest @ ..] => match value {
                Value::Array(items) => items.iter_mut().map(|item| walk(item, rest)).sum(),
                _ => 0,
            },
            [key, rest @ ..] => value.get_mut(*key).map_or(0, |child| walk(child, rest)),
        }
    }
    let segments: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    walk(value, &segments)
}

/// Drops the [`NEWER_THAN_SPEC`] keys, counting removals per key name into `used`.
fn strip_newer(value: &mut Value, used: &mut [usize]) {
    for (i, (_, patterns)) in NEWER_THAN_SPEC.iter().enumerate() {
        used[i] += patterns.iter().map(|p| remove_at(value, p)).sum::<usize>();
    }
}

/// Rewrites each `data:` line of an SSE transcript through `f` (the recordings have one-line data).
fn map_sse_data(sse: &str, mut f: impl FnMut(&mut Value)) -> String {
    sse.lines()
        .map(|line| match line.strip_prefix("data:") {
            Some(data) => {
                let mut value: Value =
                    serde_json::from_str(data.trim()).unwrap_or_else(|e| panic!("{line}: {e}"));
                f(&mut value);
                format!("data: {value}")
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

type Check = fn(&Value) -> Result<(), String>;

fn all_validate(files: &[PathBuf], check: Check, used: &mut [usize]) {
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let mut value = read_json(path);
            strip_newer(&mut value, used);
            check(&value).err().map(|e| format!("{}: {e}", name(path)))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn recorded_openai_documents_validate_unchanged() {
    let mut used = vec![0; NEWER_THAN_SPEC.len()];
    all_validate(
        &testdata("request", "openai-to-anthropic", ".in.json"),
        strict::openai_request,
        &mut used,
    );
    all_validate(
        &testdata("response", "openai-to-anthropic", ".in.json"),
        strict::openai_response,
        &mut used,
    );
    all_validate(
        &testdata("error", "openai-to-anthropic", ".in.json"),
        strict::openai_error,
        &mut used,
    );
    for path in testdata("stream", "openai-to-anthropic", ".in.sse") {
        let sse = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(e) = strict::stream("openai", &sse) {
            panic!("{}: {e}", name(&path));
        }
    }
    // Every key OpenAI sent (`obfuscation`, `annotations`, `service_tier`, …) is in its spec.
    assert_eq!(
        used.iter().sum::<usize>(),
        0,
        "OpenAI recordings needed stripping: {used:?}"
    );
}

#[test]
fn recorded_anthropic_documents_validate_without_the_newer_keys() {
    let mut used = vec![0; NEWER_THAN_SPEC.len()];
    all_validate(
        &testdata("request", "anthropic-to-openai", ".in.json"),
        strict::anthropic_request,
        &mut used,
    );
    all_validate(
        &testdata("response", "anthropic-to-openai", ".in.json"),
        strict::anthropic_response,
        &mut used,
    );
    all_validate(
        &testdata("error", "anthropic-to-openai", ".in.json"),
        strict::anthropic_error,
        &mut used,
    );
    for path in testdata("stream", "anthropic-to-openai", ".in.sse") {
        let sse = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stripped = map_sse_data(&sse, |event| strip_newer(event, &mut used));
        if let Err(e) = strict::stream("anthropic", &stripped) {
            panic!("{}: {e}", name(&path));
        }
        if let Err(e) = strict::anthropic_stream_order(&stripped) {
            panic!("{}: {e}", name(&path));
        }
    }
    // Keeps the list honest: every entry is needed by some recording.
    for ((key, _), count) in NEWER_THAN_SPEC.iter().zip(&used) {
        assert!(
            *count > 0,
            "`{key}` is listed in NEWER_THAN_SPEC but no recording carries it"
        );
    }
}

#[test]
fn recorded_anthropic_documents_fail_with_the_newer_keys() {
    // Without stripping, the strict model must name each newer key it meets.
    let stream = testdata("stream", "anthropic-to-openai", ".in.sse")
        .into_iter()
        .find(|p| name(p) == "stream-text.in.sse")
        .map(|p| fs::read_to_string(p).unwrap_or_default())
        .unwrap_or_default();
    let err = strict::stream("anthropic", &stream).unwrap_err();
    assert!(
        err.contains("stop_details") || err.contains("inference_geo"),
        "{err}"
    );
}

// -------------------------------------------------------------------------------------------
// Hand-written documents: the parts of the specs the recordings don't exercise

fn assert_ok(check: Check, value: &Value) {
    if let Err(e) = check(value) {
        panic!("{e}\nin {value:#}");
    }
}

/// `/messages/2/content` as the error paths spell it: `messages[2].content`.
fn dotted(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.parse::<usize>().is_ok() {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
    }
    path
}

/// Asserts rejection and that the message names `path` (the full dotted path to the culprit).
fn assert_rejected(check: Check, value: &Value, path: &str) -> String {
    match check(value) {
        Ok(()) => panic!("accepted, but should fail at `{path}`:\n{value:#}"),
        Err(e) => {
            assert!(
                e.starts_with(&format!("{path}:")) || e.contains(&format!("{path}: ")),
                "expected path `{path}` in: {e}"
            );
            e
        }
    }
}

fn openai_request_with_everything() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "system", "content": [{"type": "text", "text": "System."}]},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "Look:", "prompt_cache_breakpoint": {"mode": "explicit"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                {"type": "file",
                 "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"}}
            ]},
            {"role": "assistant", "content": null, "refusal": null,
             "reasoning_content": "Thinking…",
             "thinking_blocks": [
                {"type": "thinking", "thinking": "Thinking…", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"}
             ],
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "[tool error] boom"},
            {"role": "assistant",
             "content": [{"type": "text", "text": "Hi"}, {"type": "refusal", "refusal": "No"}]}
        ],
        "max_completion_tokens": 100,
        "max_tokens": 100,
        "temperature": 1.5,
        "top_p": 0.9,
        "n": 1,
        "stream": true,
        "stream_options": {"include_usage": true, "include_obfuscation": false},
        "stop": ["a", "b", "c", "d"],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "d",
                                              "parameters": {"type": "object"}, "strict": true}},
            {"type": "custom", "custom": {"name": "grep",
                "format": {"type": "grammar", "grammar": {"definition": "x", "syntax": "lark"}}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false,
        "reasoning_effort": "high",
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}},
        "user": "u",
        "safety_identifier": "s",
        "prompt_cache_key": "k",
        "prompt_cache_retention": "24h",
        "metadata": {"a": "b"},
        "logit_bias": {"50256": -100},
        "seed": -1,
        "service_tier": "auto",
        "web_search_options": {"search_context_size": "low",
            "user_location": {"type": "approximate", "approximate": {"city": "Paris"}}}
    })
}

fn anthropic_request_with_everything() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "Be terse.",
                    "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "document",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": "AAAA"},
                 "title": "A", "context": "B", "citations": {"enabled": true},
                 "cache_control": {"type": "ephemeral"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
                {"type": "document",
                 "source": {"type": "content", "content": [{"type": "text", "text": "c"}]}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Paris.", "citations": [
                    {"type": "char_location", "cited_text": "P", "document_index": 0,
                     "document_title": null, "start_char_index": 0, "end_char_index": 1},
                    {"type": "web_search_result_location", "cited_text": "P", "encrypted_index": "e",
                     "title": "T", "url": "https://example.com"}
                ]},
                {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search",
                 "input": {"query": "q"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01",
                 "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "is_error": true,
                 "content": [{"type": "text", "text": "boom", "cache_control": {"type": "ephemeral"}}]},
                {"type": "text", "text": "And now?"}
            ]}
        ],
        "metadata": {"user_id": "u"},
        "stop_sequences": ["\n\nHuman:"],
        "stream": true,
        "temperature": 1.0,
        "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "tools": [
            {"name": "get_weather", "description": "d",
             "input_schema": {"type": "object", "properties": {}}, "strict": true,
             "cache_control": {"type": "ephemeral"}},
            {"type": "custom", "name": "other", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
             "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}
        ],
        "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        "service_tier": "auto"
    })
}

fn openai_chunk() -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]
    })
}

#[test]
fn openai_documents_covering_the_spec_validate() {
    assert_ok(strict::openai_request, &openai_request_with_everything());
    assert_ok(
        strict::openai_request,
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required", "stop": "x"}),
    );
    assert_ok(
        strict::openai_request,
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {
            "mode": "auto", "tools": [{"type": "function", "function": {"name": "f"}}]}},
        "response_format": {"type": "json_object"}}),
    );
    assert_ok(
        strict::openai_response,
        &json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
                "role": "assistant", "content": null, "refusal": null,
                "reasoning_content": "Hmm",
                "thinking_blocks": [{"type": "thinking", "thinking": "Hmm", "signature": "sig"}],
                "annotations": [{"type": "url_citation", "url_citation": {
                    "start_index": 0, "end_index": 5, "url": "https://example.com", "title": "T"}}],
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "f", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 2},
                      "completion_tokens_details": {"reasoning_tokens": 3}}
        }),
    );
    let mut chunk = openai_chunk();
    chunk["choices"][0]["delta"] = json!({
        "reasoning_content": "Hmm",
        "thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "", "signature": "sig"}],
        "tool_calls": [{"index": 1, "id": "call_1", "type": "function",
                        "function": {"name": "f", "arguments": ""}}]
    });
    assert_ok(strict::openai_chunk, &chunk);
    let usage_chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
    assert_ok(strict::openai_chunk, &usage_chunk);
    let error = json!({"error": {"message": "m", "type": "server_error", "param": null, "code": "overloaded"}});
    assert_ok(strict::openai_error, &error);
    assert_ok(strict::openai_chunk, &error);
}

#[test]
fn anthropic_documents_covering_the_spec_validate() {
    assert_ok(
        strict::anthropic_request,
        &anthropic_request_with_everything(),
    );
    let mut adaptive = anthropic_request_with_everything();
    adaptive["thinking"] = json!({"type": "adaptive"});
    adaptive["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
    adaptive["output_format"] = json!({"type": "json_schema", "schema": {"type": "object"}});
    assert_ok(strict::anthropic_request, &adaptive);
    assert_ok(
        strict::anthropic_response,
        &json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [
                {"type": "thinking", "thinking": "Hmm", "signature": "sig"},
                {"type": "text", "text": "Hi", "citations": [{"type": "page_location", "cited_text": "x",
                    "document_index": 0,
                    "document_title": "D", "start_page_number": 1, "end_page_number": 2, "file_id": null}]},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
            ],
            "stop_reason": "model_context_window_exceeded", "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 2,
                      "cache_creation_input_tokens": null, "cache_read_input_tokens": 0,
                      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                      "server_tool_use": {"web_search_requests": 1}, "service_tier": "standard"}
        }),
    );
    for event in [
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation":
            {"type": "web_search_result_location", "cited_text": "x", "encrypted_index": "e",
             "title": null, "url": "u"}}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
               "usage": {"input_tokens": 5, "cache_read_input_tokens": 1,
                         "cache_creation_input_tokens": 0, "output_tokens": 9}}),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ] {
        assert_ok(strict::anthropic_event, &event);
    }
    assert_ok(
        strict::anthropic_error,
        &json!({"type": "error", "error": {"type": "request_too_large", "message": "m"}, "request_id": "req_1"}),
    );
}

// -------------------------------------------------------------------------------------------
// Rejections: unknown keys at every depth, wrong types, values outside the vocabularies

#[test]
fn unknown_keys_are_rejected_with_their_path_at_every_depth() {
    let cases: &[(Check, Value, &str)] = &[
        (
            strict::openai_request,
            openai_request_with_everything(),
            "/top_k",
        ),
        (
            strict::openai_request,
            openai_request_with_everything(),
            "/messages/2/cache_control",
        ),
        (
            strict::openai_request,
            openai_request_with_everything(),
            "/messages/2/content/1/image_url/media_type",
        ),
        (
            strict::openai_request,
            openai_request_with_everything(),
            "/messages/3/thinking_blocks/0/cache_control",
        ),
        (
            strict::openai_request,
            openai_request_with_everything(),
            "/tools/0/function/input_schema",
        ),
        (
            strict::openai_request,
            openai_request_with_everything(),
            "/stream_options/foo",
        ),
        (
            strict::anthropic_request,
            anthropic_request_with_everything(),
            "/n",
        ),
        (
            strict::anthropic_request,
            anthropic_request_with_everything(),
            "/messages/0/name",
        ),
        (
            strict::anthropic_request,
            anthropic_request_with_everything(),
            "/messages/2/content/0/content/0/cache_control/scope",
        ),
        (
            strict::anthropic_request,
            anthropic_request_with_everything(),
            "/messages/1/content/2/citations/0/file_id",
        ),
        (
            strict::anthropic_request,
            anthropic_request_with_everything(),
            "/tools/2/defer_loading",
        ),
        (
            strict::anthropic_request,
            anthropic_request_with_everything(),
            "/thinking/display",
        ),
    ];
    for (check, document, pointer) in cases {
        let mut document = document.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap_or_default();
        let target = if parent.is_empty() {
            Some(&mut document)
        } else {
            document.pointer_mut(parent)
        };
        target
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at {parent}"))
            .insert(key.to_owned(), json!(1));
        let err = assert_rejected(*check, &document, &dotted(pointer));
        assert!(err.contains(&format!("`{key}`")), "{pointer}: {err}");
    }

    let mut chunk = openai_chunk();
    chunk["choices"][0]["delta"]["reasoning"] = json!("x");
    assert_rejected(strict::openai_chunk, &chunk, "choices[0].delta.reasoning");
    let mut chunk = openai_chunk();
    chunk["choices"][0]["delta"]["tool_calls"] =
        json!([{"index": 0, "function": {"name": "f", "input": "{}"}}]);
    assert_rejected(
        strict::openai_chunk,
        &chunk,
        "choices[0].delta.tool_calls[0].function.input",
    );
    let event = json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": "", "cache_control": null}});
    assert_rejected(
        strict::anthropic_event,
        &event,
        "content_block.cache_control",
    );
    let event = json!({"type": "message_start", "message": {
        "id": "m", "type": "message", "role": "assistant", "model": "m",
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 1, "prompt_tokens": 1}}});
    assert_rejected(
        strict::anthropic_event,
        &event,
        "message.usage.prompt_tokens",
    );
    let error =
        json!({"error": {"message": "m", "type": "t", "param": null, "code": null, "status": 400}});
    assert_rejected(strict::openai_error, &error, "error.status");
    let error =
        json!({"type": "error", "error": {"type": "api_error", "message": "m", "details": {}}});
    assert_rejected(strict::anthropic_error, &error, "error.details");
}

#[test]
fn wrong_types_and_out_of_vocabulary_values_are_rejected() {
    let mut r = anthropic_request_with_everything();
    r["max_tokens"] = json!("4096");
    assert_rejected(strict::anthropic_request, &r, "max_tokens");
    let mut r = anthropic_request_with_everything();
    r["max_tokens"] = json!(4096.5);
    assert_rejected(strict::anthropic_request, &r, "max_tokens");
    let mut r = anthropic_request_with_everything();
    r["temperature"] = json!(1.5); // fine for OpenAI, out of range for Anthropic
    assert_rejected(strict::anthropic_request, &r, "temperature");
    let mut r = anthropic_request_with_everything();
    r["top_p"] = Value::Null;
    assert_rejected(strict::anthropic_request, &r, "top_p");
    let mut r = anthropic_request_with_everything();
    r["messages"][0]["role"] = json!("system");
    assert_rejected(strict::anthropic_request, &r, "messages[0].role");
    let mut r = anthropic_request_with_everything();
    r["messages"][0]["content"][0]["text"] = json!("");
    assert_rejected(strict::anthropic_request, &r, "messages[0].content[0].text");
    let mut r = anthropic_request_with_everything();
    r["messages"][0]["content"][1]["source"]["media_type"] = json!("image/bmp");
    assert_rejected(
        strict::anthropic_request,
        &r,
        "messages[0].content[1].source.media_type",
    );
    let mut r = anthropic_request_with_everything();
    r["messages"][1]["content"][5]["id"] = json!("call:1");
    assert_rejected(strict::anthropic_request, &r, "messages[1].content[5].id");
    let mut r = anthropic_request_with_everything();
    r["messages"][1]["content"][5]["input"] = json!("{}");
    assert_rejected(
        strict::anthropic_request,
        &r,
        "messages[1].content[5].input",
    );
    let mut r = anthropic_request_with_everything();
    r["tools"][0]["name"] = json!("mcp__server__tool.with.dots");
    assert_rejected(strict::anthropic_request, &r, "tools[0].name");
    let mut r = anthropic_request_with_everything();
    r["tools"][0]["input_schema"] = json!({"type": "string"});
    assert_rejected(strict::anthropic_request, &r, "tools[0].input_schema.type");
    let mut r = anthropic_request_with_everything();
    r["tools"][2]["type"] = json!("web_search_99999999");
    assert_rejected(strict::anthropic_request, &r, "tools[2].type");
    let mut r = anthropic_request_with_everything();
    r["thinking"]["budget_tokens"] = json!(512);
    assert_rejected(strict::anthropic_request, &r, "thinking.budget_tokens");
    let mut r = anthropic_request_with_everything();
    r["thinking"]["budget_tokens"] = json!(8192);
    assert_rejected(strict::anthropic_request, &r, "thinking.budget_tokens");
    let mut r = anthropic_request_with_everything();
    r["messages"][0]["content"] = json!([]);
    assert_rejected(strict::anthropic_request, &r, "messages[0].content");
    let mut r = anthropic_request_with_everything();
    r["tool_choice"] = json!({"type": "required"});
    assert_rejected(strict::anthropic_request, &r, "tool_choice.type");

    let mut r = openai_request_with_everything();
    r["stop"] = json!(["a", "b", "c", "d", "e"]);
    assert_rejected(strict::openai_request, &r, "stop");
    let mut r = openai_request_with_everything();
    r["temperature"] = json!(2.5);
    assert_rejected(strict::openai_request, &r, "temperature");
    let mut r = openai_request_with_everything();
    r["tools"][0]["function"]["name"] = json!("x".repeat(65));
    assert_rejected(strict::openai_request, &r, "tools[0].function.name");
    let mut r = openai_request_with_everything();
    r["messages"][2]["content"] = json!([]);
    assert_rejected(strict::openai_request, &r, "messages[2].content");
    let mut r = openai_request_with_everything();
    r["messages"][1]["role"] = json!("model");
    assert_rejected(strict::openai_request, &r, "messages[1].role");
    let mut r = openai_request_with_everything();
    r["messages"][3]["thinking_blocks"][0]["signature"] = json!(null);
    assert_rejected(
        strict::openai_request,
        &r,
        "messages[3].thinking_blocks[0].signature",
    );
    let mut r = openai_request_with_everything();
    r["tool_choice"] = json!("any");
    assert_rejected(strict::openai_request, &r, "tool_choice");
    let mut r = openai_request_with_everything();
    r["messages"][4]["tool_call_id"] = json!(7);
    assert_rejected(strict::openai_request, &r, "messages[4].tool_call_id");

    let response = |f: &dyn Fn(&mut Value)| {
        let mut v = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                         "message": {"role": "assistant", "content": "hi", "refusal": null}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
        f(&mut v);
        v
    };
    assert_ok(strict::openai_response, &response(&|_| {}));
    assert_rejected(
        strict::openai_response,
        &response(&|v| v["choices"][0]["finish_reason"] = json!("end_turn")),
        "choices[0].finish_reason",
    );
    assert_rejected(
        strict::openai_response,
        &response(&|v| v["usage"]["prompt_tokens"] = json!(-1)),
        "usage.prompt_tokens",
    );
    assert_rejected(
        strict::openai_response,
        &response(&|v| v["object"] = json!("chat.completion.chunk")),
        "object",
    );
    // `content` must be present even when `null`; a missing required-nullable key is an error.
    let missing_content = response(&|v| {
        v["choices"][0]["message"]
            .as_object_mut()
            .map(|o| o.remove("content"));
    });
    let err = strict::openai_response(&missing_content).unwrap_err();
    assert!(
        err.starts_with("choices[0].message: missing field `content`"),
        "{err}"
    );

    let mut chunk = openai_chunk();
    chunk["choices"][0]["finish_reason"] = json!("tool_use");
    assert_rejected(strict::openai_chunk, &chunk, "choices[0].finish_reason");
    let mut chunk = openai_chunk();
    chunk["choices"][0]["delta"]["reasoning_content"] = Value::Null;
    assert_rejected(
        strict::openai_chunk,
        &chunk,
        "choices[0].delta.reasoning_content",
    );

    let error = json!({"error": {"message": "m", "type": null, "param": null, "code": null}});
    assert_rejected(strict::openai_error, &error, "error.type");
    let error = json!({"error": {"message": "m", "type": "invalid_request_error", "code": null}});
    let err = strict::openai_error(&error).unwrap_err();
    assert!(err.contains("param"), "{err}");
    let error = json!({"type": "error", "error": {"type": "server_error", "message": "m"}});
    assert_rejected(strict::anthropic_error, &error, "error.type");

    let delta = |stop_reason: &str| {
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 1}})
    };
    assert_ok(strict::anthropic_event, &delta("pause_turn"));
    assert_rejected(
        strict::anthropic_event,
        &delta("length"),
        "delta.stop_reason",
    );
    let event =
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text", "text": "x"}});
    assert_rejected(strict::anthropic_event, &event, "delta.type");
    let event = json!({"type": "content_block_stop", "index": "0"});
    assert_rejected(strict::anthropic_event, &event, "index");
}

#[test]
fn sse_framing_and_event_order_are_checked() {
    let chunk = openai_chunk().to_string();
    assert!(strict::stream("openai", &format!("data: {chunk}\n\ndata: [DONE]\n\n")).is_ok());
    let err = strict::stream("openai", &format!("data: [DONE]\n\ndata: {chunk}\n\n")).unwrap_err();
    assert!(err.contains("frame 1") && err.contains("[DONE]"), "{err}");
    let err = strict::stream(
        "openai",
        "data: {\"error\":{\"message\":\"m\",\"type\":\"t\"}}\n\n",
    )
    .unwrap_err();
    assert!(err.starts_with("frame 1: error:"), "{err}");
    assert!(strict::stream("anthropic", "data: [DONE]\n\n").is_err());
    let err = strict::stream(
        "anthropic",
        "event: ping\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
    )
    .unwrap_err();
    assert!(err.contains("frame 1"), "{err}");
    assert!(
        strict::stream("anthropic", "data: {\"type\":\"ping\"}\n\n").is_err(),
        "an Anthropic event needs its name"
    );
    assert!(strict::stream("anthropic", "event: ping\ndata: {\"type\":\"ping\"}\n\n").is_ok());
    assert!(strict::stream("klingon", "").is_err());

    let sse = |events: &[Value]| {
        events
            .iter()
            .map(|e| {
                format!(
                    "event: {}\ndata: {e}\n\n",
                    e["type"].as_str().unwrap_or("?")
                )
            })
            .collect::<String>()
    };
    let start = json!({"type": "message_start", "message": {
        "id": "m", "type": "message", "role": "assistant", "model": "m",
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 1}}});
    let text_start = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}});
    let text_delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}});
    let thinking_delta = json!({"type": "content_block_delta", "index": 0,
                                "delta": {"type": "thinking_delta", "thinking": "Hm"}});
    let stop = json!({"type": "content_block_stop", "index": 0});
    let message_delta = json!({"type": "message_delta",
                               "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                               "usage": {"output_tokens": 2}});
    let message_stop = json!({"type": "message_stop"});
    let ping = json!({"type": "ping"});

    let good = [
        start.clone(),
        ping.clone(),
        text_start.clone(),
        text_delta.clone(),
        stop.clone(),
        message_delta.clone(),
        message_stop.clone(),
    ];
    assert!(strict::anthropic_stream_order(&sse(&good)).is_ok());
    let mismatched = [
        start.clone(),
        text_start.clone(),
        thinking_delta,
        stop.clone(),
        message_delta.clone(),
        message_stop.clone(),
    ];
    let err = strict::anthropic_stream_order(&sse(&mismatched)).unwrap_err();
    assert!(
        err.contains("`thinking_delta` written into a `text` block"),
        "{err}"
    );
    let overlapping = [start.clone(), text_start.clone(), text_start.clone()];
    assert!(strict::anthropic_stream_order(&sse(&overlapping)).is_err());
    let unfinished = [start.clone(), text_start, text_delta, stop, message_delta];
    assert!(strict::anthropic_stream_order(&sse(&unfinished)).is_err());
    let late = [start, message_stop.clone(), message_stop];
    assert!(strict::anthropic_stream_order(&sse(&late)).is_err());
    let error =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    assert!(strict::anthropic_stream_order(&sse(&[ping, error])).is_ok());
}
