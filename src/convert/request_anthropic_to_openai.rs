//! Anthropic Messages request → OpenAI Chat Completions request (`anthropic_to_openai::request`).
//!
//! Owns the request-side decisions for this direction: the top-level `system` becomes the first
//! message (always role `system`, which every OpenAI-compatible server knows); a user turn with
//! `tool_result` blocks becomes one `tool` message per result followed by a user message with
//! the rest, because OpenAI wants tool messages right after the assistant's calls; assistant
//! thinking travels as `reasoning_content` plus verbatim `thinking_blocks`; thinking settings
//! become `reasoning_effort`. Anthropic-only keys (`cache_control`, `top_k`, server tools, …)
//! never reach the OpenAI request; each is recorded in [`Losses`].

use serde_json::{Map, Value};

use super::request_openai_to_anthropic::RAW_ARGUMENTS_KEY;
use super::{vocab, ConvertError, Losses, RequestOptions, TOOL_ERROR_PREFIX};
use crate::protocol::{anthropic, openai, OneOrMany};

/// Most stop sequences OpenAI accepts.
const MAX_STOP_SEQUENCES: usize = 4;

/// Longest `safety_identifier` OpenAI accepts.
const MAX_SAFETY_IDENTIFIER_LEN: usize = 64;

/// File name given to a PDF that has no title, since OpenAI file parts want one.
const DEFAULT_FILENAME: &str = "document.pdf";

/// Name given to a structured-output schema, since OpenAI requires one and Anthropic has none.
const DEFAULT_SCHEMA_NAME: &str = "response";

/// `reasoning_effort` values OpenAI accepts that Anthropic's `output_config.effort` shares.
const SHARED_EFFORTS: [&str; 5] = ["low", "medium", "high", "xhigh", "max"];

