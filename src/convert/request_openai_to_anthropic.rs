//! OpenAI Chat Completions request → Anthropic Messages request (`openai_to_anthropic::request`).
//!
//! Owns the request-side decisions for this direction: system and developer messages are
//! hoisted into the top-level `system`; empty text (which Anthropic rejects) is removed and the
//! conversation is re-merged into strict user/assistant alternation with `tool_result` blocks
//! first in each user turn; tool calls become `tool_use` blocks (never dropped, even with
//! unparsable arguments); `reasoning_effort` becomes a thinking budget that respects
//! `max_tokens`, and sampling settings that thinking forbids are resolved here rather than
//! forwarded. Everything that does not survive is recorded in [`Losses`].

use serde_json::{json, Map, Value};

use super::{vocab, ConvertError, Losses, RequestOptions, TOOL_ERROR_PREFIX};
use crate::protocol::{anthropic, openai, Extra};

/// Key under which unparsable tool-call arguments are carried, so the call itself survives.
pub const RAW_ARGUMENTS_KEY: &str = "_a2o_raw_arguments";

/// Anthropic's lowest `top_p` while thinking is enabled.
const MIN_TOP_P_WITH_THINKING: f64 = 0.95;

/// Longest `metadata.user_id` Anthropic accepts.
const MAX_USER_ID_LEN: usize = 256;

/// Longest document `title` Anthropic accepts.
const MAX_TITLE_LEN: usize = 500;

