//! Round trips through the other dialect: every request, response and error body under
//! `testdata/` (corpus and hand-written cases) is converted A→O→A or O→A→O with
//! `a2o::pipeline::convert_document`, and the result must equal the original except where a
//! leg recorded a loss. Responses run with the client requests their legs would have (a
//! golden's `request` option, or the corpus request of the same name, converted for the other
//! leg). Targeted exact round trips (signatures, redacted thinking, tool ids, usage with cache
//! tokens, stop reasons) follow at the end, and a self-test shows the checker notices changes.
//!
//! # What "equal" means
//! Both documents are first put in a canonical form of their dialect, which erases only
//! differences the API does not see, or that a leg makes on purpose:
//! - key order; `null` members (the same as absent); numbers compared by value (`1` = `1.0`);
//! - a string content ≡ one text part/block (`"hi"` ≡ `[{"type":"text","text":"hi"}]`), for
//!   message contents, Anthropic `system` and `tool_result` content; OpenAI `stop: "x"` ≡
//!   `["x"]`; instructions that are only empty text ≡ no instructions;
//! - OpenAI: `developer` ≡ `system`; the leading run of instruction messages ≡ one instruction
//!   message holding all their parts (both APIs read them as one preamble);
//!   `max_completion_tokens` ≡ `max_tokens`; `user` ≡ `safety_identifier` (either becomes
//!   Anthropic's `metadata.user_id`); tool-call `arguments` compared as the JSON they encode,
//!   `""` ≡ `{}`; finish_reason `stop` with tool calls ≡ `tool_calls` (pitfall 4); the
//!   defaults `n: 1`, `parallel_tool_calls: true`, `stream: false`, `annotations: []`,
//!   `service_tier: "default"` and zero token-detail counters; `created` and
//!   `stream_options` are ignored (a2o stamps its own time; `stream_options` steers the
//!   proxy, not the model); an error `code` the original lacked is ignored (Anthropic errors
//!   have none, and the way back adds the conventional one for the type);
//! - Anthropic: the defaults `is_error: false`, `stream: false`, `thinking: {type:
//!   disabled}`, `tool_choice: {type: auto}`, `disable_parallel_tool_use: false`, tool `type:
//!   "custom"`, zero cache counters, an all-zero `cache_creation` or `server_tool_use`, and
//!   `service_tier: "standard"`; in responses, adjacent plain text blocks (after masking) are
//!   one text, since a response's text has no meaningful block boundaries;
//! - tool names are compared as the client knows them (shortened names restored), since
//!   restoring them is what a response leg is for.
//!
//! Canonicalisation never shifts array indices (a removed element becomes a gap that the
//! comparison skips), so loss pointers stay valid.
//!
//! # Masking by losses
//! Each loss of the first leg is a JSON pointer into the original, and its subtree is ignored:
//! - an object member is ignored in both documents (a list or object whose every member was
//!   lost may come back absent);
//! - an array element is left out of the original; the result's array must contain the
//!   original's other elements in order, and each extra element of the result must be
//!   explained: either it is a masked element that moved (equal to it, or with the same text),
//!   or, one for one, a non-`dropped` loss said an element of that array was changed in place;
//! - a loss on any usage counter masks the usage counters (they are computed together), and a
//!   loss of `stop_sequence` masks `stop_reason` (they are one fact).
//!
//! Losses of the second leg point into the intermediate document, in the other dialect. They
//! are carried back with a table of corresponding fields (`thinking` ↔ `reasoning_effort`,
//! `stop_sequences` ↔ `stop`, …); inside the conversation, where indices differ between the
//! dialects, such a loss masks every node of the original equal to the lost one (or carrying
//! the same text): a deliberate over-approximation.
//!
//! Anything that differs beyond that is an unreported loss. The known ones are listed in
//! `KNOWN_DIVERGENCES` with the reason; the test fails if a listed case stops diverging, so the
//! list cannot go stale.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use a2o::convert::{Loss, LossKind, Losses};
use a2o::pipeline::{self, DocumentKind, DocumentOptions};
use a2o::protocol::Dialect;
use a2o::stream::StreamConverter;
use serde_json::{json, Map, Value};

/// Cases whose round trip differs beyond their recorded losses, as `(kind/direction/case,
/// why)`. Each is an a2o behaviour reported to the project (or a deliberate, documented
/// normalisation that no loss describes).
const KNOWN_DIVERGENCES: &[(&str, &str)] = &[
    (
        "request/openai-to-anthropic/hand-reasoning-effort-none",
        "`reasoning_effort: none` becomes no `thinking`, which comes back as no effort at all (the model's default)",
    ),
    (
        "request/anthropic-to-openai/hand-thinking-adaptive-effort",
        "adaptive thinking with effort `low` becomes `reasoning_effort: low`, which comes back as a fixed 2048-token budget",
    ),
    (
        "response/openai-to-anthropic/hand-refusal",
        "a refusal (finish_reason `stop`) comes back as `content` with finish_reason `content_filter`; only the move of `refusal` is reported",
    ),
    (
        "response/openai-to-anthropic/nonstream-refusal",
        "a refusal (finish_reason `stop`) comes back as `content` with finish_reason `content_filter`; only the move of `refusal` is reported",
    ),
    (
        "response/openai-to-anthropic/hand-finish-function-call-legacy",
        "a legacy `function_call` comes back as a modern `tool_calls` entry (and finish_reason `tool_calls`)",
    ),
    (
        "response/openai-to-anthropic/hand-reasoning-content-unsigned",
        "unsigned `reasoning_content` comes back with an extra `thinking_blocks` entry whose signature is empty",
    ),
];

// ---------------------------------------------------------------------------------------------
// Cases