/// Converts an Anthropic Messages request into an OpenAI Chat Completions request.
pub fn request(
    req: anthropic::MessagesRequest,
    _opts: &RequestOptions,
    losses: &mut Losses,
) -> Result<openai::ChatRequest, ConvertError> {
    let anthropic::MessagesRequest {
        model,
        messages,
        max_tokens,
        system,
        metadata,
        stop_sequences,
        stream,
        temperature,
        top_p,
        top_k,
        tools,
        tool_choice,
        thinking,
        output_config,
        output_format,
        extra,
    } = req;

    let mut out = Vec::new();
    if let Some(system) = system {
        let content = match system {
            anthropic::System::Text(text) => Some(openai::Content::Text(text)),
            anthropic::System::Blocks(blocks) => instruction_content(blocks, "/system", losses),
        };
        if let Some(content) = content {
            out.push(system_message(content));
        }
    }
    for (i, message) in messages.into_iter().enumerate() {
        convert_message(message, i, &mut out, losses)?;
    }
    if out.is_empty() {
        return Err(ConvertError::new(
            "messages",
            "there are no messages to send; add at least one user message",
        ));
    }

    let tools = tools
        .map(|tools| convert_tools(tools, losses))
        .filter(|tools| !tools.is_empty());
    let (tool_choice, parallel_tool_calls) =
        convert_tool_choice(tool_choice, tools.is_some(), losses)?;
    let (config_effort, config_format) = match output_config {
        Some(anthropic::OutputConfig {
            effort,
            format,
            extra,
        }) => {
            losses.dropped_extra("/output_config", &extra, "OpenAI");
            (effort, format)
        }
        None => (None, None),
    };
    let reasoning_effort = reasoning_effort(thinking, config_effort, losses);
    let response_format = response_format(config_format, output_format, losses);
    if top_k.is_some() {
        losses.dropped("/top_k", "OpenAI has no top_k sampling");
    }
    let safety_identifier = metadata.and_then(|metadata| safety_identifier(metadata, losses));
    // Anthropic streams always report usage; this asks OpenAI for the same.
    let stream_options = (stream == Some(true)).then(|| openai::StreamOptions {
        include_usage: Some(true),
        extra: Map::new(),
    });
    losses.dropped_extra("", &extra, "OpenAI");

    Ok(openai::ChatRequest {
        model,
        messages: out,
        max_tokens: None,
        max_completion_tokens: max_tokens,
        temperature,
        top_p,
        n: None,
        stream,
        stream_options,
        stop: stop(stop_sequences, losses),
        tools,
        tool_choice,
        parallel_tool_calls,
        reasoning_effort,
        response_format,
        user: None,
        safety_identifier,
        prompt_cache_key: None,
        metadata: None,
        extra: Map::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Messages

fn system_message(content: openai::Content) -> openai::Message {
    openai::Message::System(openai::InstructionMessage {
        content,
        name: None,
        extra: Map::new(),
    })
}

fn convert_message(
    message: anthropic::Message,
    i: usize,
    out: &mut Vec<openai::Message>,
    losses: &mut Losses,
) -> Result<(), ConvertError> {
    let anthropic::Message {
        role,
        content,
        extra,
    } = message;
    let base = format!("/messages/{i}");
    losses.dropped_extra(&base, &extra, "OpenAI");
    match role.as_str() {
        "user" => user_turn(content, i, out, losses),
        "assistant" => {
            out.push(assistant_turn(content, i, losses));
            Ok(())
        }
        // Claude Code sends system messages between turns; OpenAI has them at any position.
        "system" => {
            let content = match content {
                anthropic::Content::Text(text) => Some(openai::Content::Text(text)),
                anthropic::Content::Blocks(blocks) => {
                    instruction_content(blocks, &format!("{base}/content"), losses)
                }
            };
            if let Some(content) = content {
                out.push(system_message(content));
            }
            Ok(())
        }
        other => Err(ConvertError::new(
            format!("messages[{i}].role"),
            format!(
                "role `{other}` is not an Anthropic message role; use user, assistant or system"
            ),
        )),
    }
}

/// System text as OpenAI content: a string for one block, text parts for several, nothing for
/// none. Only text survives; OpenAI system messages hold nothing else.
fn instruction_content(
    blocks: Vec<anthropic::ContentBlock>,
    base: &str,
    losses: &mut Losses,
) -> Option<openai::Content> {
    let mut parts = Vec::new();
    for (k, block) in blocks.into_iter().enumerate() {
        let path = format!("{base}/{k}");
        match block {
            anthropic::ContentBlock::Text(text) => parts.push(text_part(text, &path, losses)),
            other => losses.dropped(
                path,
                format!(
                    "OpenAI system messages hold only text, not `{}` blocks",
                    other.type_name()
                ),
            ),
        }
    }
    match parts.len() {
        0 => None,
        1 => parts.pop().map(|part| openai::Content::Text(part.text)),
        _ => Some(openai::Content::Parts(
            parts.into_iter().map(openai::ContentPart::Text).collect(),
        )),
    }
}

/// A user turn: one `tool` message per `tool_result`, in order and first (OpenAI wants them
/// right after the assistant's calls), then a user message with everything else.
fn user_turn(
    content: anthropic::Content,
    i: usize,
    out: &mut Vec<openai::Message>,
    losses: &mut Losses,
) -> Result<(), ConvertError> {
    let blocks = match content {
        anthropic::Content::Text(text) => {
            out.push(user_message(openai::Content::Text(text)));
            return Ok(());
        }
        anthropic::Content::Blocks(blocks) => blocks,
    };
    let block_count = blocks.len();
    let mut tool_messages = Vec::new();
    let mut moved_media = Vec::new();
    let mut parts = Vec::new();
    let mut waiting_non_results: Vec<String> = Vec::new();
    let mut first_dropped: Option<(usize, String)> = None;

    for (j, block) in blocks.into_iter().enumerate() {
        let path = format!("/messages/{i}/content/{j}");
        let kept_before = parts.len();
        match block {
            anthropic::ContentBlock::ToolResult(result) => {
                for moved in waiting_non_results.drain(..) {
                    losses.approximated(
                        moved,
                        "moved after the tool messages: OpenAI wants tool messages right after the tool calls",
                    );
                }
                tool_messages.push(tool_message(result, &path, &mut moved_media, losses));
                continue;
            }
            anthropic::ContentBlock::Text(text) => {
                parts.push(openai::ContentPart::Text(text_part(text, &path, losses)))
            }
            anthropic::ContentBlock::Image(image) => parts.extend(image_part(image, &path, losses)),
            anthropic::ContentBlock::Document(document) => {
                parts.extend(document_part(document, &path, losses))
            }
            other => {
                losses.dropped(
                    path.as_str(),
                    format!(
                        "`{}` blocks in a user turn have no OpenAI equivalent",
                        other.type_name()
                    ),
                );
                first_dropped.get_or_insert((j, other.type_name().to_owned()));
            }
        }
        if parts.len() > kept_before {
            waiting_non_results.push(path);
        }
    }

    let has_tool_messages = !tool_messages.is_empty();
    out.extend(tool_messages);
    moved_media.extend(parts);
    let parts = moved_media;
    if !parts.is_empty() {
        out.push(user_message(user_content_after_tools(
            parts,
            has_tool_messages,
        )));
    } else if !has_tool_messages {
        if let Some((j, kind)) = first_dropped {
            return Err(ConvertError::new(
                format!("messages[{i}].content[{j}].type"),
                format!(
                    "`{kind}` blocks have no OpenAI equivalent, and nothing else is left in this user turn; \
                     remove them or add text"
                ),
            ));
        }
        if block_count == 0 {
            out.push(user_message(openai::Content::Parts(Vec::new())));
        }
    }
    Ok(())
}

/// The user text that follows tool messages is a plain string when it is one text part: that
/// is how OpenAI clients write it, and what every OpenAI-compatible server understands.
fn user_content_after_tools(
    mut parts: Vec<openai::ContentPart>,
    after_tools: bool,
) -> openai::Content {
    if after_tools && parts.len() == 1 {
        if let Some(openai::ContentPart::Text(text)) =
            parts.pop_if(|p| matches!(p, openai::ContentPart::Text(_)))
        {
            return openai::Content::Text(text.text);
        }
    }
    openai::Content::Parts(parts)
}

fn user_message(content: openai::Content) -> openai::Message {
    openai::Message::User(openai::UserMessage {
        content,
        name: None,
        extra: Map::new(),
    })
}

fn tool_message(
    result: anthropic::ToolResultBlock,
    base: &str,
    moved_media: &mut Vec<openai::ContentPart>,
    losses: &mut Losses,
) -> openai::Message {
    let anthropic::ToolResultBlock {
        tool_use_id,
        content,
        is_error,
        cache_control,
        extra,
    } = result;
    let mut text = match content {
        None => String::new(),
        Some(anthropic::Content::Text(text)) => text,
        Some(anthropic::Content::Blocks(blocks)) => {
            let mut texts = Vec::new();
            for (k, block) in blocks.into_iter().enumerate() {
                let path = format!("{base}/content/{k}");
                let moved = "moved into the user message after the tool messages: OpenAI tool messages hold only text";
                match block {
                    anthropic::ContentBlock::Text(text) => {
                        texts.push(text_part(text, &path, losses).text)
                    }
                    anthropic::ContentBlock::Image(image) => {
                        if let Some(part) = image_part(image, &path, losses) {
                            losses.approximated(path, moved);
                            moved_media.push(part);
                        }
                    }
                    anthropic::ContentBlock::Document(document) => {
                        if let Some(part) = document_part(document, &path, losses) {
                            losses.approximated(path, moved);
                            moved_media.push(part);
                        }
                    }
                    other => losses.dropped(
                        path,
                        format!(
                            "`{}` blocks in a tool result have no OpenAI equivalent",
                            other.type_name()
                        ),
                    ),
                }
            }
            if texts.len() > 1 {
                losses.approximated(
                    format!("{base}/content"),
                    "text blocks joined with newlines into the one text of the tool message",
                );
            }
            texts.join("\n")
        }
    };
    if is_error == Some(true) {
        text.insert_str(0, TOOL_ERROR_PREFIX);
        losses.approximated(
            format!("{base}/is_error"),
            format!("OpenAI tool messages have no error flag; marked with the prefix `{TOOL_ERROR_PREFIX}`"),
        );
    }
    report_cache_control(cache_control.as_ref(), base, losses);
    losses.dropped_extra(base, &extra, "OpenAI");
    openai::Message::Tool(openai::ToolMessage {
        content: openai::Content::Text(text),
        tool_call_id: tool_use_id,
        extra: Map::new(),
    })
}

/// An assistant turn: text as content (a string for one block, parts for several, null when
/// there are only tool calls), tool calls, and thinking as `reasoning_content` plus the blocks
/// verbatim in `thinking_blocks`, so that they can be replayed with their signatures.
fn assistant_turn(content: anthropic::Content, i: usize, losses: &mut Losses) -> openai::Message {
    let blocks = match content {
        anthropic::Content::Text(text) => {
            return openai::Message::Assistant(openai::AssistantMessage {
                content: Some(openai::Content::Text(text)),
                ..Default::default()
            })
        }
        anthropic::Content::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    let mut reasoning = Vec::new();
    let mut thinking_blocks = Vec::new();

    for (j, block) in blocks.into_iter().enumerate() {
        let path = format!("/messages/{i}/content/{j}");
        match block {
            anthropic::ContentBlock::Text(text) => {
                if !tool_calls.is_empty() {
                    losses.approximated(
                        path.as_str(),
                        "text after a tool call moved before it: OpenAI keeps text and tool calls apart",
                    );
                }
                texts.push(text_part(text, &path, losses));
            }
            anthropic::ContentBlock::ToolUse(tool_use) => {
                tool_calls.push(tool_call(tool_use, &path, losses))
            }
            anthropic::ContentBlock::Thinking(thinking) => {
                if !thinking.thinking.is_empty() {
                    reasoning.push(thinking.thinking.clone());
                }
                thinking_blocks
                    .extend(serde_json::to_value(anthropic::ContentBlock::Thinking(thinking)).ok());
            }
            block @ anthropic::ContentBlock::RedactedThinking(_) => {
                thinking_blocks.extend(serde_json::to_value(block).ok());
            }
            other => losses.dropped(
                path,
                format!(
                    "`{}` blocks in an assistant turn have no OpenAI equivalent",
                    other.type_name()
                ),
            ),
        }
    }

    let content = match texts.len() {
        // OpenAI needs content on an assistant message unless it calls tools.
        0 if tool_calls.is_empty() => Some(openai::Content::Text(String::new())),
        0 => None,
        1 => texts.pop().map(|part| openai::Content::Text(part.text)),
        _ => Some(openai::Content::Parts(
            texts.into_iter().map(openai::ContentPart::Text).collect(),
        )),
    };
    openai::Message::Assistant(openai::AssistantMessage {
        content,
        refusal: None,
        name: None,
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        reasoning_content: (!reasoning.is_empty()).then(|| reasoning.join("\n\n")),
        thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
        extra: Map::new(),
    })
}

fn tool_call(
    tool_use: anthropic::ToolUseBlock,
    base: &str,
    losses: &mut Losses,
) -> openai::ToolCall {
    let anthropic::ToolUseBlock {
        id,
        name,
        input,
        cache_control,
        extra,
    } = tool_use;
    let name = target_name(name, &format!("{base}/name"), losses);
    let arguments = match input {
        Value::Null => "{}".to_owned(),
        // Arguments that were not JSON on the way in go back exactly as they came.
        Value::Object(ref map)
            if map.len() == 1 && map.get(RAW_ARGUMENTS_KEY).is_some_and(Value::is_string) =>
        {
            map.get(RAW_ARGUMENTS_KEY)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        }
        other => other.to_string(),
    };
    report_cache_control(cache_control.as_ref(), base, losses);
    losses.dropped_extra(base, &extra, "OpenAI");
    openai::ToolCall {
        id,
        kind: "function".to_owned(),
        function: openai::FunctionCall {
            name,
            arguments,
            extra: Map::new(),
        },
        extra: Map::new(),
    }
}

fn text_part(text: anthropic::TextBlock, base: &str, losses: &mut Losses) -> openai::TextPart {
    let anthropic::TextBlock {
        text,
        citations,
        cache_control,
        extra,
    } = text;
    if citations.is_some() {
        losses.dropped(
            format!("{base}/citations"),
            "OpenAI text parts have no citations",
        );
    }
    report_cache_control(cache_control.as_ref(), base, losses);
    losses.dropped_extra(base, &extra, "OpenAI");
    openai::TextPart {
        text,
        extra: Map::new(),
    }
}

fn image_part(
    image: anthropic::ImageBlock,
    base: &str,
    losses: &mut Losses,
) -> Option<openai::ContentPart> {
    let anthropic::ImageBlock {
        source,
        cache_control,
        extra,
    } = image;
    report_cache_control(cache_control.as_ref(), base, losses);
    losses.dropped_extra(base, &extra, "OpenAI");
    let source_path = format!("{base}/source");
    let url = match source {
        anthropic::Source::Base64(anthropic::Base64Source {
            media_type,
            data,
            extra,
        }) => {
            losses.dropped_extra(&source_path, &extra, "OpenAI");
            format!("data:{media_type};base64,{data}")
        }
        anthropic::Source::Url(anthropic::UrlSource { url, extra }) => {
            losses.dropped_extra(&source_path, &extra, "OpenAI");
            url
        }
        other => {
            losses.dropped(
                base,
                format!(
                    "image source `{}` has no OpenAI equivalent",
                    source_type(&other)
                ),
            );
            return None;
        }
    };
    Some(openai::ContentPart::ImageUrl(openai::ImageUrlPart {
        image_url: openai::ImageUrl {
            url,
            detail: None,
            extra: Map::new(),
        },
        extra: Map::new(),
    }))
}

fn document_part(
    document: anthropic::DocumentBlock,
    base: &str,
    losses: &mut Losses,
) -> Option<openai::ContentPart> {
    let anthropic::DocumentBlock {
        source,
        title,
        context,
        citations,
        cache_control,
        extra,
    } = document;
    if context.is_some() {
        losses.dropped(
            format!("{base}/context"),
            "OpenAI file parts have no document context",
        );
    }
    if citations.is_some() {
        losses.dropped(
            format!("{base}/citations"),
            "OpenAI has no document citations",
        );
    }
    report_cache_control(cache_control.as_ref(), base, losses);
    losses.dropped_extra(base, &extra, "OpenAI");
    let source_path = format!("{base}/source");
    match source {
        anthropic::Source::Base64(anthropic::Base64Source {
            media_type,
            data,
            extra,
        }) => {
            losses.dropped_extra(&source_path, &extra, "OpenAI");
            let filename = title.unwrap_or_else(|| {
                losses.synthesized(
                    format!("{base}/title"),
                    format!("OpenAI file parts want a file name; used `{DEFAULT_FILENAME}`"),
                );
                DEFAULT_FILENAME.to_owned()
            });
            Some(openai::ContentPart::File(openai::FilePart {
                file: openai::FileData {
                    file_data: Some(format!("data:{media_type};base64,{data}")),
                    file_id: None,
                    filename: Some(filename),
                    extra: Map::new(),
                },
                extra: Map::new(),
            }))
        }
        anthropic::Source::Text(anthropic::TextSource {
            media_type: _,
            data,
            extra,
        }) => {
            losses.dropped_extra(&source_path, &extra, "OpenAI");
            losses.approximated(base, "plain-text document sent as a text part");
            if title.is_some() {
                losses.dropped(format!("{base}/title"), "a text part has no title");
            }
            Some(openai::ContentPart::Text(openai::TextPart {
                text: data,
                extra: Map::new(),
            }))
        }
        other => {
            losses.dropped(
                base,
                format!(
                    "document source `{}` has no OpenAI equivalent; OpenAI takes file data",
                    source_type(&other)
                ),
            );
            None
        }
    }
}

fn source_type(source: &anthropic::Source) -> &str {
    match source {
        anthropic::Source::Base64(_) => "base64",
        anthropic::Source::Url(_) => "url",
        anthropic::Source::Text(_) => "text",
        anthropic::Source::Unknown(value) => {
            value.get("type").and_then(Value::as_str).unwrap_or("?")
        }
    }
}

fn report_cache_control(cache_control: Option<&Value>, base: &str, losses: &mut Losses) {
    if cache_control.is_some() {
        losses.dropped(
            format!("{base}/cache_control"),
            "OpenAI caches prompt prefixes automatically",
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

fn convert_tools(tools: Vec<anthropic::Tool>, losses: &mut Losses) -> Vec<openai::Tool> {
    let mut converted = Vec::new();
    for (k, tool) in tools.into_iter().enumerate() {
        let base = format!("/tools/{k}");
        let anthropic::Tool {
            kind,
            name,
            description,
            input_schema,
            strict,
            cache_control,
            extra,
        } = tool;
        if let Some(kind) = kind.filter(|kind| kind != "custom") {
            losses.dropped(
                base,
                format!(
                    "server tool `{kind}` runs on Anthropic's servers; OpenAI has no equivalent"
                ),
            );
            continue;
        }
        let name = target_name(name, &format!("{base}/name"), losses);
        report_cache_control(cache_control.as_ref(), &base, losses);
        losses.dropped_extra(&base, &extra, "OpenAI");
        converted.push(openai::Tool {
            kind: "function".to_owned(),
            function: openai::FunctionDefinition {
                name,
                description,
                parameters: input_schema,
                strict,
                extra: Map::new(),
            },
            extra: Map::new(),
        });
    }
    converted
}

fn convert_tool_choice(
    choice: Option<anthropic::ToolChoice>,
    has_tools: bool,
    losses: &mut Losses,
) -> Result<(Option<openai::ToolChoice>, Option<bool>), ConvertError> {
    let Some(choice) = choice else {
        return Ok((None, None));
    };
    let mode = |m: &str| openai::ToolChoice::Mode(m.to_owned());
    let (converted, disable_parallel, extra, forced) = match choice {
        anthropic::ToolChoice::Auto(anthropic::ToolChoiceOptions {
            disable_parallel_tool_use,
            extra,
        }) => (mode("auto"), disable_parallel_tool_use, extra, false),
        anthropic::ToolChoice::Any(anthropic::ToolChoiceOptions {
            disable_parallel_tool_use,
            extra,
        }) => (mode("required"), disable_parallel_tool_use, extra, true),
        anthropic::ToolChoice::None(anthropic::ToolChoiceOptions {
            disable_parallel_tool_use,
            extra,
        }) => (mode("none"), disable_parallel_tool_use, extra, false),
        anthropic::ToolChoice::Tool(anthropic::NamedToolChoice {
            name,
            disable_parallel_tool_use,
            extra,
        }) => {
            let name = target_name(name, "/tool_choice/name", losses);
            let named = openai::ToolChoice::Named(openai::NamedToolChoice {
                kind: "function".to_owned(),
                function: openai::NamedFunction {
                    name,
                    extra: Map::new(),
                },
                extra: Map::new(),
            });
            (named, disable_parallel_tool_use, extra, true)
        }
        anthropic::ToolChoice::Unknown(value) => {
            let kind = value.get("type").and_then(Value::as_str).unwrap_or("?");
            return Err(ConvertError::new(
                "tool_choice.type",
                format!("unknown tool_choice type `{kind}`; use auto, any, tool or none"),
            ));
        }
    };
    losses.dropped_extra("/tool_choice", &extra, "OpenAI");
    if !has_tools {
        // OpenAI rejects tool_choice and parallel_tool_calls without tools; without tools,
        // `auto` and `none` mean the same as nothing.
        if forced {
            losses.dropped(
                "/tool_choice",
                "no client tools are left, and OpenAI rejects tool_choice without tools",
            );
        }
        return Ok((None, None));
    }
    Ok((
        Some(converted),
        (disable_parallel == Some(true)).then_some(false),
    ))
}

fn reasoning_effort(
    thinking: Option<anthropic::ThinkingConfig>,
    config_effort: Option<String>,
    losses: &mut Losses,
) -> Option<String> {
    match thinking {
        Some(anthropic::ThinkingConfig::Enabled(anthropic::ThinkingEnabled {
            budget_tokens,
            extra,
        })) => {
            losses.dropped_extra("/thinking", &extra, "OpenAI");
            let effort = vocab::effort_for_thinking_budget(budget_tokens);
            if vocab::thinking_budget_for_effort(effort) != Some(Some(budget_tokens)) {
                losses.approximated(
                    "/thinking/budget_tokens",
                    format!("OpenAI has effort levels, not budgets; {budget_tokens} tokens sent as `{effort}`"),
                );
            }
            if config_effort.is_some() {
                losses.dropped(
                    "/output_config/effort",
                    "the thinking budget already sets `reasoning_effort`",
                );
            }
            Some(effort.to_owned())
        }
        Some(anthropic::ThinkingConfig::Adaptive(anthropic::ThinkingOther { extra })) => {
            losses.dropped_extra("/thinking", &extra, "OpenAI");
            match config_effort {
                Some(effort) => shared_effort(effort, losses),
                None => {
                    losses.approximated(
                        "/thinking",
                        "adaptive thinking has no OpenAI equivalent; the upstream's default reasoning effort applies",
                    );
                    None
                }
            }
        }
        // Disabled is what OpenAI does without `reasoning_effort`.
        Some(anthropic::ThinkingConfig::Disabled(anthropic::ThinkingOther { extra })) => {
            losses.dropped_extra("/thinking", &extra, "OpenAI");
            if config_effort.is_some() {
                losses.dropped(
                    "/output_config/effort",
                    "thinking is disabled, so no reasoning effort is sent",
                );
            }
            None
        }
        Some(anthropic::ThinkingConfig::Unknown(value)) => {
            let kind = value.get("type").and_then(Value::as_str).unwrap_or("?");
            losses.dropped(
                "/thinking",
                format!("thinking type `{kind}` has no OpenAI equivalent"),
            );
            config_effort.and_then(|effort| shared_effort(effort, losses))
        }
        None => config_effort.and_then(|effort| shared_effort(effort, losses)),
    }
}

fn shared_effort(effort: String, losses: &mut Losses) -> Option<String> {
    if SHARED_EFFORTS.contains(&effort.as_str()) {
        Some(effort)
    } else {
        losses.dropped(
            "/output_config/effort",
            format!("effort `{effort}` has no OpenAI `reasoning_effort` equivalent"),
        );
        None
    }
}

fn response_format(
    format: Option<Value>,
    legacy_format: Option<Value>,
    losses: &mut Losses,
) -> Option<openai::ResponseFormat> {
    let (format, path) = match (format, legacy_format) {
        (Some(format), legacy) => {
            if legacy.is_some() {
                losses.dropped("/output_format", "`output_config.format` takes precedence");
            }
            (format, "/output_config/format")
        }
        (None, Some(legacy)) => (legacy, "/output_format"),
        (None, None) => return None,
    };
    let Value::Object(mut format) = format else {
        losses.dropped(path, "the output format is not an object");
        return None;
    };
    let kind = format.remove("type");
    let schema = format.remove("schema");
    let (Some("json_schema"), Some(schema)) = (kind.as_ref().and_then(Value::as_str), schema)
    else {
        losses.dropped(
            path,
            "only `json_schema` output formats with a `schema` have an OpenAI equivalent",
        );
        return None;
    };
    losses.dropped_extra(path, &format, "OpenAI");
    losses.synthesized(
        format!("{path}/name"),
        format!("OpenAI requires a schema name; used `{DEFAULT_SCHEMA_NAME}`"),
    );
    Some(openai::ResponseFormat {
        kind: "json_schema".to_owned(),
        json_schema: Some(openai::JsonSchemaFormat {
            name: DEFAULT_SCHEMA_NAME.to_owned(),
            description: None,
            schema: Some(schema),
            // Anthropic always enforces the schema.
            strict: Some(true),
            extra: Map::new(),
        }),
        extra: Map::new(),
    })
}

fn stop(stop_sequences: Option<Vec<String>>, losses: &mut Losses) -> Option<OneOrMany> {
    let mut sequences = stop_sequences?;
    for k in MAX_STOP_SEQUENCES..sequences.len() {
        losses.dropped(
            format!("/stop_sequences/{k}"),
            format!("OpenAI accepts at most {MAX_STOP_SEQUENCES} stop sequences"),
        );
    }
    sequences.truncate(MAX_STOP_SEQUENCES);
    (!sequences.is_empty()).then_some(OneOrMany::Many(sequences))
}

fn safety_identifier(metadata: anthropic::Metadata, losses: &mut Losses) -> Option<String> {
    let anthropic::Metadata { user_id, extra } = metadata;
    losses.dropped_extra("/metadata", &extra, "OpenAI");
    let user_id = user_id?;
    if user_id.chars().count() <= MAX_SAFETY_IDENTIFIER_LEN {
        return Some(user_id);
    }
    losses.approximated(
        "/metadata/user_id",
        format!("longer than the {MAX_SAFETY_IDENTIFIER_LEN} characters OpenAI allows; sent as a stable hash"),
    );
    Some(format!(
        "a2o-{:016x}",
        vocab::stable_hash(user_id.as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{request_openai_to_anthropic, LossKind};
    use serde_json::json;
    use LossKind::{Approximated as A, Dropped as D, Synthesized as S};

    type LossList = Vec<(String, LossKind)>;

    fn convert(input: Value) -> (Value, LossList) {
        let req: anthropic::MessagesRequest =
            serde_json::from_value(input).expect("a valid Anthropic request");
        let mut losses = Losses::new();
        let out = request(req, &RequestOptions::default(), &mut losses).expect("converts");
        (
            serde_json::to_value(out).expect("serializes"),
            loss_list(&losses),
        )
    }

    fn convert_err(input: Value) -> ConvertError {
        let req: anthropic::MessagesRequest =
            serde_json::from_value(input).expect("a valid Anthropic request");
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

    fn with_messages(messages: Value) -> Value {
        json!({"model": "m", "max_tokens": 100, "messages": messages})
    }

    fn hi() -> Value {
        with_messages(json!([{"role": "user", "content": "Hi"}]))
    }

    #[test]
    fn item_01_system_prompt_becomes_the_first_system_message() {
        let mut input = hi();
        input["system"] = json!("Be brief.");
        let (out, losses) = convert(input);
        assert_eq!(
            out["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
        );
        assert!(losses.is_empty());

        let mut input = hi();
        input["system"] = json!([{"type": "text", "text": "Only block."}]);
        let (out, _) = convert(input);
        assert_eq!(
            out["messages"][0],
            json!({"role": "system", "content": "Only block."})
        );

        let mut input = with_messages(json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "system", "content": "The user is now in a hurry."},
            {"role": "user", "content": "Quick!"}
        ]));
        input["system"] = json!([
            {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "More rules."}
        ]);
        let (out, losses) = convert(input);
        assert_eq!(
            out["messages"],
            json!([
                {"role": "system", "content": [{"type": "text", "text": "Rules."}, {"type": "text", "text": "More rules."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "system", "content": "The user is now in a hurry."},
                {"role": "user", "content": "Quick!"}
            ])
        );
        assert_eq!(losses, expect(&[("/system/0/cache_control", D)]));
    }

    #[test]
    fn item_02_content_images_and_documents() {
        let (out, losses) = convert(with_messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
             "title": "report.pdf"},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
            {"type": "container_upload", "file_id": "file_1"}
        ]}])));
        assert_eq!(
            out["messages"],
            json!([{"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "report.pdf"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "document.pdf"}},
                {"type": "text", "text": "Plain notes."}
            ]}])
        );
        assert_eq!(
            losses,
            expect(&[
                ("/messages/0/content/4/title", S),
                ("/messages/0/content/5", D),
                ("/messages/0/content/6", A),
                ("/messages/0/content/7", D)
            ])
        );

        let err = convert_err(with_messages(json!([{"role": "user", "content": [
            {"type": "container_upload", "file_id": "file_1"}
        ]}])));
        assert_eq!(err.path, "messages[0].content[0].type");

        let err = convert_err(with_messages(json!([{"role": "robot", "content": "beep"}])));
        assert_eq!(err.path, "messages[0].role");
    }

    #[test]
    fn item_03_empty_text_is_carried() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": [{"type": "text", "text": ""}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": " "},
                {"type": "tool_use", "id": "t1", "name": "run", "input": {}}
            ]}
        ])));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": ""}]},
                {"role": "assistant", "content": " ", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "run", "arguments": "{}"}}
                ]}
            ])
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn item_04_tools_become_functions() {
        let mut input = hi();
        input["tools"] = json!([
            {"name": "get_weather", "description": "Weather", "strict": true,
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
             "cache_control": {"type": "ephemeral"}},
            {"type": "custom", "name": "files.read", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"name": "later", "input_schema": {"type": "object"}, "defer_loading": true}
        ]);
        let (out, losses) = convert(input);
        let short = vocab::target_tool_name("files.read").into_owned();
        assert_eq!(
            out["tools"],
            json!([
                {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
                {"type": "function", "function": {"name": short, "parameters": {"type": "object"}}},
                {"type": "function", "function": {"name": "later", "parameters": {"type": "object"}}}
            ])
        );
        assert_eq!(
            losses,
            expect(&[
                ("/tools/0/cache_control", D),
                ("/tools/1/name", A),
                ("/tools/2", D),
                ("/tools/3/defer_loading", D)
            ])
        );
    }

    #[test]
    fn item_05_tool_choice_and_parallel_tool_use() {
        let with_tools = |choice: Value| {
            let mut input = hi();
            input["tools"] = json!([{"name": "f", "input_schema": {"type": "object"}}]);
            input["tool_choice"] = choice;
            input
        };
        for (choice, expected) in [
            (json!({"type": "auto"}), json!("auto")),
            (json!({"type": "any"}), json!("required")),
            (json!({"type": "none"}), json!("none")),
            (
                json!({"type": "tool", "name": "f"}),
                json!({"type": "function", "function": {"name": "f"}}),
            ),
        ] {
            let (out, losses) = convert(with_tools(choice));
            assert_eq!(out["tool_choice"], expected);
            assert!(out.get("parallel_tool_calls").is_none());
            assert!(losses.is_empty());
        }

        let (out, _) = convert(with_tools(
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ));
        assert_eq!(out["tool_choice"], json!("auto"));
        assert_eq!(out["parallel_tool_calls"], json!(false));

        assert_eq!(
            convert_err(with_tools(json!({"type": "sometimes"}))).path,
            "tool_choice.type"
        );

        // Only a server tool: nothing is left for OpenAI, which rejects tool_choice without tools.
        let mut input = hi();
        input["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
        input["tool_choice"] = json!({"type": "any", "disable_parallel_tool_use": true});
        let (out, losses) = convert(input);
        assert!(out.get("tools").is_none() && out.get("tool_choice").is_none());
        assert!(out.get("parallel_tool_calls").is_none());
        assert_eq!(losses, expect(&[("/tools/0", D), ("/tool_choice", D)]));
    }

    #[test]
    fn item_06_tool_use_and_tool_results() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Weather and a chart?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "chart", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "before"},
                {"type": "tool_result", "tool_use_id": "t1", "content": [
                    {"type": "text", "text": "sunny"}, {"type": "text", "text": "22C"}
                ]},
                {"type": "tool_result", "tool_use_id": "t2", "is_error": true, "content": [
                    {"type": "text", "text": "partial chart"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
                ]},
                {"type": "text", "text": "after"}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "One"}, {"type": "text", "text": "Two"}
            ]},
            {"role": "user", "content": "ok"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t3", "name": "chart", "input": {"x": [1, 2]}}]}
        ])));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": "Weather and a chart?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "t2", "type": "function", "function": {"name": "chart", "arguments": "{}"}}
                ]},
                {"role": "tool", "content": "sunny\n22C", "tool_call_id": "t1"},
                {"role": "tool", "content": "[tool error] partial chart", "tool_call_id": "t2"},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "text", "text": "before"},
                    {"type": "text", "text": "after"}
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}]},
                {"role": "user", "content": "ok"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "t3", "type": "function", "function": {"name": "chart", "arguments": "{\"x\":[1,2]}"}}
                ]}
            ])
        );
        assert_eq!(
            losses,
            expect(&[
                ("/messages/2/content/0", A),
                ("/messages/2/content/1/content", A),
                ("/messages/2/content/2/content/1", A),
                ("/messages/2/content/2/is_error", A)
            ])
        );
    }

    #[test]
    fn item_07_max_tokens_becomes_max_completion_tokens() {
        let (out, losses) = convert(hi());
        assert_eq!(out["max_completion_tokens"], json!(100));
        assert!(out.get("max_tokens").is_none());
        assert!(losses.is_empty());
    }

    #[test]
    fn item_08_stop_sequences_become_at_most_four_stops() {
        let mut input = hi();
        input["stop_sequences"] = json!(["a", "b", "c", "d", "e", "f"]);
        let (out, losses) = convert(input);
        assert_eq!(out["stop"], json!(["a", "b", "c", "d"]));
        assert_eq!(
            losses,
            expect(&[("/stop_sequences/4", D), ("/stop_sequences/5", D)])
        );
    }

    #[test]
    fn item_09_sampling_is_carried_and_top_k_dropped() {
        let mut input = hi();
        input["temperature"] = json!(0.3);
        input["top_p"] = json!(0.8);
        input["top_k"] = json!(40);
        let (out, losses) = convert(input);
        assert_eq!(
            (out["temperature"].clone(), out["top_p"].clone()),
            (json!(0.3), json!(0.8))
        );
        assert!(out.get("top_k").is_none());
        assert_eq!(losses, expect(&[("/top_k", D)]));
    }

    #[test]
    fn item_10_thinking_and_effort_become_reasoning_effort() {
        let case = |thinking: Option<Value>, output_config: Option<Value>| {
            let mut input = hi();
            if let Some(thinking) = thinking {
                input["thinking"] = thinking;
            }
            if let Some(output_config) = output_config {
                input["output_config"] = output_config;
            }
            let (out, losses) = convert(input);
            (out.get("reasoning_effort").cloned(), losses)
        };
        assert_eq!(
            case(
                Some(json!({"type": "enabled", "budget_tokens": 16384})),
                None
            ),
            (Some(json!("high")), vec![])
        );
        assert_eq!(
            case(
                Some(json!({"type": "enabled", "budget_tokens": 10000})),
                None
            ),
            (
                Some(json!("medium")),
                expect(&[("/thinking/budget_tokens", A)])
            )
        );
        assert_eq!(
            case(
                Some(json!({"type": "adaptive"})),
                Some(json!({"effort": "high"}))
            ),
            (Some(json!("high")), vec![])
        );
        assert_eq!(
            case(Some(json!({"type": "adaptive"})), None),
            (None, expect(&[("/thinking", A)]))
        );
        assert_eq!(
            case(Some(json!({"type": "disabled"})), None),
            (None, vec![])
        );
        assert_eq!(
            case(None, Some(json!({"effort": "low"}))),
            (Some(json!("low")), vec![])
        );
        // OpenAI's reasoning_effort has `xhigh` and `max` too (see the OpenAPI spec).
        assert_eq!(
            case(None, Some(json!({"effort": "max"}))),
            (Some(json!("max")), vec![])
        );
        assert_eq!(
            case(None, Some(json!({"effort": "ultra", "task_budget": 5}))),
            (
                None,
                expect(&[
                    ("/output_config/effort", D),
                    ("/output_config/task_budget", D)
                ])
            )
        );
        assert_eq!(
            case(
                Some(json!({"type": "enabled", "budget_tokens": 2048, "display": "summarized"})),
                None
            ),
            (Some(json!("low")), expect(&[("/thinking/display", D)]))
        );
    }

    #[test]
    fn item_11_assistant_thinking_becomes_reasoning_content_and_thinking_blocks() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "First.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "ZW5j"},
                {"type": "thinking", "thinking": "Second.", "signature": "c2lnMg=="},
                {"type": "text", "text": "A"}
            ]},
            {"role": "user", "content": "Q2"}
        ])));
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": "A", "reasoning_content": "First.\n\nSecond.", "thinking_blocks": [
                {"type": "thinking", "thinking": "First.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "ZW5j"},
                {"type": "thinking", "thinking": "Second.", "signature": "c2lnMg=="}
            ]})
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn item_12_structured_output_becomes_response_format() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let expected = json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": true}});

        let mut input = hi();
        input["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
        let (out, losses) = convert(input);
        assert_eq!(out["response_format"], expected);
        assert_eq!(losses, expect(&[("/output_config/format/name", S)]));

        let mut input = hi();
        input["output_format"] = json!({"type": "json_schema", "schema": schema});
        let (out, losses) = convert(input);
        assert_eq!(out["response_format"], expected);
        assert_eq!(losses, expect(&[("/output_format/name", S)]));

        let mut input = hi();
        input["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
        input["output_format"] = json!({"type": "json_schema", "schema": {}});
        let (out, losses) = convert(input);
        assert_eq!(out["response_format"], expected);
        assert_eq!(
            losses,
            expect(&[("/output_format", D), ("/output_config/format/name", S)])
        );
    }

    #[test]
    fn item_13_user_id_becomes_safety_identifier() {
        let mut input = hi();
        input["metadata"] = json!({"user_id": "user-42", "tier": "gold"});
        let (out, losses) = convert(input);
        assert_eq!(out["safety_identifier"], json!("user-42"));
        assert!(out.get("user").is_none());
        assert_eq!(losses, expect(&[("/metadata/tier", D)]));

        // Claude Code's user_id is a long JSON string.
        let long = r#"{"device_id":"0123456789abcdef0123456789abcdef","account_uuid":"","session_id":"8c1f"}"#;
        let mut input = hi();
        input["metadata"] = json!({"user_id": long});
        let (out, losses) = convert(input);
        let hashed = format!("a2o-{:016x}", vocab::stable_hash(long.as_bytes()));
        assert_eq!(out["safety_identifier"], json!(hashed));
        assert!(hashed.len() <= MAX_SAFETY_IDENTIFIER_LEN);
        assert_eq!(losses, expect(&[("/metadata/user_id", A)]));
    }

    #[test]
    fn item_14_cache_control_is_dropped_everywhere() {
        let cache = json!({"type": "ephemeral", "ttl": "1h"});
        let mut input = with_messages(json!([
            {"role": "user", "content": [
                {"type": "text", "text": "doc", "cache_control": cache},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}, "cache_control": cache}
            ]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}, "cache_control": cache}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok", "cache_control": cache}]}
        ]));
        input["system"] = json!([{"type": "text", "text": "sys", "cache_control": cache}]);
        input["tools"] =
            json!([{"name": "f", "input_schema": {"type": "object"}, "cache_control": cache}]);
        let (out, losses) = convert(input);
        assert!(!out.to_string().contains("cache_control"));
        assert_eq!(
            losses,
            expect(&[
                ("/system/0/cache_control", D),
                ("/messages/0/content/0/cache_control", D),
                ("/messages/0/content/1/cache_control", D),
                ("/messages/1/content/0/cache_control", D),
                ("/messages/2/content/0/cache_control", D),
                ("/tools/0/cache_control", D)
            ])
        );
    }

    #[test]
    fn item_15_anthropic_only_fields_are_reported() {
        let mut input = hi();
        input["service_tier"] = json!("auto");
        input["container"] = json!("container_1");
        input["mcp_servers"] = json!([]);
        input["context_management"] = json!({"edits": []});
        let (out, losses) = convert(input);
        assert_eq!(
            out,
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 100})
        );
        assert_eq!(
            losses,
            expect(&[
                ("/service_tier", D),
                ("/container", D),
                ("/mcp_servers", D),
                ("/context_management", D)
            ])
        );
    }

    #[test]
    fn item_16_stream_asks_for_usage() {
        let mut input = hi();
        input["stream"] = json!(true);
        let (out, losses) = convert(input);
        assert_eq!(out["stream"], json!(true));
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        assert!(losses.is_empty());

        let mut input = hi();
        input["stream"] = json!(false);
        let (out, _) = convert(input);
        assert_eq!(out["stream"], json!(false));
        assert!(out.get("stream_options").is_none());
    }

    #[test]
    fn item_17_no_nulls_for_absent_fields() {
        let (out, losses) = convert(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}),
        );
        assert_eq!(
            out,
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 5})
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn pitfall_11_stop_sequences_become_stop() {
        let mut input = hi();
        input["stop_sequences"] = json!(["```"]);
        let (out, losses) = convert(input);
        assert_eq!(out["stop"], json!(["```"]));
        assert!(out.get("stop_sequences").is_none());
        assert!(losses.is_empty());
    }

    #[test]
    fn pitfall_12_max_tokens_is_sent_as_max_completion_tokens() {
        let (out, _) = convert(hi());
        assert_eq!(out["max_completion_tokens"], json!(100));
        assert!(out.get("max_tokens").is_none());
    }

    #[test]
    fn pitfall_13_anthropic_only_keys_do_not_leak() {
        let mut input = with_messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ]}]));
        input["top_k"] = json!(5);
        input["thinking"] = json!({"type": "enabled", "budget_tokens": 2048, "display": "omitted"});
        let (out, losses) = convert(input);
        let text = out.to_string();
        for key in [
            "cache_control",
            "ttl",
            "top_k",
            "thinking",
            "display",
            "budget_tokens",
        ] {
            assert!(!text.contains(key), "{key} leaked: {text}");
        }
        assert_eq!(out["reasoning_effort"], json!("low"));
        assert_eq!(
            losses,
            expect(&[
                ("/messages/0/content/0/cache_control", D),
                ("/top_k", D),
                ("/thinking/display", D)
            ])
        );
    }

    #[test]
    fn pitfall_14_empty_text_and_tool_only_turns() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": ""},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
            {"role": "assistant", "content": []}
        ])));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": ""},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]},
                {"role": "tool", "content": "", "tool_call_id": "t1"},
                {"role": "assistant", "content": ""}
            ])
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn pitfall_15_text_beside_tool_result_kept_in_legal_order() {
        let conversation = |user_blocks: Value| {
            with_messages(json!([
                {"role": "user", "content": "Go"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Running."},
                    {"type": "tool_use", "id": "t1", "name": "run", "input": {}}
                ]},
                {"role": "user", "content": user_blocks}
            ]))
        };
        let expected = json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": "Running.", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "run", "arguments": "{}"}}
            ]},
            {"role": "tool", "content": "done", "tool_call_id": "t1"},
            {"role": "user", "content": "What next?"}
        ]);

        let (out, losses) = convert(conversation(json!([
            {"type": "tool_result", "tool_use_id": "t1", "content": "done"},
            {"type": "text", "text": "What next?"}
        ])));
        assert_eq!(out["messages"], expected);
        assert!(losses.is_empty());

        let (out, losses) = convert(conversation(json!([
            {"type": "text", "text": "What next?"},
            {"type": "tool_result", "tool_use_id": "t1", "content": "done"}
        ])));
        assert_eq!(out["messages"], expected);
        assert_eq!(losses, expect(&[("/messages/2/content/0", A)]));
    }

    #[test]
    fn pitfall_16_every_tool_use_is_kept() {
        let (out, losses) = convert(with_messages(json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "run"},
                {"type": "tool_use", "id": "t2", "name": "run", "input": {"_a2o_raw_arguments": "{\"cmd\": \"ls"}},
                {"type": "tool_use", "id": "t3", "name": "run", "input": {"nested": {"a": "ü \"q\""}}}
            ]}
        ])));
        let calls = &out["messages"][1]["tool_calls"];
        assert_eq!(calls[0]["function"]["arguments"], json!("{}"));
        assert_eq!(calls[1]["function"]["arguments"], json!("{\"cmd\": \"ls"));
        assert_eq!(
            calls[2]["function"]["arguments"],
            json!(r#"{"nested":{"a":"ü \"q\""}}"#)
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn pitfall_17_temperature_and_top_p_pass_to_openai_together() {
        let mut input = hi();
        input["temperature"] = json!(0.7);
        input["top_p"] = json!(0.9);
        let (out, losses) = convert(input);
        assert_eq!(
            (out["temperature"].clone(), out["top_p"].clone()),
            (json!(0.7), json!(0.9))
        );
        assert!(losses.is_empty());
    }

    #[test]
    fn pitfall_18_long_tool_names_are_shortened_the_same_everywhere() {
        let long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here";
        let short = vocab::target_tool_name(long).into_owned();
        let mut input = with_messages(json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": long, "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}
        ]));
        input["tools"] = json!([{"name": long, "input_schema": {"type": "object"}}]);
        input["tool_choice"] = json!({"type": "tool", "name": long});
        let (out, losses) = convert(input);
        assert_eq!(out["tools"][0]["function"]["name"], json!(short));
        assert_eq!(out["tool_choice"]["function"]["name"], json!(short));
        assert_eq!(
            out["messages"][1]["tool_calls"][0]["function"]["name"],
            json!(short)
        );
        assert_eq!(
            losses,
            expect(&[
                ("/messages/1/content/0/name", A),
                ("/tools/0/name", A),
                ("/tool_choice/name", A)
            ])
        );
        assert_eq!(vocab::ToolNames::from_names([long]).restore(&short), long);
    }

    #[test]
    fn pitfall_19_tool_choice_parallel_and_is_error() {
        let mut input = with_messages(json!([
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "denied", "is_error": true}]}
        ]));
        input["tools"] = json!([{"name": "f", "input_schema": {"type": "object"}}]);
        input["tool_choice"] = json!({"type": "any", "disable_parallel_tool_use": true});
        let (out, losses) = convert(input);
        assert_eq!(out["tool_choice"], json!("required"));
        assert_eq!(out["parallel_tool_calls"], json!(false));
        assert_eq!(
            out["messages"][2],
            json!({"role": "tool", "content": "[tool error] denied", "tool_call_id": "t1"})
        );
        assert_eq!(losses, expect(&[("/messages/2/content/0/is_error", A)]));
    }

    #[test]
    fn pitfall_20_images_and_pdfs() {
        let (out, losses) = convert(with_messages(json!([{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
             "title": "a.pdf"}
        ]}])));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
            ])
        );
        assert_eq!(losses, expect(&[("/messages/0/content/2", D)]));
    }

    /// A→O→A: the second leg must give the client's request back. Returns the losses of both
    /// legs.
    fn round_trip(input: &Value) -> (Value, LossList, LossList) {
        let req: anthropic::MessagesRequest =
            serde_json::from_value(input.clone()).expect("a valid Anthropic request");
        let mut there = Losses::new();
        let openai = request(req, &RequestOptions::default(), &mut there).expect("converts");
        let mut back = Losses::new();
        let anthropic =
            request_openai_to_anthropic::request(openai, &RequestOptions::default(), &mut back)
                .expect("converts back");
        (
            serde_json::to_value(anthropic).expect("serializes"),
            loss_list(&there),
            loss_list(&back),
        )
    }

    #[test]
    fn round_trip_anthropic_openai_anthropic() {
        let claude_code_like = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 32000,
            "system": [{"type": "text", "text": "You are a coding agent."}, {"type": "text", "text": "Be careful."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                     "title": "report.pdf"}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Check the files.", "signature": "c2lnbmF0dXJl"},
                    {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a.rs"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"command": "ls", "timeout": 5}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "fn main() {}"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "a.rs\nb.rs"},
                    {"type": "text", "text": "Now fix it."}
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [
                {"name": "Read", "description": "Read a file",
                 "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
                {"name": "Bash", "description": "Run a command", "strict": true,
                 "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
            ],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 16384},
            "stop_sequences": ["END"],
            "stream": true,
            "metadata": {"user_id": "user-42"}
        });
        let (back, there, back_losses) = round_trip(&claude_code_like);
        assert_eq!(back, claude_code_like);
        assert!(there.is_empty(), "{there:?}");
        assert!(back_losses.is_empty(), "{back_losses:?}");

        // Lossy on purpose: every difference must be one of the reported losses.
        let lossy = json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 1024,
            "system": "Short.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "failed", "is_error": true}
                ]}
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "top_k": 10,
            "temperature": 0.5,
            "output_format": {"type": "json_schema", "schema": {"type": "object"}}
        });
        let (back, there, back_losses) = round_trip(&lossy);
        let mut expected = lossy.clone();
        expected["messages"][0]["content"] = json!([{"type": "text", "text": "Hi"}]);
        expected["output_config"] =
            json!({"format": {"type": "json_schema", "schema": {"type": "object"}}});
        if let Some(object) = expected.as_object_mut() {
            object.remove("top_k");
            object.remove("output_format");
        }
        assert_eq!(back, expected);
        assert_eq!(
            there,
            expect(&[
                ("/messages/0/content/0/cache_control", D),
                ("/messages/2/content/0/is_error", A),
                ("/output_format/name", S),
                ("/top_k", D)
            ])
        );
        assert_eq!(
            back_losses,
            expect(&[("/response_format/json_schema/name", D)])
        );
    }
}