/// Converts an OpenAI Chat Completions request into an Anthropic Messages request.
pub fn request(
    req: openai::ChatRequest,
    opts: &RequestOptions,
    losses: &mut Losses,
) -> Result<anthropic::MessagesRequest, ConvertError> {
    let openai::ChatRequest {
        model,
        messages,
        max_tokens,
        max_completion_tokens,
        temperature,
        top_p,
        n,
        stream,
        // Anthropic streams always end with usage; the stream converter reads include_usage
        // from the ResponseContext, so nothing needs forwarding.
        stream_options: _,
        stop,
        tools,
        tool_choice,
        parallel_tool_calls,
        reasoning_effort,
        response_format,
        user,
        safety_identifier,
        prompt_cache_key,
        metadata,
        extra,
    } = req;

    let Conversation { system, messages } = conversation(messages, losses)?;
    let max_tokens = max_tokens_for(max_tokens, max_completion_tokens, opts, losses);
    let tools = tools
        .map(|tools| convert_tools(tools, losses))
        .filter(|tools| !tools.is_empty());
    let tool_choice =
        convert_tool_choice(tool_choice, parallel_tool_calls, tools.is_some(), losses)?;
    let mut thinking = thinking_for(reasoning_effort, max_tokens, losses);
    if thinking.is_some() && forces_tool_use(tool_choice.as_ref()) {
        // Anthropic rejects thinking together with a forced tool; the client's tool logic
        // depends on the forced call, while thinking only changes quality.
        thinking = None;
        losses.dropped(
            "/reasoning_effort",
            "Anthropic does not allow thinking while `tool_choice` forces a tool; kept the tool choice",
        );
    }
    if thinking.is_some() && messages.last().is_some_and(|m| m.role == "assistant") {
        // Anthropic cannot continue a prefilled assistant turn while thinking; the prefill is
        // content the client wrote, so it wins.
        thinking = None;
        losses.dropped(
            "/reasoning_effort",
            "Anthropic does not allow thinking when the last message is a prefilled assistant turn",
        );
    }
    if thinking.is_some() && unsigned_tool_turn_pending(&messages) {
        thinking = None;
        losses.dropped(
            "/reasoning_effort",
            "Anthropic requires the assistant turn whose tool results are being sent to start with \
             its thinking block, and the client did not keep it (`thinking_blocks`)",
        );
    }
    let (temperature, top_p) = sampling(temperature, top_p, thinking.is_some(), losses);
    let output_config = response_format
        .and_then(|format| output_format(format, losses))
        .map(|format| anthropic::OutputConfig {
            effort: None,
            format: Some(format),
            extra: Map::new(),
        });
    let metadata_out = user_metadata(user, safety_identifier, losses);

    if n.is_some_and(|n| n > 1) {
        losses.dropped(
            "/n",
            "Anthropic returns one choice per request; only one was asked for",
        );
    }
    if prompt_cache_key.is_some() {
        losses.dropped(
            "/prompt_cache_key",
            "Anthropic caches by `cache_control` breakpoints, not by key",
        );
    }
    if metadata.as_ref().is_some_and(|m| !m.is_null()) {
        losses.dropped(
            "/metadata",
            "OpenAI `metadata` is stored by OpenAI; Anthropic has no equivalent",
        );
    }
    losses.dropped_extra("", &extra, "Anthropic");

    Ok(anthropic::MessagesRequest {
        model,
        messages,
        max_tokens: Some(max_tokens),
        system,
        metadata: metadata_out,
        stop_sequences: stop.map(crate::protocol::OneOrMany::into_vec),
        stream,
        temperature,
        top_p,
        top_k: None,
        tools,
        tool_choice,
        thinking,
        output_config,
        output_format: None,
        extra: Map::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Messages

struct Conversation {
    system: Option<anthropic::System>,
    messages: Vec<anthropic::Message>,
}

/// One Anthropic block and the JSON pointer of what it came from, for loss reports made after
/// turns have been merged.
struct SourcedBlock {
    block: anthropic::ContentBlock,
    source: String,
}

/// An Anthropic turn being assembled from one or more OpenAI messages.
struct Turn {
    role: &'static str,
    blocks: Vec<SourcedBlock>,
    /// The turn is a single user message whose content was a plain string; it stays a string.
    plain: bool,
}

/// Where converted content ends up; decides which block types Anthropic accepts there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    System,
    User,
    Assistant,
    ToolResult,
}

impl Place {
    fn holds_media(self) -> bool {
        matches!(self, Place::User | Place::ToolResult)
    }

    fn describe(self) -> &'static str {
        match self {
            Place::System => "the system prompt",
            Place::User => "user turns",
            Place::Assistant => "assistant turns",
            Place::ToolResult => "tool results",
        }
    }
}

fn conversation(
    messages: Vec<openai::Message>,
    losses: &mut Losses,
) -> Result<Conversation, ConvertError> {
    let mut system: Vec<anthropic::ContentBlock> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let mut seen_turn = false;

    for (i, message) in messages.into_iter().enumerate() {
        let base = format!("/messages/{i}");
        match message {
            openai::Message::System(m) | openai::Message::Developer(m) => {
                if seen_turn {
                    losses.approximated(
                        base.as_str(),
                        "moved into the top-level `system`: Anthropic has no system messages between turns",
                    );
                }
                system.extend(instruction_blocks(m, i, losses)?);
            }
            openai::Message::User(m) => {
                seen_turn = true;
                let (blocks, plain) = user_blocks(m, i, losses)?;
                push_turn(&mut turns, "user", blocks, plain, &base, losses);
            }
            openai::Message::Assistant(m) => {
                seen_turn = true;
                let blocks = assistant_blocks(m, i, losses)?;
                push_turn(&mut turns, "assistant", blocks, false, &base, losses);
            }
            openai::Message::Tool(m) => {
                seen_turn = true;
                let block = tool_result_block(m, i, losses)?;
                push_turn(&mut turns, "user", vec![block], false, &base, losses);
            }
            openai::Message::Unknown(value) => {
                let message = match value.get("role") {
                    Some(Value::String(role)) => format!(
                        "role `{role}` has no Anthropic equivalent; use system, developer, user, assistant or tool"
                    ),
                    Some(_) => "`role` must be a string: system, developer, user, assistant or tool".to_owned(),
                    None => "missing `role`; use system, developer, user, assistant or tool".to_owned(),
                };
                return Err(ConvertError::new(format!("messages[{i}].role"), message));
            }
        }
    }

    for turn in &mut turns {
        if turn.role == "user" {
            put_tool_results_first(turn, losses);
        }
    }
    trim_final_assistant_text(&mut turns, losses);
    if turns.is_empty() {
        return Err(ConvertError::new(
            "messages",
            "no message with content is left (empty text is removed, and system messages go to `system`); \
             send at least one user message with non-empty content",
        ));
    }

    Ok(Conversation {
        system: system_from_blocks(system),
        messages: turns.into_iter().map(turn_into_message).collect(),
    })
}

/// Appends a converted message, merging it into the previous turn when the roles match
/// (Anthropic wants strict alternation, and merges such turns itself anyway).
fn push_turn(
    turns: &mut Vec<Turn>,
    role: &'static str,
    blocks: Vec<SourcedBlock>,
    plain: bool,
    base: &str,
    losses: &mut Losses,
) {
    if blocks.is_empty() {
        losses.dropped(
            base,
            "the message has no content Anthropic accepts, so it was left out",
        );
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => {
            last.blocks.extend(blocks);
            last.plain = false;
        }
        _ => turns.push(Turn {
            role,
            blocks,
            plain,
        }),
    }
}

/// Anthropic requires the `tool_result` blocks of a user turn to come before anything else.
fn put_tool_results_first(turn: &mut Turn, losses: &mut Losses) {
    let is_result = |b: &SourcedBlock| matches!(b.block, anthropic::ContentBlock::ToolResult(_));
    let Some(last_result) = turn.blocks.iter().rposition(is_result) else {
        return;
    };
    if turn.blocks[..last_result].iter().all(is_result) {
        return;
    }
    for block in turn.blocks[..last_result].iter().filter(|b| !is_result(b)) {
        losses.approximated(
            block.source.as_str(),
            "moved after the tool results: Anthropic requires `tool_result` blocks first in a user turn",
        );
    }
    let (results, others): (Vec<_>, Vec<_>) = std::mem::take(&mut turn.blocks)
        .into_iter()
        .partition(is_result);
    turn.blocks = results;
    turn.blocks.extend(others);
}

/// Anthropic rejects a final (prefill) assistant turn that ends in whitespace.
fn trim_final_assistant_text(turns: &mut [Turn], losses: &mut Losses) {
    let Some(turn) = turns.last_mut() else { return };
    if turn.role != "assistant" {
        return;
    }
    let Some(last) = turn.blocks.last_mut() else {
        return;
    };
    let anthropic::ContentBlock::Text(text) = &mut last.block else {
        return;
    };
    let trimmed_len = text.text.trim_end().len();
    if trimmed_len == text.text.len() {
        return;
    }
    text.text.truncate(trimmed_len);
    losses.approximated(
        last.source.as_str(),
        "trailing whitespace removed: Anthropic rejects a final assistant turn that ends in whitespace",
    );
}

fn turn_into_message(turn: Turn) -> anthropic::Message {
    let Turn {
        role,
        mut blocks,
        plain,
    } = turn;
    let content = match blocks.as_slice() {
        [only] if plain && is_plain_text(&only.block) => match blocks.pop().map(|b| b.block) {
            Some(anthropic::ContentBlock::Text(text)) => anthropic::Content::Text(text.text),
            Some(other) => anthropic::Content::Blocks(vec![other]),
            None => anthropic::Content::Blocks(Vec::new()),
        },
        _ => anthropic::Content::Blocks(blocks.into_iter().map(|b| b.block).collect()),
    };
    anthropic::Message {
        role: role.to_owned(),
        content,
        extra: Map::new(),
    }
}

fn is_plain_text(block: &anthropic::ContentBlock) -> bool {
    matches!(block, anthropic::ContentBlock::Text(t)
        if t.cache_control.is_none() && t.citations.is_none() && t.extra.is_empty())
}

fn system_from_blocks(mut blocks: Vec<anthropic::ContentBlock>) -> Option<anthropic::System> {
    match blocks.as_slice() {
        [] => None,
        [only] if is_plain_text(only) => match blocks.pop() {
            Some(anthropic::ContentBlock::Text(text)) => Some(anthropic::System::Text(text.text)),
            _ => None,
        },
        _ => Some(anthropic::System::Blocks(blocks)),
    }
}

fn instruction_blocks(
    message: openai::InstructionMessage,
    i: usize,
    losses: &mut Losses,
) -> Result<Vec<anthropic::ContentBlock>, ConvertError> {
    let openai::InstructionMessage {
        content,
        name,
        extra,
    } = message;
    let base = format!("/messages/{i}");
    let mut blocks: Vec<SourcedBlock> = content_blocks(content, Place::System, i, losses)?;
    report_name(name, &base, losses);
    apply_message_extra(extra, &mut blocks, &base, losses);
    Ok(blocks.into_iter().map(|b| b.block).collect())
}

fn user_blocks(
    message: openai::UserMessage,
    i: usize,
    losses: &mut Losses,
) -> Result<(Vec<SourcedBlock>, bool), ConvertError> {
    let openai::UserMessage {
        content,
        name,
        extra,
    } = message;
    let base = format!("/messages/{i}");
    let plain = matches!(content, openai::Content::Text(_));
    let mut blocks = content_blocks(content, Place::User, i, losses)?;
    report_name(name, &base, losses);
    apply_message_extra(extra, &mut blocks, &base, losses);
    Ok((blocks, plain))
}

fn assistant_blocks(
    message: openai::AssistantMessage,
    i: usize,
    losses: &mut Losses,
) -> Result<Vec<SourcedBlock>, ConvertError> {
    let openai::AssistantMessage {
        content,
        refusal,
        name,
        tool_calls,
        reasoning_content,
        thinking_blocks,
        mut extra,
    } = message;
    let base = format!("/messages/{i}");
    let reasoning_field = if reasoning_content.is_some() {
        "reasoning_content"
    } else {
        "reasoning"
    };
    let reasoning_content = super::take_reasoning(reasoning_content, &mut extra, &base, losses);
    let mut blocks = Vec::new();

    let has_thinking_blocks = thinking_blocks.as_ref().is_some_and(|b| !b.is_empty());
    for (k, value) in thinking_blocks.into_iter().flatten().enumerate() {
        let value = super::without_entry_index(value);
        let source = format!("{base}/thinking_blocks/{k}");
        match value.get("type").and_then(Value::as_str) {
            Some(kind @ ("thinking" | "redacted_thinking")) => {
                // Replayed verbatim, so it must already be a valid Anthropic block: a malformed
                // one (a redacted block without `data`) would go upstream as a request that
                // Anthropic, and a2o's own parser, reject.
                match serde_json::from_value::<anthropic::ContentBlock>(value.clone()) {
                    Ok(
                        anthropic::ContentBlock::Thinking(_)
                        | anthropic::ContentBlock::RedactedThinking(_),
                    ) => {}
                    Ok(_) => {
                        return Err(ConvertError::new(
                            format!("messages[{i}].thinking_blocks[{k}]"),
                            format!("not a valid Anthropic `{kind}` block"),
                        ))
                    }
                    Err(err) => {
                        return Err(ConvertError::new(
                            format!("messages[{i}].thinking_blocks[{k}]"),
                            format!("not a valid Anthropic `{kind}` block: {err}"),
                        ))
                    }
                }
                blocks.push(SourcedBlock {
                    block: verbatim_block(value),
                    source,
                });
            }
            _ => losses.dropped(
                source,
                "only `thinking` and `redacted_thinking` blocks can be replayed",
            ),
        }
    }
    if reasoning_content.as_ref().is_some_and(|r| !r.is_empty()) && !has_thinking_blocks {
        losses.dropped(
            format!("{base}/{reasoning_field}"),
            "reasoning without `thinking_blocks` has no signature, and Anthropic rejects unsigned thinking",
        );
    }
    if let Some(content) = content {
        blocks.extend(content_blocks(content, Place::Assistant, i, losses)?);
    }
    if let Some(refusal) = refusal.filter(|r| !r.trim().is_empty()) {
        let source = format!("{base}/refusal");
        losses.approximated(
            source.as_str(),
            "Anthropic has no refusal field; carried as text",
        );
        blocks.push(SourcedBlock {
            block: text_block(refusal, None),
            source,
        });
    }
    for (k, call) in tool_calls.into_iter().flatten().enumerate() {
        let source = format!("{base}/tool_calls/{k}");
        let block = tool_use_block(call, &source, losses);
        blocks.push(SourcedBlock { block, source });
    }
    report_name(name, &base, losses);
    apply_message_extra(extra, &mut blocks, &base, losses);
    Ok(blocks)
}

/// A replayed thinking block: parsed when that changes nothing, otherwise kept as raw JSON so
/// that the signature and every other byte reach Anthropic unchanged.
fn verbatim_block(value: Value) -> anthropic::ContentBlock {
    match serde_json::from_value::<anthropic::ContentBlock>(value.clone()) {
        Ok(block) if serde_json::to_value(&block).ok().as_ref() == Some(&value) => block,
        _ => anthropic::ContentBlock::Unknown(value),
    }
}

fn tool_use_block(
    call: openai::ToolCall,
    base: &str,
    losses: &mut Losses,
) -> anthropic::ContentBlock {
    let openai::ToolCall {
        id,
        kind,
        function,
        extra,
    } = call;
    let openai::FunctionCall {
        name,
        arguments,
        extra: function_extra,
    } = function;
    if kind != "function" {
        losses.approximated(
            format!("{base}/type"),
            format!("tool call type `{kind}` carried as a function call"),
        );
    }
    let name = target_name(name, &format!("{base}/function/name"), losses);
    let input = tool_input(arguments, &format!("{base}/function/arguments"), losses);
    losses.dropped_extra(&format!("{base}/function"), &function_extra, "Anthropic");
    let cache_control = take_cache_control(extra, base, losses);
    anthropic::ContentBlock::ToolUse(anthropic::ToolUseBlock {
        id,
        name,
        input,
        cache_control,
        extra: Map::new(),
    })
}

/// Tool arguments as a JSON object. Never fails: a call dropped for bad arguments would leave
/// its `tool_result` orphaned, which Anthropic rejects.
fn tool_input(arguments: String, path: &str, losses: &mut Losses) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(&arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            losses.approximated(
                path,
                format!("arguments are not a JSON object; carried as a string under `{RAW_ARGUMENTS_KEY}`"),
            );
            json!({ RAW_ARGUMENTS_KEY: arguments })
        }
    }
}