struct Case {
    /// `kind/direction/case`, as in `KNOWN_DIVERGENCES`.
    name: String,
    kind: DocumentKind,
    from: Dialect,
    original: Value,
    /// Client request for the first leg (target dialect of the first leg), when known.
    leg1_request: Option<Value>,
    /// Client request for the second leg (the original's dialect), when known.
    leg2_request: Option<Value>,
    status: Option<u16>,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn direction(from: Dialect) -> &'static str {
    match from {
        Dialect::OpenAi => "openai-to-anthropic",
        Dialect::Anthropic => "anthropic-to-openai",
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (kind_name, kind) in [
        ("request", DocumentKind::Request),
        ("response", DocumentKind::Response),
        ("error", DocumentKind::Error),
    ] {
        for from in [Dialect::OpenAi, Dialect::Anthropic] {
            let dir = testdata().join(kind_name).join(direction(from));
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut inputs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".in.json"))
                .collect();
            inputs.sort();
            for input in inputs {
                let file = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let stem = file.trim_end_matches(".in.json").to_owned();
                let options = fs::read(dir.join(format!("{stem}.options.json")))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .unwrap_or(Value::Null);
                let (leg1_request, leg2_request) = if kind == DocumentKind::Response {
                    response_contexts(from, &dir, &stem, &options)
                } else {
                    (None, None)
                };
                cases.push(Case {
                    name: format!("{kind_name}/{}/{stem}", direction(from)),
                    kind,
                    from,
                    original: read_json(&input),
                    leg1_request,
                    leg2_request,
                    status: options
                        .get("status")
                        .and_then(Value::as_u64)
                        .map(|s| s as u16),
                });
            }
        }
    }
    cases
}

/// The client requests a response's two legs need. A golden's `request` option is the first
/// leg's client (target dialect); a corpus response's request is the request case of the same
/// name (source dialect). Each is converted to give the other leg's.
fn response_contexts(
    from: Dialect,
    dir: &Path,
    stem: &str,
    options: &Value,
) -> (Option<Value>, Option<Value>) {
    if let Some(rel) = options.get("request").and_then(Value::as_str) {
        let leg1 = read_json(&dir.join(rel));
        let leg2 = convert(DocumentKind::Request, from.other(), &leg1, None, None)
            .ok()
            .map(|c| c.doc);
        return (Some(leg1), leg2);
    }
    let corpus = testdata()
        .join("request")
        .join(direction(from))
        .join(format!("{stem}.in.json"));
    if corpus.exists() {
        let leg2 = read_json(&corpus);
        let leg1 = convert(DocumentKind::Request, from, &leg2, None, None)
            .ok()
            .map(|c| c.doc);
        return (leg1, Some(leg2));
    }
    (None, None)
}

struct Leg {
    doc: Value,
    losses: Vec<Loss>,
    status: Option<u16>,
}

fn convert(
    kind: DocumentKind,
    from: Dialect,
    doc: &Value,
    request: Option<&Value>,
    status: Option<u16>,
) -> Result<Leg, String> {
    let opts = DocumentOptions {
        request: request.map(|r| serde_json::to_vec(r).expect("request serialises")),
        status,
        created: Some(1_700_000_000),
        ..DocumentOptions::default()
    };
    let bytes = serde_json::to_vec(doc).expect("document serialises");
    let converted = pipeline::convert_document(kind, from, &bytes, &opts)
        .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
    let doc = serde_json::from_slice(&converted.body).map_err(|e| e.to_string())?;
    Ok(Leg {
        doc,
        losses: converted.losses.into_vec(),
        status: converted.status,
    })
}

// ---------------------------------------------------------------------------------------------
// The round trip

