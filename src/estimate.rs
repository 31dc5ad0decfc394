//! A local estimate of a request's input tokens, for `count_tokens` and `message_start` when
//! the upstream speaks OpenAI and cannot count for us. It is honest rather than exact: about
//! four bytes of text per token (the usual figure for English and code), plus what the API
//! documents for each image, counting the system prompt, messages and tool definitions.

use serde_json::Value;

use crate::protocol::anthropic::{Content, ContentBlock, MessagesRequest, Source, System};

/// Bytes of text per token.
const BYTES_PER_TOKEN: usize = 4;
/// Anthropic's figure for an image whose size we don't know: about 1,600 tokens for a
/// 1,092×1,092 image (width × height / 750).
const TOKENS_PER_IMAGE: u64 = 1600;
/// Framing of each message (role markers and separators).
const TOKENS_PER_MESSAGE: u64 = 4;
/// PDF pages are not counted without parsing the file; one page's worth is assumed.
const TOKENS_PER_DOCUMENT: u64 = 1500;

/// Estimated input tokens of an Anthropic request.
pub fn anthropic_request_tokens(request: &MessagesRequest) -> u64 {
    let mut text_bytes = 0usize;
    let mut fixed = 0u64;
    match &request.system {
        Some(System::Text(text)) => text_bytes += text.len(),
        Some(System::Blocks(blocks)) => blocks
            .iter()
            .for_each(|b| count_block(b, &mut text_bytes, &mut fixed)),
        None => {}
    }
    for tool in request.tools.iter().flatten() {
        text_bytes += tool.name.len();
        text_bytes += tool.description.as_deref().map_or(0, str::len);
        text_bytes += tool.input_schema.as_ref().map_or(0, json_len);
    }
    for message in &request.messages {
        fixed += TOKENS_PER_MESSAGE;
        match &message.content {
            Content::Text(text) => text_bytes += text.len(),
            Content::Blocks(blocks) => blocks
                .iter()
                .for_each(|b| count_block(b, &mut text_bytes, &mut fixed)),
        }
    }
    fixed + text_bytes.div_ceil(BYTES_PER_TOKEN) as u64
}

fn count_block(block: &ContentBlock, text_bytes: &mut usize, fixed: &mut u64) {
    match block {
        ContentBlock::Text(t) => *text_bytes += t.text.len(),
        ContentBlock::Image(_) => *fixed += TOKENS_PER_IMAGE,
        ContentBlock::Document(d) => match &d.source {
            Source::Text(t) => *text_bytes += t.data.len(),
            _ => *fixed += TOKENS_PER_DOCUMENT,
        },
        ContentBlock::ToolUse(t) => *text_bytes += t.name.len() + json_len(&t.input),
        ContentBlock::ToolResult(r) => match &r.content {
            Some(Content::Text(text)) => *text_bytes += text.len(),
            Some(Content::Blocks(blocks)) => blocks
                .iter()
                .for_each(|b| count_block(b, text_bytes, fixed)),
            None => {}
        },
        ContentBlock::Thinking(t) => *text_bytes += t.thinking.len(),
        ContentBlock::RedactedThinking(r) => *text_bytes += r.data.len() / 2,
        ContentBlock::Unknown(v) => *text_bytes += json_len(v),
    }
}

fn json_len(value: &Value) -> usize {
    serde_json::to_string(value).map_or(0, |s| s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn counts_system_tools_images_and_messages() {
        let plain = request(
            serde_json::json!({"model":"m","messages":[{"role":"user","content":"abcdefgh"}]}),
        );
        assert_eq!(anthropic_request_tokens(&plain), TOKENS_PER_MESSAGE + 2);
        let rich = request(serde_json::json!({
            "model":"m",
            "system":"s".repeat(400),
            "tools":[{"name":"t","input_schema":{"type":"object"}}],
            "messages":[{"role":"user","content":[
                {"type":"text","text":"abcdefgh"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}
            ]}]
        }));
        let tokens = anthropic_request_tokens(&rich);
        assert!(tokens > TOKENS_PER_IMAGE + 100, "{tokens}");
    }
}