fn tool_result_block(
    message: openai::ToolMessage,
    i: usize,
    losses: &mut Losses,
) -> Result<SourcedBlock, ConvertError> {
    let openai::ToolMessage {
        content,
        tool_call_id,
        extra,
    } = message;
    let base = format!("/messages/{i}");
    let mut is_error = None;
    let content = match content {
        openai::Content::Text(text) => {
            let text = match text.strip_prefix(TOOL_ERROR_PREFIX) {
                Some(rest) => {
                    is_error = Some(true);
                    rest.to_owned()
                }
                None => text,
            };
            if text.trim().is_empty() {
                if !text.is_empty() {
                    losses.approximated(
                        format!("{base}/content"),
                        "whitespace-only text is rejected by Anthropic",
                    );
                }
                None
            } else {
                Some(anthropic::Content::Text(text))
            }
        }
        openai::Content::Parts(mut parts) => {
            if let Some(openai::ContentPart::Text(first)) = parts.first_mut() {
                if let Some(rest) = first.text.strip_prefix(TOOL_ERROR_PREFIX) {
                    first.text = rest.to_owned();
                    is_error = Some(true);
                }
            }
            let blocks =
                content_blocks(openai::Content::Parts(parts), Place::ToolResult, i, losses)?;
            (!blocks.is_empty())
                .then(|| anthropic::Content::Blocks(blocks.into_iter().map(|b| b.block).collect()))
        }
    };
    let cache_control = take_cache_control(extra, &base, losses);
    let block = anthropic::ContentBlock::ToolResult(anthropic::ToolResultBlock {
        tool_use_id: tool_call_id,
        content,
        is_error,
        cache_control,
        extra: Map::new(),
    });
    Ok(SourcedBlock {
        block,
        source: base,
    })
}

/// Converts message content. A plain string becomes one text block; empty and whitespace-only
/// text is removed, because Anthropic rejects it.
fn content_blocks(
    content: openai::Content,
    place: Place,
    i: usize,
    losses: &mut Losses,
) -> Result<Vec<SourcedBlock>, ConvertError> {
    let base = format!("/messages/{i}/content");
    match content {
        openai::Content::Text(text) => {
            if text.trim().is_empty() {
                // An empty string is how OpenAI clients say "no content"; only whitespace is text.
                if !text.is_empty() {
                    losses.approximated(
                        base.as_str(),
                        "whitespace-only text is rejected by Anthropic",
                    );
                }
                return Ok(Vec::new());
            }
            Ok(vec![SourcedBlock {
                block: text_block(text, None),
                source: base,
            }])
        }
        openai::Content::Parts(parts) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.into_iter().enumerate() {
                let source = format!("{base}/{j}");
                let error_path = format!("messages[{i}].content[{j}]");
                if let Some(block) = part_to_block(part, place, &source, &error_path, losses)? {
                    blocks.push(SourcedBlock { block, source });
                }
            }
            Ok(blocks)
        }
    }
}

fn part_to_block(
    part: openai::ContentPart,
    place: Place,
    base: &str,
    error_path: &str,
    losses: &mut Losses,
) -> Result<Option<anthropic::ContentBlock>, ConvertError> {
    match part {
        openai::ContentPart::Text(openai::TextPart { text, extra }) => {
            let cache_control = take_cache_control(extra, base, losses);
            if text.trim().is_empty() {
                losses.approximated(
                    base,
                    "empty or whitespace-only text is rejected by Anthropic",
                );
                return Ok(None);
            }
            Ok(Some(text_block(text, cache_control)))
        }
        openai::ContentPart::Refusal(openai::RefusalPart { refusal, extra }) => {
            let cache_control = take_cache_control(extra, base, losses);
            if refusal.trim().is_empty() {
                losses.approximated(base, "empty refusal text is rejected by Anthropic");
                return Ok(None);
            }
            losses.approximated(base, "Anthropic has no refusal part; carried as text");
            Ok(Some(text_block(refusal, cache_control)))
        }
        openai::ContentPart::ImageUrl(part) => {
            if !place.holds_media() {
                losses.dropped(
                    base,
                    format!("Anthropic {} cannot hold images", place.describe()),
                );
                return Ok(None);
            }
            image_block(part, base, error_path, losses).map(Some)
        }
        openai::ContentPart::File(part) => {
            if !place.holds_media() {
                losses.dropped(
                    base,
                    format!("Anthropic {} cannot hold files", place.describe()),
                );
                return Ok(None);
            }
            Ok(document_block(part, base, losses))
        }
        openai::ContentPart::Unknown(value) => {
            let message = match value.get("type").and_then(Value::as_str) {
                Some("input_audio") => {
                    "Anthropic has no audio input; remove the `input_audio` part or transcribe it to text".to_owned()
                }
                Some(kind) => format!(
                    "content part type `{kind}` has no Anthropic equivalent; use text, image_url or file parts"
                ),
                None => "content part without a `type`; use text, image_url or file parts".to_owned(),
            };
            Err(ConvertError::new(format!("{error_path}.type"), message))
        }
    }
}

fn text_block(text: String, cache_control: Option<Value>) -> anthropic::ContentBlock {
    anthropic::ContentBlock::Text(anthropic::TextBlock {
        text,
        citations: None,
        cache_control,
        extra: Map::new(),
    })
}

fn image_block(
    part: openai::ImageUrlPart,
    base: &str,
    error_path: &str,
    losses: &mut Losses,
) -> Result<anthropic::ContentBlock, ConvertError> {
    let openai::ImageUrlPart { image_url, extra } = part;
    let openai::ImageUrl {
        url,
        detail,
        extra: url_extra,
    } = image_url;
    let source = if let Some((media_type, data)) = parse_data_url(&url) {
        anthropic::Source::Base64(anthropic::Base64Source {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
            extra: Map::new(),
        })
    } else if is_http_url(&url) {
        anthropic::Source::Url(anthropic::UrlSource {
            url,
            extra: Map::new(),
        })
    } else {
        return Err(ConvertError::new(
            format!("{error_path}.image_url.url"),
            "the image URL is neither http(s) nor a base64 data URL (`data:<media type>;base64,<data>`); \
             send one of those",
        ));
    };
    if let Some(detail) = detail.filter(|d| d != "auto") {
        losses.dropped(
            format!("{base}/image_url/detail"),
            format!("Anthropic has no image detail setting (`{detail}`)"),
        );
    }
    losses.dropped_extra(&format!("{base}/image_url"), &url_extra, "Anthropic");
    let cache_control = take_cache_control(extra, base, losses);
    Ok(anthropic::ContentBlock::Image(anthropic::ImageBlock {
        source,
        cache_control,
        extra: Map::new(),
    }))
}