#[test]
fn every_document_round_trips_except_for_its_losses() {
    let cases = cases();
    assert!(cases.len() >= 150, "only {} cases found", cases.len());
    let mut failures = Vec::new();
    let mut still_known = Vec::new();
    let mut checked = 0;
    for case in &cases {
        let Ok(first) = convert(
            case.kind,
            case.from,
            &case.original,
            case.leg1_request.as_ref(),
            case.status,
        ) else {
            // Inputs a2o refuses (the goldens pin the message) have no round trip.
            continue;
        };
        let second = match convert(
            case.kind,
            case.from.other(),
            &first.doc,
            case.leg2_request.as_ref(),
            first.status,
        ) {
            Ok(second) => second,
            Err(err) => {
                failures.push(format!("{}: the way back failed: {err}", case.name));
                continue;
            }
        };
        checked += 1;
        let verdict = compare_round_trip(case, &first, &second);
        let known = KNOWN_DIVERGENCES
            .iter()
            .find(|(name, _)| *name == case.name);
        match (verdict, known) {
            (Ok(()), None) => {}
            (Ok(()), Some(_)) => still_known.push(case.name.clone()),
            (Err(_), Some(_)) => {}
            (Err(message), None) => failures.push(format!(
                "{}: {message}\n  first-leg losses: {}\n  second-leg losses: {}\n  back: {}",
                case.name,
                describe_losses(&first.losses),
                describe_losses(&second.losses),
                second.doc
            )),
        }
    }
    assert!(checked >= 150, "only {checked} round trips ran");
    assert!(
        still_known.is_empty(),
        "these cases now round-trip; remove them from KNOWN_DIVERGENCES: {still_known:?}"
    );
    assert!(
        failures.is_empty(),
        "{} round trip(s) differ beyond their losses:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn describe_losses(losses: &[Loss]) -> String {
    if losses.is_empty() {
        return "none".to_owned();
    }
    losses
        .iter()
        .map(|l| format!("{} ({:?})", l.path, l.kind))
        .collect::<Vec<_>>()
        .join(", ")
}

fn compare_round_trip(case: &Case, first: &Leg, second: &Leg) -> Result<(), String> {
    let mut original = case.original.clone();
    let mut result = second.doc.clone();
    canonicalize(case.from, case.kind, &mut original);
    canonicalize(case.from, case.kind, &mut result);

    let mut masks = MaskTrie::default();
    for loss in &first.losses {
        masks.insert(&pointer_tokens(&loss.path), loss.kind);
    }
    for loss in &second.losses {
        for pointer in carry_back(case.from, &loss.path, &first.doc, &original) {
            masks.insert(&pointer, loss.kind);
        }
    }
    if masks.touches_usage() {
        mask_usage_counters(&mut original);
        mask_usage_counters(&mut result);
    }
    // The matched stop sequence and the stop reason are one fact.
    if masks
        .child("stop_sequence")
        .is_some_and(|m| m.here.is_some())
    {
        masks.insert(&["stop_reason".to_owned()], LossKind::Approximated);
    }
    if let Some(request) = &case.leg1_request {
        let names = client_tool_names(request);
        restore_tool_names(&mut original, &names);
        restore_tool_names(&mut result, &names);
    }
    if case.kind == DocumentKind::Response && case.from == Dialect::Anthropic {
        // Text block boundaries only show once the masked blocks and citations are gone.
        if let Some(content_masks) = masks.children.remove("content") {
            if let Some(content) = original.get_mut("content") {
                apply_masks(content, &content_masks);
            }
        }
        merge_text_blocks(&mut original);
        merge_text_blocks(&mut result);
    }
    if case.kind == DocumentKind::Error && case.from == Dialect::OpenAi {
        // Anthropic errors have no code; the way back gives the conventional code of the type.
        if original.pointer("/error/code").is_none() {
            if let Some(error) = result.get_mut("error").and_then(Value::as_object_mut) {
                error.remove("code");
            }
        }
    }

    if case.kind == DocumentKind::Error {
        let original_status = case.status;
        if let (Some(before), Some(after)) = (original_status, second.status) {
            if before != after {
                return Err(format!("status {before} came back as {after}"));
            }
        }
    }

    let mut pool = Vec::new();
    masks.collect_moved(&original, &mut pool);
    let mut cmp = Comparison { pool };
    cmp.matches(&original, &result, Some(&masks), "")
}

// ---------------------------------------------------------------------------------------------
// Canonical forms

fn canonicalize(dialect: Dialect, kind: DocumentKind, doc: &mut Value) {
    drop_nulls(doc);
    match (dialect, kind) {
        (Dialect::OpenAi, DocumentKind::Request) => canonical_openai_request(doc),
        (Dialect::OpenAi, DocumentKind::Response) => canonical_openai_response(doc),
        (Dialect::Anthropic, DocumentKind::Request) => canonical_anthropic_request(doc),
        (Dialect::Anthropic, DocumentKind::Response) => canonical_anthropic_response(doc),
        (_, DocumentKind::Error) => {}
    }
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// `"text"` → `[{"type":"text","text":"text"}]`.
fn parts(value: &mut Value) {
    if let Value::String(text) = value {
        *value = Value::Array(vec![text_part(text)]);
    }
}

/// Instructions that are only empty text say nothing: both APIs read them as absent.
fn only_empty_text(content: Option<&Value>) -> bool {
    match content {
        Some(Value::Array(parts)) => parts.iter().all(|p| {
            p.get("type").is_some_and(|t| t == "text") && p.get("text").is_some_and(|t| t == "")
        }),
        _ => false,
    }
}

fn remove_if(map: &mut Map<String, Value>, key: &str, default: impl Fn(&Value) -> bool) {
    if map.get(key).is_some_and(default) {
        map.remove(key);
    }
}

fn is_zero(value: &Value) -> bool {
    value.as_f64() == Some(0.0)
}

/// Removes zero counters from an object, and the object itself from `parent` if nothing else
/// is left.
fn drop_zero_counters(parent: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Object(counters)) = parent.get_mut(key) {
        counters.retain(|_, v| !is_zero(v));
        if counters.is_empty() {
            parent.remove(key);
        }
    }
}

/// Tool-call arguments as the JSON they encode (`""` is `{}`), so whitespace does not count.
fn canonical_arguments(arguments: &mut Value) {
    if let Value::String(text) = arguments {
        let parsed = if text.trim().is_empty() {
            Some(json!({}))
        } else {
            serde_json::from_str::<Value>(text).ok()
        };
        if let Some(parsed) = parsed {
            *arguments = json!({ "parsed json": parsed });
        }
    }
}

fn canonical_tool_calls(message: &mut Map<String, Value>) {
    if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
        for call in calls {
            if let Some(arguments) = call.pointer_mut("/function/arguments") {
                canonical_arguments(arguments);
            }
            if let Some(call) = call.as_object_mut() {
                remove_if(call, "type", |v| v == "function");
            }
        }
    }
}

fn canonical_openai_request(doc: &mut Value) {
    let Some(map) = doc.as_object_mut() else {
        return;
    };
    if let Some(tokens) = map.remove("max_completion_tokens") {
        map.entry("max_tokens").or_insert(tokens);
    }
    if let Some(user) = map.remove("user") {
        map.entry("safety_identifier").or_insert(user);
    }
    if let Some(stop) = map.get_mut("stop") {
        if let Value::String(text) = stop {
            *stop = json!([text]);
        }
    }
    map.remove("stream_options");
    remove_if(map, "n", |v| v == 1);
    remove_if(map, "parallel_tool_calls", |v| v == true);
    remove_if(map, "stream", |v| v == false);
    if let Some(Value::Array(tools)) = map.get_mut("tools") {
        for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
            remove_if(tool, "type", |v| v == "function");
        }
    }
    let Some(Value::Array(messages)) = map.get_mut("messages") else {
        return;
    };
    for message in messages.iter_mut().filter_map(Value::as_object_mut) {
        if message.get("role").is_some_and(|r| r == "developer") {
            message.insert("role".to_owned(), json!("system"));
        }
        if let Some(content) = message.get_mut("content") {
            parts(content);
        }
        canonical_tool_calls(message);
    }
    for message in messages.iter_mut() {
        if message.get("role").is_some_and(|r| r == "system")
            && only_empty_text(message.get("content"))
        {
            *message = gap();
        }
    }
    merge_leading_instructions(messages);
}

/// One system message holding the parts of the leading run of system messages; the others
/// become gaps, so that indices (and the loss pointers into them) stay valid.
fn merge_leading_instructions(messages: &mut [Value]) {
    let run: Vec<usize> = messages
        .iter()
        .enumerate()
        .take_while(|(_, m)| is_gap(m) || m.get("role").is_some_and(|r| r == "system"))
        .filter(|(_, m)| !is_gap(m))
        .map(|(i, _)| i)
        .collect();
    let Some((&first, rest)) = run.split_first() else {
        return;
    };
    let mut merged = Vec::new();
    for &i in &run {
        if let Some(Value::Array(parts)) = messages[i].get("content") {
            merged.extend(parts.iter().cloned());
        }
    }
    for &i in rest {
        messages[i] = gap();
    }
    messages[first]["content"] = Value::Array(merged);
}

/// Stands in for an element that canonicalisation removed; array comparison skips it.
fn gap() -> Value {
    json!({"\u{0}gap": true})
}

fn is_gap(value: &Value) -> bool {
    value.get("\u{0}gap").is_some()
}

fn canonical_openai_response(doc: &mut Value) {
    let Some(map) = doc.as_object_mut() else {
        return;
    };
    map.remove("created");
    remove_if(map, "service_tier", |v| v == "default");
    if let Some(Value::Object(usage)) = map.get_mut("usage") {
        drop_zero_counters(usage, "prompt_tokens_details");
        drop_zero_counters(usage, "completion_tokens_details");
    }
    if let Some(Value::Array(choices)) = map.get_mut("choices") {
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            let calls_tools = choice
                .get("message")
                .and_then(|m| m.get("tool_calls"))
                .and_then(Value::as_array)
                .is_some_and(|calls| !calls.is_empty());
            // Pitfall 4: `stop` with tool calls means `tool_calls` to every agent.
            if calls_tools && choice.get("finish_reason").is_some_and(|f| f == "stop") {
                choice.insert("finish_reason".to_owned(), json!("tool_calls"));
            }
            if let Some(Value::Object(message)) = choice.get_mut("message") {
                remove_if(message, "annotations", |v| v == &json!([]));
                canonical_tool_calls(message);
            }
        }
    }
}

fn canonical_anthropic_blocks(blocks: &mut Value) {
    parts(blocks);
    let Value::Array(blocks) = blocks else {
        return;
    };
    for block in blocks.iter_mut().filter_map(Value::as_object_mut) {
        remove_if(block, "is_error", |v| v == false);
        if block.get("type").is_some_and(|t| t == "tool_result") {
            if let Some(content) = block.get_mut("content") {
                canonical_anthropic_blocks(content);
            }
        }
    }
}

fn canonical_anthropic_request(doc: &mut Value) {
    let Some(map) = doc.as_object_mut() else {
        return;
    };
    remove_if(map, "stream", |v| v == false);
    remove_if(map, "thinking", |v| v == &json!({"type": "disabled"}));
    if let Some(Value::Object(choice)) = map.get_mut("tool_choice") {
        remove_if(choice, "disable_parallel_tool_use", |v| v == false);
    }
    remove_if(map, "tool_choice", |v| v == &json!({"type": "auto"}));
    if let Some(system) = map.get_mut("system") {
        parts(system);
    }
    if only_empty_text(map.get("system")) {
        map.remove("system");
    }
    if let Some(Value::Array(tools)) = map.get_mut("tools") {
        for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
            remove_if(tool, "type", |v| v == "custom");
        }
    }
    if let Some(Value::Array(messages)) = map.get_mut("messages") {
        for message in messages.iter_mut() {
            if let Some(content) = message.get_mut("content") {
                canonical_anthropic_blocks(content);
            }
        }
    }
}

fn canonical_anthropic_response(doc: &mut Value) {
    let Some(map) = doc.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(usage)) = map.get_mut("usage") {
        remove_if(usage, "cache_creation_input_tokens", is_zero);
        remove_if(usage, "cache_read_input_tokens", is_zero);
        remove_if(usage, "service_tier", |v| v == "standard");
        drop_zero_counters(usage, "cache_creation");
        drop_zero_counters(usage, "server_tool_use");
    }
}

/// Joins adjacent plain text blocks of a response's `content`.
fn merge_text_blocks(doc: &mut Value) {
    let Some(Value::Array(content)) = doc.get_mut("content") else {
        return;
    };
    let plain = |b: &Value| {
        b.as_object()
            .is_some_and(|o| o.len() == 2 && o.get("type").is_some_and(|t| t == "text"))
    };
    let mut merged: Vec<Value> = Vec::with_capacity(content.len());
    for block in content.drain(..) {
        match merged.last_mut() {
            Some(last) if plain(last) && plain(&block) => {
                let joined = format!(
                    "{}{}",
                    last["text"].as_str().unwrap_or(""),
                    block["text"].as_str().unwrap_or("")
                );
                last["text"] = Value::String(joined);
            }
            _ => merged.push(block),
        }
    }
    *content = merged;
}