fn document_block(
    part: openai::FilePart,
    base: &str,
    losses: &mut Losses,
) -> Option<anthropic::ContentBlock> {
    let openai::FilePart { file, extra } = part;
    let openai::FileData {
        file_data,
        file_id,
        filename,
        extra: file_extra,
    } = file;
    let file_base = format!("{base}/file");
    losses.dropped_extra(&file_base, &file_extra, "Anthropic");
    let cache_control = take_cache_control(extra, base, losses);

    let Some(file_data) = file_data else {
        let reason = if file_id.is_some() {
            "`file_id` names a file stored by OpenAI, which Anthropic cannot read"
        } else {
            "the file part has neither `file_data` nor `file_id`"
        };
        losses.dropped(base, reason);
        return None;
    };
    if file_id.is_some() {
        losses.dropped(
            format!("{file_base}/file_id"),
            "`file_data` was used; the OpenAI file id means nothing to Anthropic",
        );
    }
    let (media_type, data) = match parse_data_url(&file_data) {
        Some((media_type, data)) => (media_type.to_owned(), data.to_owned()),
        // OpenAI also accepts bare base64; the file name is then the only hint at its type.
        None if filename
            .as_deref()
            .is_some_and(|f| f.to_ascii_lowercase().ends_with(".pdf")) =>
        {
            ("application/pdf".to_owned(), file_data)
        }
        None => {
            losses.dropped(
                base,
                "the file data is not a base64 data URL and its type is unknown",
            );
            return None;
        }
    };
    if media_type != "application/pdf" {
        losses.dropped(
            base,
            format!("Anthropic documents take PDFs as base64, not `{media_type}`"),
        );
        return None;
    }
    let title = filename.filter(|f| !f.is_empty()).map(|f| {
        if f.chars().count() > MAX_TITLE_LEN {
            losses.approximated(
                format!("{file_base}/filename"),
                format!("shortened to the {MAX_TITLE_LEN} characters Anthropic allows in a document title"),
            );
            f.chars().take(MAX_TITLE_LEN).collect()
        } else {
            f
        }
    });
    Some(anthropic::ContentBlock::Document(
        anthropic::DocumentBlock {
            source: anthropic::Source::Base64(anthropic::Base64Source {
                media_type,
                data,
                extra: Map::new(),
            }),
            title,
            context: None,
            citations: None,
            cache_control,
            extra: Map::new(),
        },
    ))
}

/// Splits `data:<media type>;base64,<data>`.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Removes `cache_control` (the OpenRouter/LiteLLM extension) from an `extra` map, reporting
/// every other key as dropped.
fn take_cache_control(mut extra: Extra, base: &str, losses: &mut Losses) -> Option<Value> {
    let cache_control = extra.remove("cache_control").filter(|v| !v.is_null());
    losses.dropped_extra(base, &extra, "Anthropic");
    cache_control
}

/// Message-level `cache_control` marks the end of the message, so it goes on its last block.
fn apply_message_extra(extra: Extra, blocks: &mut [SourcedBlock], base: &str, losses: &mut Losses) {
    let Some(cache_control) = take_cache_control(extra, base, losses) else {
        return;
    };
    let slot = match blocks.last_mut().map(|b| &mut b.block) {
        Some(anthropic::ContentBlock::Text(b)) => Some(&mut b.cache_control),
        Some(anthropic::ContentBlock::Image(b)) => Some(&mut b.cache_control),
        Some(anthropic::ContentBlock::Document(b)) => Some(&mut b.cache_control),
        Some(anthropic::ContentBlock::ToolUse(b)) => Some(&mut b.cache_control),
        Some(anthropic::ContentBlock::ToolResult(b)) => Some(&mut b.cache_control),
        _ => None,
    };
    match slot {
        Some(slot) => *slot = Some(cache_control),
        None => losses.dropped(
            format!("{base}/cache_control"),
            "no block of this message can carry a cache breakpoint",
        ),
    }
}

fn report_name(name: Option<String>, base: &str, losses: &mut Losses) {
    if name.is_some() {
        losses.dropped(
            format!("{base}/name"),
            "Anthropic messages have no participant name",
        );
    }
}

fn target_name(name: String, path: &str, losses: &mut Losses) -> String {
    match vocab::target_tool_name(&name) {
        std::borrow::Cow::Borrowed(_) => name,
        std::borrow::Cow::Owned(short) => {
            losses.approximated(
                path,
                format!("tool name `{name}` is not accepted as is; sent as `{short}`"),
            );
            short
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request settings

fn max_tokens_for(
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    opts: &RequestOptions,
    losses: &mut Losses,
) -> u64 {
    match (max_completion_tokens, max_tokens) {
        (Some(completion), Some(legacy)) => {
            if completion != legacy {
                losses.dropped(
                    "/max_tokens",
                    "`max_completion_tokens` takes precedence over `max_tokens`",
                );
            }
            completion
        }
        (Some(completion), None) => completion,
        (None, Some(legacy)) => legacy,
        (None, None) => {
            losses.synthesized(
                "/max_tokens",
                format!(
                    "Anthropic requires `max_tokens`; used the default {}",
                    opts.default_max_tokens
                ),
            );
            opts.default_max_tokens
        }
    }
}

fn convert_tools(tools: Vec<openai::Tool>, losses: &mut Losses) -> Vec<anthropic::Tool> {
    let mut converted = Vec::new();
    for (k, tool) in tools.into_iter().enumerate() {
        let base = format!("/tools/{k}");
        let openai::Tool {
            kind,
            function,
            extra,
        } = tool;
        if kind != "function" {
            losses.dropped(
                base,
                format!(
                    "tool type `{kind}` has no Anthropic equivalent; only function tools convert"
                ),
            );
            continue;
        }
        let openai::FunctionDefinition {
            name,
            description,
            parameters,
            strict,
            extra: function_extra,
        } = function;
        let name = target_name(name, &format!("{base}/function/name"), losses);
        let input_schema = parameters.unwrap_or_else(|| {
            losses.synthesized(
                format!("{base}/function/parameters"),
                "Anthropic requires `input_schema`; used an empty object schema",
            );
            json!({"type": "object", "properties": {}})
        });
        losses.dropped_extra(&format!("{base}/function"), &function_extra, "Anthropic");
        let cache_control = take_cache_control(extra, &base, losses);
        converted.push(anthropic::Tool {
            kind: None,
            name,
            description,
            input_schema: Some(input_schema),
            strict,
            cache_control,
            extra: Map::new(),
        });
    }
    converted
}

fn convert_tool_choice(
    choice: Option<openai::ToolChoice>,
    parallel_tool_calls: Option<bool>,
    has_tools: bool,
    losses: &mut Losses,
) -> Result<Option<anthropic::ToolChoice>, ConvertError> {
    let disable_parallel_tool_use = (parallel_tool_calls == Some(false)).then_some(true);
    let options = || anthropic::ToolChoiceOptions {
        disable_parallel_tool_use,
        extra: Map::new(),
    };
    let choice = match choice {
        // `auto` is Anthropic's default; it is only spelled out to carry the parallel setting.
        None => (disable_parallel_tool_use.is_some() && has_tools)
            .then(|| anthropic::ToolChoice::Auto(options())),
        Some(openai::ToolChoice::Mode(mode)) => Some(match mode.as_str() {
            // Anthropic's `none` has no parallel setting, and none is needed without tool calls.
            "none" => anthropic::ToolChoice::None(anthropic::ToolChoiceOptions::default()),
            "auto" => anthropic::ToolChoice::Auto(options()),
            "required" => anthropic::ToolChoice::Any(options()),
            other => {
                return Err(ConvertError::new(
                    "tool_choice",
                    format!(
                    "unknown tool_choice `{other}`; use none, auto, required or a named function"
                ),
                ))
            }
        }),
        Some(openai::ToolChoice::Named(named)) => {
            let openai::NamedToolChoice {
                kind,
                function,
                extra,
            } = named;
            let openai::NamedFunction {
                name,
                extra: function_extra,
            } = function;
            if kind != "function" {
                return Err(ConvertError::new(
                    "tool_choice.type",
                    format!(
                        "tool_choice type `{kind}` has no Anthropic equivalent; use `function`"
                    ),
                ));
            }
            let name = target_name(name, "/tool_choice/function/name", losses);
            losses.dropped_extra("/tool_choice/function", &function_extra, "Anthropic");
            losses.dropped_extra("/tool_choice", &extra, "Anthropic");
            Some(anthropic::ToolChoice::Tool(anthropic::NamedToolChoice {
                name,
                disable_parallel_tool_use,
                extra: Map::new(),
            }))
        }
        Some(openai::ToolChoice::Other(value)) => {
            let kind = value.get("type").and_then(Value::as_str).unwrap_or("?");
            return Err(ConvertError::new(
                "tool_choice",
                format!(
                    "tool_choice of type `{kind}` has no Anthropic equivalent; use none, auto, required or \
                     {{\"type\":\"function\",\"function\":{{\"name\":…}}}}"
                ),
            ));
        }
    };
    Ok(choice)
}

/// Whether the conversation ends with tool results for an assistant turn that carries no
/// thinking block: Anthropic rejects that while thinking is enabled, because the model would be
/// continuing a turn whose reasoning it cannot see.
fn unsigned_tool_turn_pending(messages: &[anthropic::Message]) -> bool {
    let [.., assistant, user] = messages else {
        return false;
    };
    let answers_tools = blocks_of(user)
        .iter()
        .any(|b| matches!(b, anthropic::ContentBlock::ToolResult(_)));
    let calls_tools = blocks_of(assistant)
        .iter()
        .any(|b| matches!(b, anthropic::ContentBlock::ToolUse(_)));
    let starts_with_thinking = matches!(
        blocks_of(assistant)
            .first()
            .map(anthropic::ContentBlock::type_name),
        Some("thinking" | "redacted_thinking")
    );
    assistant.role == "assistant"
        && user.role == "user"
        && answers_tools
        && calls_tools
        && !starts_with_thinking
}

fn blocks_of(message: &anthropic::Message) -> &[anthropic::ContentBlock] {
    match &message.content {
        anthropic::Content::Blocks(blocks) => blocks,
        anthropic::Content::Text(_) => &[],
    }
}

fn forces_tool_use(choice: Option<&anthropic::ToolChoice>) -> bool {
    matches!(
        choice,
        Some(anthropic::ToolChoice::Any(_) | anthropic::ToolChoice::Tool(_))
    )
}

fn thinking_for(
    effort: Option<String>,
    max_tokens: u64,
    losses: &mut Losses,
) -> Option<anthropic::ThinkingConfig> {
    let effort = effort?;
    let budget = match vocab::thinking_budget_for_effort(&effort) {
        Some(budget) => budget?,
        // OpenAI's newest level; Anthropic budgets top out where `xhigh` is.
        None if effort == "max" => {
            losses.approximated(
                "/reasoning_effort",
                "`max` sent as the largest thinking budget (that of `xhigh`)",
            );
            vocab::thinking_budget_for_effort("xhigh").flatten()?
        }
        None => {
            losses.dropped(
                "/reasoning_effort",
                format!("unknown reasoning effort `{effort}`"),
            );
            return None;
        }
    };
    let budget = if budget >= max_tokens {
        // `max_tokens` covers thinking and answer alike: leave the answer at least half.
        let clamped = (max_tokens / 2).max(vocab::MIN_THINKING_BUDGET);
        if clamped >= max_tokens {
            losses.dropped(
                "/reasoning_effort",
                format!(
                    "thinking needs a budget of at least {} below `max_tokens` ({max_tokens}); sent without thinking",
                    vocab::MIN_THINKING_BUDGET
                ),
            );
            return None;
        }
        losses.approximated(
            "/reasoning_effort",
            format!("thinking budget {budget} lowered to {clamped}, half of `max_tokens`, so the answer keeps room"),
        );
        clamped
    } else {
        budget
    };
    Some(anthropic::ThinkingConfig::Enabled(
        anthropic::ThinkingEnabled {
            budget_tokens: budget,
            extra: Map::new(),
        },
    ))
}

fn sampling(
    temperature: Option<f64>,
    top_p: Option<f64>,
    thinking: bool,
    losses: &mut Losses,
) -> (Option<f64>, Option<f64>) {
    let mut temperature = temperature.map(|t| {
        let clamped = t.clamp(0.0, 1.0);
        if clamped != t {
            losses.approximated(
                "/temperature",
                format!("{t} clamped to Anthropic's range 0..1"),
            );
        }
        clamped
    });
    let mut top_p = top_p;
    if thinking {
        if temperature.is_some_and(|t| t != 1.0) {
            losses.dropped(
                "/temperature",
                "Anthropic allows only temperature 1 while thinking",
            );
            temperature = None;
        }
        if top_p.is_some_and(|p| p < MIN_TOP_P_WITH_THINKING) {
            losses.dropped(
                "/top_p",
                format!(
                    "Anthropic allows top_p only from {MIN_TOP_P_WITH_THINKING} while thinking"
                ),
            );
            top_p = None;
        }
    }
    if temperature.is_some() && top_p.is_some() {
        losses.dropped(
            "/top_p",
            "newer Claude models reject `temperature` and `top_p` together; kept temperature",
        );
        top_p = None;
    }
    (temperature, top_p)
}

fn output_format(format: openai::ResponseFormat, losses: &mut Losses) -> Option<Value> {
    let openai::ResponseFormat {
        kind,
        json_schema,
        extra,
    } = format;
    losses.dropped_extra("/response_format", &extra, "Anthropic");
    match kind.as_str() {
        "text" => None,
        "json_object" => {
            losses.dropped(
                "/response_format",
                "Anthropic has no JSON mode without a schema; ask for JSON in the prompt or send a json_schema",
            );
            None
        }
        "json_schema" => {
            let Some(openai::JsonSchemaFormat {
                name,
                description,
                schema,
                strict,
                extra: schema_extra,
            }) = json_schema
            else {
                losses.dropped(
                    "/response_format",
                    "`json_schema` response format without `json_schema`",
                );
                return None;
            };
            let base = "/response_format/json_schema";
            let Some(schema) = schema else {
                losses.dropped(base, "Anthropic structured output needs a `schema`");
                return None;
            };
            losses.dropped(
                format!("{base}/name"),
                format!("Anthropic output formats have no name (`{name}`)"),
            );
            if description.is_some() {
                losses.dropped(
                    format!("{base}/description"),
                    "Anthropic output formats have no description",
                );
            }
            if strict != Some(true) {
                losses.approximated(
                    format!("{base}/strict"),
                    "Anthropic always enforces the schema strictly",
                );
            }
            losses.dropped_extra(base, &schema_extra, "Anthropic");
            Some(json!({"type": "json_schema", "schema": schema}))
        }
        other => {
            losses.dropped(
                "/response_format",
                format!("response format `{other}` has no Anthropic equivalent"),
            );
            None
        }
    }
}

fn user_metadata(
    user: Option<String>,
    safety_identifier: Option<String>,
    losses: &mut Losses,
) -> Option<anthropic::Metadata> {
    let (user_id, path) = match (safety_identifier, user) {
        (Some(id), user) => {
            if user.is_some() {
                losses.dropped(
                    "/user",
                    "`safety_identifier` was used as Anthropic's `metadata.user_id`",
                );
            }
            (id, "/safety_identifier")
        }
        (None, Some(user)) => (user, "/user"),
        (None, None) => return None,
    };
    let user_id = if user_id.chars().count() > MAX_USER_ID_LEN {
        losses.approximated(
            path,
            format!("longer than the {MAX_USER_ID_LEN} characters Anthropic allows; sent as a stable hash"),
        );
        format!("a2o-{:016x}", vocab::stable_hash(user_id.as_bytes()))
    } else {
        user_id
    };
    Some(anthropic::Metadata {
        user_id: Some(user_id),
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{request_anthropic_to_openai, LossKind, DEFAULT_MAX_TOKENS};
    use serde_json::json;
    use LossKind::{Approximated as A, Dropped as D, Synthesized as S};

    type LossList = Vec<(String, LossKind)>;

    fn convert(input: Value) -> (Value, LossList) {
        convert_with(input, &RequestOptions::default())
    }

    fn convert_with(input: Value, opts: &RequestOptions) -> (Value, LossList) {
        let req: openai::ChatRequest =
            serde_json::from_value(input).expect("a valid OpenAI request");
        let mut losses = Losses::new();
        let out = request(req, opts, &mut losses).expect("converts");
        (
            serde_json::to_value(out).expect("serializes"),
            loss_list(&losses),
        )
    }

    fn convert_err(input: Value) -> ConvertError {
        let req: openai::ChatRequest =
            serde_json::from_value(input).expect("a valid OpenAI request");
        request(req, &RequestOptions::default(), &mut Losses::new()).expect_err("must not convert")
    }

    fn loss_list(losses: &Losses) -> LossList {
        let mut list: LossList = losses.iter().map(|l| (l.path.clone(), l.kind)).collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    fn expect(expected: &[(&str, LossKind)]) -> LossList {
        let mut list: LossList = expected
            .iter()
            .map(|(p, k)| ((*p).to_owned(), *k))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// A request around the given messages, with `max_tokens` set so no default is reported.
    fn with_messages(messages: Value) -> Value {
        json!({"model": "m", "max_completion_tokens": 100, "messages": messages})
    }

    #[test]
    fn item_01_system_and_developer_messages_become_the_system_prompt() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Be nice."}
        ])));
        assert_eq!(
            out,
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 100,
                "system": [
                    {"type": "text", "text": "You are terse."},
                    {"type": "text", "text": "Answer in French."},
                    {"type": "text", "text": "Be nice."}
                ]
            })
        );
        assert_eq!(losses, expect(&[("/messages/3", A)]));

        let (out, losses) = convert(with_messages(json!([
            {"role": "system", "content": "Only one."},
            {"role": "user", "content": "Hi"}
        ])));
        assert_eq!(out["system"], json!("Only one."));
        assert!(losses.is_empty());
    }

    #[test]
    fn item_02_content_parts_images_and_documents() {
        let (out, losses) = convert(with_messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg", "detail": "auto"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "report.pdf"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
            {"type": "file", "file": {"file_id": "file-abc"}}
        ]}])));
        assert_eq!(
            out["messages"],
            json!([{"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/dog.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                 "title": "report.pdf"},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
            ]}])
        );
        assert_eq!(
            losses,
            expect(&[
                ("/messages/0/content/2/image_url/detail", D),
                ("/messages/0/content/6", D)
            ])
        );

        let err = convert_err(with_messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "Listen:"},
            {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}
        ]}])));
        assert_eq!(err.path, "messages[0].content[1].type");
        assert!(err.message.contains("audio"), "{err}");

        let err = convert_err(with_messages(
            json!([{"role": "user", "content": [{"type": "video_url", "url": "x"}]}]),
        ));
        assert_eq!(err.path, "messages[0].content[0].type");

        let err = convert_err(with_messages(json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}
        ]}])));
        assert_eq!(err.path, "messages[0].content[0].image_url.url");
    }

    #[test]
    fn item_03_empty_text_is_removed_and_turns_are_merged() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Hello"}]},
            {"role": "assistant", "content": "   "},
            {"role": "user", "content": "Are you there?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "ping", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "pong"}
        ])));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "Hello"},
                    {"type": "text", "text": "Are you there?"}
                ]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "ping", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "pong"}]}
            ])
        );
        assert_eq!(
            losses,
            expect(&[
                ("/messages/0/content/0", A),
                ("/messages/1/content", A),
                ("/messages/1", D)
            ])
        );

        let err = convert_err(with_messages(json!([
            {"role": "system", "content": "Rules."},
            {"role": "user", "content": [{"type": "text", "text": " "}]}
        ])));
        assert_eq!(err.path, "messages");
    }

    #[test]
    fn item_04_tools_become_anthropic_tools() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["tools"] = json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
             "strict": true}},
            {"type": "function", "function": {"name": "now"}},
            {"type": "function", "function": {"name": "files.read", "parameters": {"type": "object"}}}
        ]);
        let (out, losses) = convert(input);
        let short = vocab::target_tool_name("files.read").into_owned();
        assert_eq!(
            out["tools"],
            json!([
                {"name": "get_weather", "description": "Weather",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                 "strict": true},
                {"name": "now", "input_schema": {"type": "object", "properties": {}}},
                {"name": short, "input_schema": {"type": "object"}}
            ])
        );
        assert_eq!(
            losses,
            expect(&[
                ("/tools/1/function/parameters", S),
                ("/tools/2/function/name", A)
            ])
        );
    }

    #[test]
    fn item_05_tool_choice_and_parallel_tool_calls() {
        let base = || {
            let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
            input["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]);
            input
        };
        for (choice, expected) in [
            (json!("none"), json!({"type": "none"})),
            (json!("auto"), json!({"type": "auto"})),
            (json!("required"), json!({"type": "any"})),
            (
                json!({"type": "function", "function": {"name": "get_weather"}}),
                json!({"type": "tool", "name": "get_weather"}),
            ),
        ] {
            let mut input = base();
            input["tool_choice"] = choice;
            let (out, losses) = convert(input);
            assert_eq!(out["tool_choice"], expected);
            assert!(losses.is_empty(), "{losses:?}");
        }

        let mut input = base();
        input["parallel_tool_calls"] = json!(false);
        let (out, _) = convert(input);
        assert_eq!(
            out["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );

        let mut input = base();
        input["parallel_tool_calls"] = json!(false);
        input["tool_choice"] = json!("required");
        let (out, _) = convert(input);
        assert_eq!(
            out["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );

        let mut input = base();
        input["tool_choice"] = json!("sometimes");
        assert_eq!(convert_err(input).path, "tool_choice");

        let mut input = base();
        input["tool_choice"] =
            json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}});
        assert_eq!(convert_err(input).path, "tool_choice");
    }

    #[test]
    fn item_06_tool_calls_and_tool_results() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Weather in Paris, and the time?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "[tool error] clock unavailable"}]},
            {"role": "user", "content": "Thanks"}
        ])));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris, and the time?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "c2", "name": "now", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "c2",
                     "content": [{"type": "text", "text": "clock unavailable"}], "is_error": true},
                    {"type": "text", "text": "Thanks"}
                ]}
            ])
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn item_07_max_tokens() {
        let messages = json!([{"role": "user", "content": "Hi"}]);
        let (out, losses) = convert(
            json!({"model": "m", "max_tokens": 100, "max_completion_tokens": 200, "messages": messages}),
        );
        assert_eq!(out["max_tokens"], json!(200));
        assert_eq!(losses, expect(&[("/max_tokens", D)]));

        let (out, losses) = convert(
            json!({"model": "m", "max_tokens": 100, "max_completion_tokens": 100, "messages": messages}),
        );
        assert_eq!(out["max_tokens"], json!(100));
        assert!(losses.is_empty());

        let opts = RequestOptions {
            default_max_tokens: 1234,
        };
        let (out, losses) = convert_with(json!({"model": "m", "messages": messages}), &opts);
        assert_eq!(out["max_tokens"], json!(1234));
        assert_eq!(losses, expect(&[("/max_tokens", S)]));
    }

    #[test]
    fn item_08_stop_becomes_stop_sequences() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["stop"] = json!(["a", "b"]);
        let (out, losses) = convert(input);
        assert_eq!(out["stop_sequences"], json!(["a", "b"]));
        assert!(losses.is_empty());
    }

    #[test]
    fn item_09_sampling_is_clamped_and_deconflicted() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["temperature"] = json!(1.5);
        let (out, losses) = convert(input);
        assert_eq!(out["temperature"], json!(1.0));
        assert_eq!(losses, expect(&[("/temperature", A)]));

        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["temperature"] = json!(0.25);
        input["top_p"] = json!(0.5);
        let (out, losses) = convert(input);
        assert_eq!(out["temperature"], json!(0.25));
        assert!(out.get("top_p").is_none());
        assert_eq!(losses, expect(&[("/top_p", D)]));

        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["top_p"] = json!(0.5);
        let (out, losses) = convert(input);
        assert_eq!(out["top_p"], json!(0.5));
        assert!(losses.is_empty());
    }

    fn with_effort(effort: &str, max_tokens: u64) -> Value {
        json!({"model": "m", "max_completion_tokens": max_tokens, "reasoning_effort": effort,
               "messages": [{"role": "user", "content": "Hi"}]})
    }

    #[test]
    fn item_10_reasoning_effort_becomes_a_thinking_budget() {
        let (out, losses) = convert(with_effort("medium", 16000));
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 8192})
        );
        assert!(losses.is_empty());

        let (out, losses) = convert(with_effort("high", 4000));
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 2000})
        );
        assert_eq!(losses, expect(&[("/reasoning_effort", A)]));

        let (out, losses) = convert(with_effort("low", 1000));
        assert!(out.get("thinking").is_none());
        assert_eq!(losses, expect(&[("/reasoning_effort", D)]));

        let (out, losses) = convert(with_effort("none", 1000));
        assert!(out.get("thinking").is_none());
        assert!(losses.is_empty());

        let (out, losses) = convert(with_effort("turbo", 16000));
        assert!(out.get("thinking").is_none());
        assert_eq!(losses, expect(&[("/reasoning_effort", D)]));

        let (out, losses) = convert(with_effort("max", 64000));
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 32768})
        );
        assert_eq!(losses, expect(&[("/reasoning_effort", A)]));

        // Thinking forbids temperature ≠ 1 and top_p < 0.95: resolved, not forwarded.
        let mut input = with_effort("medium", 16000);
        input["temperature"] = json!(0.5);
        input["top_p"] = json!(0.9);
        let (out, losses) = convert(input);
        assert!(
            out.get("temperature").is_none() && out.get("top_p").is_none(),
            "{out}"
        );
        assert_eq!(losses, expect(&[("/temperature", D), ("/top_p", D)]));

        // A prefilled final assistant turn wins over thinking, which Anthropic does not allow
        // together.
        let mut input = with_effort("medium", 16000);
        input["messages"] = json!([
            {"role": "user", "content": "Write code"},
            {"role": "assistant", "content": "```python"}
        ]);
        let (out, losses) = convert(input);
        assert!(out.get("thinking").is_none());
        assert_eq!(losses, expect(&[("/reasoning_effort", D)]));

        // Tool results for a turn whose thinking the client did not keep: Anthropic would
        // reject thinking, so it is left off. With the blocks kept, thinking stays.
        let history = |thinking_blocks: Value| {
            let mut input = with_effort("medium", 16000);
            input["messages"] = json!([
                {"role": "user", "content": "Run it"},
                {"role": "assistant", "content": null, "thinking_blocks": thinking_blocks, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "done"}
            ]);
            convert(input)
        };
        let (out, losses) = history(json!([]));
        assert!(out.get("thinking").is_none());
        assert_eq!(losses, expect(&[("/reasoning_effort", D)]));
        let (out, losses) =
            history(json!([{"type": "thinking", "thinking": "Run.", "signature": "c2ln"}]));
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 8192})
        );
        assert!(losses.is_empty());

        // A forced tool wins over thinking, which Anthropic does not allow together.
        let mut input = with_effort("medium", 16000);
        input["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
        input["tool_choice"] = json!("required");
        let (out, losses) = convert(input);
        assert!(out.get("thinking").is_none());
        assert_eq!(out["tool_choice"], json!({"type": "any"}));
        assert_eq!(losses, expect(&[("/reasoning_effort", D)]));
    }

    #[test]
    fn item_11_thinking_blocks_are_replayed_verbatim() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1", "reasoning_content": "Let me think.", "thinking_blocks": [
                {"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl"},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"}
            ]},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2", "reasoning_content": "unsigned"},
            {"role": "user", "content": "Q3"}
        ])));
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl"},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                {"type": "text", "text": "A1"}
            ]})
        );
        assert_eq!(
            out["messages"][3],
            json!({"role": "assistant", "content": [{"type": "text", "text": "A2"}]})
        );
        assert_eq!(losses, expect(&[("/messages/3/reasoning_content", D)]));
    }

    #[test]
    fn item_11_reasoning_field_is_read_like_reasoning_content() {
        // An OpenRouter- or vLLM-style client sends its history's reasoning as `reasoning`.
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1", "reasoning": "unsigned"},
            {"role": "user", "content": "Q2"}
        ])));
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": [{"type": "text", "text": "A1"}]})
        );
        assert_eq!(losses, expect(&[("/messages/1/reasoning", D)]));
    }

    #[test]
    fn item_11_blocks_accumulated_from_a_stream_lose_their_index() {
        // An SDK that accumulated a2o's stream keeps each entry's `index`; it is not a field
        // of an Anthropic block, and Anthropic rejects unknown block fields.
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1", "reasoning_content": "Hmm.", "thinking_blocks": [
                {"index": 0, "type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
                {"index": 1, "type": "redacted_thinking", "data": "ZW5j"}
            ]},
            {"role": "user", "content": "Q2"}
        ])));
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "ZW5j"},
                {"type": "text", "text": "A1"}
            ]})
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn item_12_response_format_becomes_output_config() {
        let schema =
            json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["response_format"] = json!({"type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": true}});
        let (out, losses) = convert(input);
        assert_eq!(
            out["output_config"],
            json!({"format": {"type": "json_schema", "schema": schema}})
        );
        assert_eq!(losses, expect(&[("/response_format/json_schema/name", D)]));

        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["response_format"] = json!({"type": "json_schema",
            "json_schema": {"name": "answer", "description": "An answer", "schema": schema}});
        let (_, losses) = convert(input);
        assert_eq!(
            losses,
            expect(&[
                ("/response_format/json_schema/name", D),
                ("/response_format/json_schema/description", D),
                ("/response_format/json_schema/strict", A)
            ])
        );

        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["response_format"] = json!({"type": "json_object"});
        let (out, losses) = convert(input);
        assert!(out.get("output_config").is_none());
        assert_eq!(losses, expect(&[("/response_format", D)]));

        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["response_format"] = json!({"type": "text"});
        let (out, losses) = convert(input);
        assert!(out.get("output_config").is_none());
        assert!(losses.is_empty());
    }

    #[test]
    fn item_13_user_ids_become_metadata_user_id() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["safety_identifier"] = json!("s-1");
        input["user"] = json!("u-1");
        input["prompt_cache_key"] = json!("k");
        let (out, losses) = convert(input);
        assert_eq!(out["metadata"], json!({"user_id": "s-1"}));
        assert_eq!(losses, expect(&[("/user", D), ("/prompt_cache_key", D)]));

        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["user"] = json!("u-1");
        let (out, losses) = convert(input);
        assert_eq!(out["metadata"], json!({"user_id": "u-1"}));
        assert!(losses.is_empty());

        let long = "x".repeat(300);
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["user"] = json!(long);
        let (out, losses) = convert(input);
        let hashed = format!("a2o-{:016x}", vocab::stable_hash(long.as_bytes()));
        assert_eq!(out["metadata"], json!({"user_id": hashed}));
        assert_eq!(losses, expect(&[("/user", A)]));
    }

    #[test]
    fn item_14_cache_control_in_extra_is_carried() {
        let cache = json!({"type": "ephemeral"});
        let mut input = with_messages(json!([
            {"role": "system", "content": "Long rules.", "cache_control": cache},
            {"role": "user", "content": [
                {"type": "text", "text": "Big document", "cache_control": cache, "foo": 1},
                {"type": "text", "text": "Question"}
            ]}
        ]));
        input["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}, "cache_control": cache}]);
        let (out, losses) = convert(input);
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "Long rules.", "cache_control": cache}])
        );
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "text", "text": "Big document", "cache_control": cache},
                {"type": "text", "text": "Question"}
            ])
        );
        assert_eq!(out["tools"][0]["cache_control"], cache);
        assert_eq!(losses, expect(&[("/messages/1/content/0/foo", D)]));
    }

    #[test]
    fn item_15_everything_else_is_reported() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi", "name": "alice"}]));
        input["n"] = json!(2);
        input["seed"] = json!(7);
        input["logprobs"] = json!(true);
        input["frequency_penalty"] = json!(0.5);
        input["service_tier"] = json!("flex");
        input["metadata"] = json!({"k": "v"});
        let (out, losses) = convert(input);
        assert_eq!(
            out,
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 100})
        );
        assert_eq!(
            losses,
            expect(&[
                ("/messages/0/name", D),
                ("/n", D),
                ("/seed", D),
                ("/logprobs", D),
                ("/frequency_penalty", D),
                ("/service_tier", D),
                ("/metadata", D)
            ])
        );
    }

    #[test]
    fn item_16_stream_is_carried_and_stream_options_are_not() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["stream"] = json!(true);
        input["stream_options"] = json!({"include_usage": true});
        let (out, losses) = convert(input);
        assert_eq!(out["stream"], json!(true));
        assert!(out.get("stream_options").is_none());
        assert!(losses.is_empty());
    }

    #[test]
    fn item_17_no_nulls_for_absent_fields() {
        let (out, losses) = convert(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}),
        );
        assert_eq!(
            out,
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5})
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn unknown_message_role_is_an_error() {
        let err = convert_err(with_messages(json!([
            {"role": "user", "content": "Hi"},
            {"role": "function", "name": "f", "content": "x"}
        ])));
        assert_eq!(err.path, "messages[1].role");
    }

    #[test]
    fn final_assistant_prefill_loses_trailing_whitespace() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Write code"},
            {"role": "assistant", "content": "```python\n"}
        ])));
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": [{"type": "text", "text": "```python"}]})
        );
        assert_eq!(losses, expect(&[("/messages/1/content", A)]));
    }

    #[test]
    fn pitfall_11_stop_string_becomes_an_array() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["stop"] = json!("END");
        let (out, losses) = convert(input);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert!(losses.is_empty());
    }

    #[test]
    fn pitfall_12_max_completion_tokens_accepted_and_max_tokens_defaulted() {
        let (out, _) = convert(
            json!({"model": "m", "max_completion_tokens": 300, "messages": [{"role": "user", "content": "Hi"}]}),
        );
        assert_eq!(out["max_tokens"], json!(300));
        let (out, losses) =
            convert(json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}));
        assert_eq!(out["max_tokens"], json!(DEFAULT_MAX_TOKENS));
        assert_eq!(losses, expect(&[("/max_tokens", S)]));
    }

    #[test]
    fn pitfall_13_openai_only_fields_do_not_leak() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        for (key, value) in [
            ("logprobs", json!(true)),
            ("top_logprobs", json!(3)),
            ("presence_penalty", json!(0.1)),
            ("logit_bias", json!({"50256": -100})),
            ("store", json!(true)),
            ("modalities", json!(["text"])),
            ("verbosity", json!("low")),
        ] {
            input[key] = value;
        }
        let (out, losses) = convert(input);
        let keys: Vec<&String> = out
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["model", "messages", "max_tokens"]);
        assert_eq!(losses.len(), 7);
        assert!(losses.iter().all(|(_, kind)| *kind == D));
    }

    #[test]
    fn pitfall_14_null_content_and_empty_text() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Run it"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": ""},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c2", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c2", "content": "done"}
        ])));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": "Run it"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "run", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c2", "name": "run", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c2", "content": "done"}]}
            ])
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn pitfall_15_text_beside_tool_result_kept_in_legal_order() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": "Running.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
            {"role": "user", "content": "(note: be quick)"},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "user", "content": "Next?"}
        ])));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": "Go"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Running."},
                    {"type": "tool_use", "id": "c1", "name": "run", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "ok"},
                    {"type": "text", "text": "(note: be quick)"},
                    {"type": "text", "text": "Next?"}
                ]}
            ])
        );
        assert_eq!(losses, expect(&[("/messages/2/content", A)]));
    }

    #[test]
    fn pitfall_16_tool_call_with_invalid_arguments_is_kept() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{\"cmd\": \"ls"}},
                {"id": "c2", "type": "function", "function": {"name": "run", "arguments": "[1, 2]"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "error"},
            {"role": "tool", "tool_call_id": "c2", "content": "error"}
        ])));
        assert_eq!(
            out["messages"][1]["content"],
            json!([
                {"type": "tool_use", "id": "c1", "name": "run", "input": {"_a2o_raw_arguments": "{\"cmd\": \"ls"}},
                {"type": "tool_use", "id": "c2", "name": "run", "input": {"_a2o_raw_arguments": "[1, 2]"}}
            ])
        );
        assert_eq!(
            losses,
            expect(&[
                ("/messages/1/tool_calls/0/function/arguments", A),
                ("/messages/1/tool_calls/1/function/arguments", A)
            ])
        );
    }

    #[test]
    fn pitfall_17_temperature_and_top_p_are_not_both_sent() {
        let mut input = with_messages(json!([{"role": "user", "content": "Hi"}]));
        input["temperature"] = json!(0.7);
        input["top_p"] = json!(0.9);
        let (out, losses) = convert(input);
        assert_eq!(out["temperature"], json!(0.7));
        assert!(out.get("top_p").is_none());
        assert_eq!(losses, expect(&[("/top_p", D)]));
    }

    #[test]
    fn pitfall_18_long_tool_names_are_shortened_the_same_everywhere() {
        let long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here";
        let short = vocab::target_tool_name(long).into_owned();
        let mut input = with_messages(json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": long, "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}
        ]));
        input["tools"] = json!([{"type": "function", "function": {"name": long, "parameters": {"type": "object"}}}]);
        input["tool_choice"] = json!({"type": "function", "function": {"name": long}});
        let (out, losses) = convert(input);
        assert!(short.len() <= vocab::MAX_TOOL_NAME_LEN);
        assert_eq!(out["tools"][0]["name"], json!(short));
        assert_eq!(out["tool_choice"], json!({"type": "tool", "name": short}));
        assert_eq!(out["messages"][1]["content"][0]["name"], json!(short));
        assert_eq!(
            losses,
            expect(&[
                ("/messages/1/tool_calls/0/function/name", A),
                ("/tools/0/function/name", A),
                ("/tool_choice/function/name", A)
            ])
        );
        assert_eq!(vocab::ToolNames::from_names([long]).restore(&short), long);
    }

    #[test]
    fn pitfall_19_tool_choice_parallel_and_tool_errors() {
        let mut input = with_messages(json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "[tool error] permission denied"}
        ]));
        input["tools"] = json!([{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]);
        input["tool_choice"] = json!({"type": "function", "function": {"name": "run"}});
        input["parallel_tool_calls"] = json!(false);
        let (out, losses) = convert(input);
        assert_eq!(
            out["tool_choice"],
            json!({"type": "tool", "name": "run", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            out["messages"][2]["content"],
            json!([{"type": "tool_result", "tool_use_id": "c1", "content": "permission denied", "is_error": true}])
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn pitfall_20_images_and_pdfs() {
        let (out, losses) = convert(with_messages(json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi", "filename": "a.csv"}}
        ]}])));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                 "title": "a.pdf"}
            ])
        );
        assert_eq!(losses, expect(&[("/messages/0/content/3", D)]));
    }

    /// O→A→O: the second leg must give the client's request back. Returns the losses of both
    /// legs.
    fn round_trip(input: &Value) -> (Value, LossList, LossList) {
        let req: openai::ChatRequest =
            serde_json::from_value(input.clone()).expect("a valid OpenAI request");
        let mut there = Losses::new();
        let anthropic = request(req, &RequestOptions::default(), &mut there).expect("converts");
        let mut back = Losses::new();
        let openai =
            request_anthropic_to_openai::request(anthropic, &RequestOptions::default(), &mut back)
                .expect("converts back");
        (
            serde_json::to_value(openai).expect("serializes"),
            loss_list(&there),
            loss_list(&back),
        )
    }

    #[test]
    fn round_trip_openai_anthropic_openai() {
        let tools = json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
             "strict": true}},
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
        ]);
        let conversation = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "report.pdf"}}
            ]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "now", "arguments": "{not json"}}
            ]},
            {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
            {"role": "tool", "content": "[tool error] clock unavailable", "tool_call_id": "c2"},
            {"role": "user", "content": "Thanks. And tomorrow?"},
            {"role": "assistant", "content": "Tomorrow: rain.", "reasoning_content": "Forecast says rain.",
             "thinking_blocks": [{"type": "thinking", "thinking": "Forecast says rain.", "signature": "c2ln"}]},
            {"role": "user", "content": "OK"}
        ]);

        // Settings that both dialects share exactly.
        let lossless = json!({
            "model": "m", "messages": conversation, "max_completion_tokens": 20000,
            "stream": true, "stream_options": {"include_usage": true}, "stop": ["END"],
            "tools": tools, "tool_choice": "required", "parallel_tool_calls": false,
            "safety_identifier": "user-123", "temperature": 0.5
        });
        let (back, there, back_losses) = round_trip(&lossless);
        assert_eq!(back, lossless);
        // The invalid arguments are carried under a reserved key and restored; the tool error
        // travels as `is_error` and comes back as the prefix.
        assert_eq!(
            there,
            expect(&[("/messages/2/tool_calls/1/function/arguments", A)])
        );
        assert_eq!(
            back_losses,
            expect(&[("/messages/2/content/1/is_error", A)])
        );

        let with_thinking = json!({
            "model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 20000,
            "reasoning_effort": "medium", "tools": tools, "tool_choice": {"type": "function", "function": {"name": "now"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "response", "strict": true,
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}
        });
        let (back, there, back_losses) = round_trip(&with_thinking);
        // A named tool choice forbids thinking on Anthropic, so reasoning_effort is the one loss.
        let mut expected = with_thinking.clone();
        if let Some(object) = expected.as_object_mut() {
            object.remove("reasoning_effort");
        }
        assert_eq!(back, expected);
        assert_eq!(
            there,
            expect(&[
                ("/reasoning_effort", D),
                ("/response_format/json_schema/name", D)
            ])
        );
        assert_eq!(back_losses, expect(&[("/output_config/format/name", S)]));

        let mut thinking_only = with_thinking.clone();
        if let Some(object) = thinking_only.as_object_mut() {
            object.remove("tool_choice");
        }
        let (back, _, _) = round_trip(&thinking_only);
        assert_eq!(back, thinking_only);
    }
}