/// Removes every masked member and element.
fn apply_masks(value: &mut Value, masks: &MaskTrie) {
    match value {
        Value::Object(map) => {
            for (key, child) in &masks.children {
                if child.here.is_some() {
                    map.remove(key);
                } else if let Some(node) = map.get_mut(key) {
                    apply_masks(node, child);
                }
            }
        }
        Value::Array(items) => {
            for index in (0..items.len()).rev() {
                match masks.child(&index.to_string()) {
                    Some(child) if child.here.is_some() => {
                        items.remove(index);
                    }
                    Some(child) => apply_masks(&mut items[index], child),
                    None => {}
                }
            }
        }
        _ => {}
    }
}

/// Tool names as the client knows them: restoring shortened names is the point of a response
/// leg, so `files_read_d0376a62` and `files.read` are the same name here.
fn restore_tool_names(value: &mut Value, names: &a2o::convert::ToolNames) {
    match value {
        Value::Object(map) => {
            for (key, node) in map.iter_mut() {
                match node {
                    Value::String(name) if key == "name" => *name = names.restore(name).to_owned(),
                    _ => restore_tool_names(node, names),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| restore_tool_names(v, names)),
        _ => {}
    }
}

fn client_tool_names(request: &Value) -> a2o::convert::ToolNames {
    let names: Vec<&str> = request["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| {
                    t["name"]
                        .as_str()
                        .or_else(|| t["function"]["name"].as_str())
                })
                .collect()
        })
        .unwrap_or_default();
    a2o::convert::ToolNames::from_names(names)
}

fn mask_usage_counters(doc: &mut Value) {
    if let Some(usage) = doc.get_mut("usage") {
        *usage = json!("<usage masked>");
    }
}

// ---------------------------------------------------------------------------------------------
// Masks

fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Loss pointers as a trie over reference tokens.
#[derive(Default, Debug)]
struct MaskTrie {
    here: Option<LossKind>,
    children: BTreeMap<String, MaskTrie>,
}

impl MaskTrie {
    fn insert(&mut self, tokens: &[String], kind: LossKind) {
        match tokens.split_first() {
            None => {
                // An approximation or synthesis of a node says more than a drop: the node is
                // still there (changed), so it may explain an element of the result.
                if self.here != Some(LossKind::Approximated) {
                    self.here = Some(kind);
                }
            }
            Some((first, rest)) => self
                .children
                .entry(first.clone())
                .or_default()
                .insert(rest, kind),
        }
    }

    fn child(&self, token: &str) -> Option<&MaskTrie> {
        self.children.get(token)
    }

    fn touches_usage(&self) -> bool {
        self.child("usage").is_some()
    }

    /// Values of masked, not dropped, array elements of `doc`: they may reappear elsewhere in
    /// the result (moved).
    fn collect_moved(&self, doc: &Value, pool: &mut Vec<Value>) {
        for (token, child) in &self.children {
            let node = match doc {
                Value::Object(map) => map.get(token),
                Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            let Some(node) = node else {
                continue;
            };
            if matches!(doc, Value::Array(_)) && child.here.is_some_and(|k| k != LossKind::Dropped)
            {
                pool.push(node.clone());
            }
            child.collect_moved(node, pool);
        }
    }
}

/// Second-leg losses point into the intermediate document. Returns the pointers of the
/// original they stand for.
fn carry_back(
    original_dialect: Dialect,
    pointer: &str,
    intermediate: &Value,
    original: &Value,
) -> Vec<Vec<String>> {
    let tokens = pointer_tokens(pointer);
    let first = tokens.first().map(String::as_str).unwrap_or("");
    let fields: &[&str] = match (original_dialect, first) {
        // The intermediate is Anthropic; the original is OpenAI.
        (Dialect::OpenAi, "thinking") | (Dialect::OpenAi, "output_config")
            if tokens.get(1).map(String::as_str) != Some("format") =>
        {
            &["reasoning_effort"]
        }
        (Dialect::OpenAi, "output_config") | (Dialect::OpenAi, "output_format") => {
            &["response_format"]
        }
        (Dialect::OpenAi, "metadata") => &["safety_identifier", "metadata"],
        (Dialect::OpenAi, "stop_sequences") => &["stop"],
        (Dialect::OpenAi, "tool_choice") => &["tool_choice", "parallel_tool_calls"],
        // The intermediate is OpenAI; the original is Anthropic.
        (Dialect::Anthropic, "reasoning_effort") => &["thinking", "output_config"],
        (Dialect::Anthropic, "response_format") => &["output_config", "output_format"],
        (Dialect::Anthropic, "safety_identifier" | "user") => &["metadata"],
        (Dialect::Anthropic, "max_completion_tokens") => &["max_tokens"],
        (Dialect::Anthropic, "stop") => &["stop_sequences"],
        (Dialect::Anthropic, "parallel_tool_calls") => &["tool_choice"],
        (Dialect::OpenAi, "stop_sequence" | "stop_reason") => &[
            "choices/0/finish_reason",
            "choices/0/stop_reason",
            "choices/0/matched_stop",
        ],
        (_, "messages" | "system" | "tools" | "choices" | "content") => &[],
        _ => return vec![tokens],
    };
    if !fields.is_empty() {
        return fields
            .iter()
            .map(|f| f.split('/').map(str::to_owned).collect())
            .collect();
    }
    // Inside the conversation indices differ between the dialects: mask every node of the
    // original equal to the lost one, under the same key.
    let lost = intermediate
        .pointer(pointer)
        .cloned()
        .unwrap_or(Value::Null);
    let key = tokens.last().cloned().unwrap_or_default();
    let mut found = Vec::new();
    find_equal(original, &lost, &key, &mut Vec::new(), &mut found);
    found
}

fn find_equal(
    node: &Value,
    lost: &Value,
    key: &str,
    path: &mut Vec<String>,
    found: &mut Vec<Vec<String>>,
) {
    let by_index = key.parse::<usize>().is_ok();
    let same_place = path
        .last()
        .is_some_and(|last| last == key || (by_index && last.parse::<usize>().is_ok()));
    // A lost text may have been a plain string on one side and a text block on the other.
    let same_text = lost.is_string() && node.get("text").is_some_and(|t| t == lost);
    if (same_place && loosely_equal(node, lost)) || same_text {
        found.push(path.clone());
    }
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                find_equal(v, lost, key, path, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(i.to_string());
                find_equal(v, lost, key, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Equality across dialects for carried-back losses: text parts equal their text.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    fn text_of(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => items
                .iter()
                .map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(|t| t.concat()),
            Value::Object(o) => match o.get("text") {
                Some(Value::String(text)) => Some(text.clone()),
                _ => o.get("content").and_then(text_of),
            },
            _ => None,
        }
    }
    values_equal(a, b) || matches!((text_of(a), text_of(b)), (Some(x), Some(y)) if x == y)
}

// ---------------------------------------------------------------------------------------------
// Comparison

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

struct Comparison {
    /// Masked original elements that may reappear elsewhere (moved); each explains one extra
    /// element of the result.
    pool: Vec<Value>,
}

impl Comparison {
    fn matches(
        &mut self,
        original: &Value,
        result: &Value,
        masks: Option<&MaskTrie>,
        at: &str,
    ) -> Result<(), String> {
        if masks.is_some_and(|m| m.here.is_some()) {
            return Ok(());
        }
        match (original, result) {
            (Value::Object(o), Value::Object(r)) => {
                for (key, value) in o {
                    let child = masks.and_then(|m| m.child(key));
                    if child.is_some_and(|c| c.here.is_some()) {
                        continue;
                    }
                    let path = format!("{at}/{key}");
                    match (r.get(key), value) {
                        (Some(other), _) => self.matches(value, other, child, &path)?,
                        // A list or object whose every member was lost comes back absent.
                        (None, Value::Array(_)) => self.matches(value, &json!([]), child, &path)?,
                        (None, Value::Object(_)) => {
                            self.matches(value, &json!({}), child, &path)?
                        }
                        (None, _) => {
                            return Err(format!("{path}: missing from the result ({value})"))
                        }
                    }
                }
                for (key, value) in r {
                    let masked = masks
                        .and_then(|m| m.child(key))
                        .is_some_and(|c| c.here.is_some());
                    if !o.contains_key(key) && !masked {
                        return Err(format!("{at}/{key}: added by the round trip ({value})"));
                    }
                }
                Ok(())
            }
            (Value::Array(o), Value::Array(r)) => self.matches_array(o, r, masks, at),
            _ if values_equal(original, result) => Ok(()),
            _ => Err(format!("{at}: {original} came back as {result}")),
        }
    }

    /// The original's unmasked elements must appear in the result in order; every other
    /// element of the result must be explained by a masked element.
    fn matches_array(
        &mut self,
        original: &[Value],
        result: &[Value],
        masks: Option<&MaskTrie>,
        at: &str,
    ) -> Result<(), String> {
        let element_mask = |i: usize| masks.and_then(|m| m.child(&i.to_string()));
        let mut changed_in_place = (0..original.len())
            .filter(|&i| {
                element_mask(i)
                    .and_then(|m| m.here)
                    .is_some_and(|k| k != LossKind::Dropped)
            })
            .count();
        let result: Vec<&Value> = result.iter().filter(|v| !is_gap(v)).collect();
        let mut next = 0;
        let mut extras = Vec::new();
        for (i, item) in original.iter().enumerate() {
            if is_gap(item) {
                continue;
            }
            let mask = element_mask(i);
            if mask.is_some_and(|m| m.here.is_some()) {
                continue;
            }
            let path = format!("{at}/{i}");
            let mut first_error = None;
            loop {
                let Some(&candidate) = result.get(next) else {
                    return Err(first_error
                        .unwrap_or_else(|| format!("{path}: missing from the result ({item})")));
                };
                next += 1;
                match self.matches(item, candidate, mask, &path) {
                    Ok(()) => break,
                    Err(err) => {
                        first_error.get_or_insert(err);
                        extras.push(candidate.clone());
                    }
                }
            }
        }
        extras.extend(result[next..].iter().map(|v| (*v).clone()));
        for extra in extras {
            if let Some(at) = self.pool.iter().position(|m| loosely_equal(m, &extra)) {
                self.pool.swap_remove(at);
            } else if changed_in_place > 0 {
                changed_in_place -= 1;
            } else {
                return Err(format!(
                    "{at}: the result has an unexplained element {extra}"
                ));
            }
        }
        Ok(())
    }
}

/// The checker itself: a round trip that changed something no loss mentions must fail.
#[test]
fn the_checker_catches_unreported_changes() {
    let original = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be brief.",
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": 1}},
                {"type": "tool_use", "id": "toolu_2", "name": "t", "input": {"b": 2}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "one"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "two"}
            ]}
        ]
    });
    let case = Case {
        name: "self-test".to_owned(),
        kind: DocumentKind::Request,
        from: Dialect::Anthropic,
        original: original.clone(),
        leg1_request: None,
        leg2_request: None,
        status: None,
    };
    let first = convert(case.kind, case.from, &original, None, None).expect("first leg");
    let second = convert(case.kind, Dialect::OpenAi, &first.doc, None, None).expect("way back");
    compare_round_trip(&case, &first, &second).expect("the faithful round trip passes");

    type Tamper = fn(&mut Value);
    let tampered: [(&str, Tamper); 5] = [
        ("a changed text", |v| {
            v["messages"][2]["content"][1]["content"] = json!("TWO")
        }),
        ("a removed member", |v| {
            v.as_object_mut().map(|m| m.remove("tools"));
        }),
        ("an added member", |v| v["temperature"] = json!(0.5)),
        ("swapped tool calls", |v| {
            if let Some(blocks) = v["messages"][1]["content"].as_array_mut() {
                blocks.swap(1, 2);
            }
        }),
        ("a dropped message", |v| {
            if let Some(messages) = v["messages"].as_array_mut() {
                messages.remove(0);
            }
        }),
    ];
    for (what, tamper) in tampered {
        let mut bad = Leg {
            doc: second.doc.clone(),
            losses: second.losses.clone(),
            status: second.status,
        };
        tamper(&mut bad.doc);
        assert!(
            compare_round_trip(&case, &first, &bad).is_err(),
            "{what} went unnoticed"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Targeted exact round trips

fn there_and_back(kind: DocumentKind, from: Dialect, doc: &Value) -> (Value, Vec<Loss>) {
    let first = convert(kind, from, doc, None, None).expect("first leg");
    let second = convert(kind, from.other(), &first.doc, None, first.status).expect("way back");
    let mut losses = first.losses;
    losses.extend(second.losses);
    (second.doc, losses)
}

#[test]
fn thinking_signatures_and_redacted_thinking_survive_byte_for_byte() {
    // Signatures are opaque base64 that Anthropic verifies: any change breaks the next turn.
    let history = json!([
        {"type": "thinking", "thinking": "Step 1: \"quote\" \\ back\\slash\n\tunicode é 🦀", "signature": "EqQBCkYIBxgCKkB+/=="},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP+/="},
        {"type": "thinking", "thinking": "", "signature": "U2lnbmF0dXJlT25seQ=="},
        {"type": "text", "text": "Answer."}
    ]);
    let request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "Think."},
            {"role": "assistant", "content": history},
            {"role": "user", "content": "Again."}
        ]
    });
    let (back, _) = there_and_back(DocumentKind::Request, Dialect::Anthropic, &request);
    assert_eq!(back["messages"][1]["content"], history);

    let response = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": history, "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 2}
    });
    let (back, _) = there_and_back(DocumentKind::Response, Dialect::Anthropic, &response);
    assert_eq!(back["content"], history);

    // And the OpenAI carrier: `thinking_blocks` entries come back verbatim.
    let blocks = json!([
        {"type": "thinking", "thinking": "why", "signature": "c2ln+/="},
        {"type": "redacted_thinking", "data": "cmVkYWN0ZWQ="}
    ]);
    let openai = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null, "message": {
            "role": "assistant", "content": "ok", "reasoning_content": "why", "thinking_blocks": blocks
        }}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    });
    let (back, _) = there_and_back(DocumentKind::Response, Dialect::OpenAi, &openai);
    assert_eq!(back["choices"][0]["message"]["thinking_blocks"], blocks);
    assert_eq!(back["choices"][0]["message"]["reasoning_content"], "why");
}

/// Accumulates an Anthropic stream into its content blocks (what an SDK's `get_final_message`
/// would hold).
fn accumulate_anthropic(sse: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(sse);
    let mut blocks: Vec<Value> = Vec::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        let index = event["index"].as_u64().unwrap_or(0) as usize;
        match event["type"].as_str() {
            Some("content_block_start") => blocks.push(event["content_block"].clone()),
            Some("content_block_delta") => {
                let block = &mut blocks[index];
                let delta = &event["delta"];
                let (field, piece) = match delta["type"].as_str() {
                    Some("text_delta") => ("text", &delta["text"]),
                    Some("thinking_delta") => ("thinking", &delta["thinking"]),
                    Some("signature_delta") => ("signature", &delta["signature"]),
                    Some("input_json_delta") => ("partial_json", &delta["partial_json"]),
                    _ => continue,
                };
                let joined = format!(
                    "{}{}",
                    block[field].as_str().unwrap_or(""),
                    piece.as_str().unwrap_or("")
                );
                block[field] = Value::String(joined);
            }
            _ => {}
        }
    }
    // A tool's input is the JSON its fragments spell, or the start's `input` when none came.
    for block in &mut blocks {
        if let Some(Value::String(partial)) =
            block.as_object_mut().and_then(|b| b.remove("partial_json"))
        {
            if !partial.is_empty() {
                block["input"] = serde_json::from_str(&partial).unwrap_or(Value::String(partial));
            }
        }
    }
    blocks
}

fn convert_stream(from: Dialect, input: &[u8]) -> Vec<u8> {
    let mut ctx = a2o::convert::ResponseContext {
        created: Some(1),
        ..Default::default()
    };
    ctx.include_usage = true;
    let mut converter = StreamConverter::new(from, ctx);
    let (mut out, mut losses) = (Vec::new(), Losses::new());
    converter.push(input, &mut out, &mut losses);
    converter.finish(&mut out, &mut losses);
    out
}

#[test]
fn streamed_signatures_and_redacted_thinking_survive_both_machines() {
    let path = testdata()
        .join("stream/anthropic-to-openai/hand-pitfall-06-signature-and-redacted-thinking.in.sse");
    let original = fs::read(&path).expect("transcript");
    let openai = convert_stream(Dialect::Anthropic, &original);
    let back = convert_stream(Dialect::OpenAi, &openai);
    assert_eq!(accumulate_anthropic(&back), accumulate_anthropic(&original));
    for corpus in ["stream-redacted-thinking", "stream-thinking-then-tool-use"] {
        let path = testdata().join(format!("stream/anthropic-to-openai/{corpus}.in.sse"));
        let original = fs::read(&path).expect("transcript");
        let back = convert_stream(
            Dialect::OpenAi,
            &convert_stream(Dialect::Anthropic, &original),
        );
        let strip = |blocks: Vec<Value>| -> Vec<Value> {
            // Fields a2o does not carry (and reports), like `caller` on tool_use blocks.
            blocks
                .into_iter()
                .map(|mut b| {
                    if let Some(o) = b.as_object_mut() {
                        o.remove("caller");
                    }
                    b
                })
                .collect()
        };
        assert_eq!(
            strip(accumulate_anthropic(&back)),
            strip(accumulate_anthropic(&original)),
            "{corpus}"
        );
    }
}

#[test]
fn tool_ids_come_back_unchanged() {
    let request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100,
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "t", "input": {"a": 1}},
                {"type": "tool_use", "id": "toolu_01B-with_odd.chars", "name": "t", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "1"},
                {"type": "tool_result", "tool_use_id": "toolu_01B-with_odd.chars", "content": "2"}
            ]}
        ]
    });
    let (back, _) = there_and_back(DocumentKind::Request, Dialect::Anthropic, &request);
    let ids = |doc: &Value, message: usize, field: &str| -> Vec<Value> {
        doc["messages"][message]["content"]
            .as_array()
            .map(|blocks| blocks.iter().map(|b| b[field].clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(ids(&back, 1, "id"), ids(&request, 1, "id"));
    assert_eq!(
        ids(&back, 2, "tool_use_id"),
        ids(&request, 2, "tool_use_id")
    );

    let response = json!({
        "id": "chatcmpl-xyz", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
            "role": "assistant", "content": null, "tool_calls": [
                {"id": "call_abc123", "type": "function", "function": {"name": "t", "arguments": "{}"}},
                {"id": "call_DEF456", "type": "function", "function": {"name": "t", "arguments": "{\"x\":1}"}}
            ]
        }}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    });
    let (back, _) = there_and_back(DocumentKind::Response, Dialect::OpenAi, &response);
    assert_eq!(back["id"], "chatcmpl-xyz");
    assert_eq!(
        back["choices"][0]["message"]["tool_calls"][0]["id"],
        "call_abc123"
    );
    assert_eq!(
        back["choices"][0]["message"]["tool_calls"][1]["id"],
        "call_DEF456"
    );
}

#[test]
fn usage_with_cache_tokens_comes_back_exactly() {
    let openai = json!({
        "id": "chatcmpl-u", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": "x"}}],
        "usage": {"prompt_tokens": 5025, "completion_tokens": 70, "total_tokens": 5095,
                  "prompt_tokens_details": {"cached_tokens": 4000}}
    });
    let (back, losses) = there_and_back(DocumentKind::Response, Dialect::OpenAi, &openai);
    assert_eq!(back["usage"], openai["usage"], "{losses:?}");
    assert!(losses.is_empty(), "{losses:?}");

    // Cache reads survive exactly; cache writes have no OpenAI count, so they come back inside
    // `input_tokens` (and that is reported).
    let anthropic = json!({
        "id": "msg_u", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 25, "cache_read_input_tokens": 4000, "output_tokens": 7}
    });
    let (back, _) = there_and_back(DocumentKind::Response, Dialect::Anthropic, &anthropic);
    assert_eq!(back["usage"]["input_tokens"], 25);
    assert_eq!(back["usage"]["cache_read_input_tokens"], 4000);
    assert_eq!(back["usage"]["output_tokens"], 7);

    let with_writes = json!({
        "id": "msg_w", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 25, "cache_creation_input_tokens": 1000,
                  "cache_read_input_tokens": 4000, "output_tokens": 7}
    });
    let (back, losses) = there_and_back(DocumentKind::Response, Dialect::Anthropic, &with_writes);
    assert_eq!(back["usage"]["input_tokens"], 1025);
    assert_eq!(back["usage"]["cache_read_input_tokens"], 4000);
    assert!(
        losses
            .iter()
            .any(|l| l.path == "/usage/cache_creation_input_tokens"),
        "{losses:?}"
    );
}

#[test]
fn stop_reasons_come_back_exactly() {
    for stop_reason in ["end_turn", "max_tokens", "tool_use", "refusal"] {
        let content = if stop_reason == "tool_use" {
            json!([{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}])
        } else {
            json!([{"type": "text", "text": "x"}])
        };
        let response = json!({
            "id": "msg_s", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 1}
        });
        let (back, losses) = there_and_back(DocumentKind::Response, Dialect::Anthropic, &response);
        assert_eq!(back["stop_reason"], stop_reason, "{losses:?}");
        assert!(losses.is_empty(), "{stop_reason}: {losses:?}");
    }
    for finish_reason in ["stop", "length", "tool_calls", "content_filter"] {
        let message = if finish_reason == "tool_calls" {
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}]})
        } else {
            json!({"role": "assistant", "content": "x"})
        };
        let response = json!({
            "id": "chatcmpl-s", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
            "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": null, "message": message}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        });
        let (back, losses) = there_and_back(DocumentKind::Response, Dialect::OpenAi, &response);
        assert_eq!(
            back["choices"][0]["finish_reason"], finish_reason,
            "{losses:?}"
        );
        assert!(losses.is_empty(), "{finish_reason}: {losses:?}");
    }
    // The one-way mappings: OpenAI cannot say which sequence matched, and `stop` with tool
    // calls means `tool_use`.
    let response = json!({
        "id": "msg_q", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "x"}], "stop_reason": "stop_sequence",
        "stop_sequence": "END", "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    let (back, losses) = there_and_back(DocumentKind::Response, Dialect::Anthropic, &response);
    assert_eq!(back["stop_reason"], "end_turn");
    assert!(
        losses.iter().any(|l| l.path == "/stop_sequence"),
        "{losses:?}"
    );
}
