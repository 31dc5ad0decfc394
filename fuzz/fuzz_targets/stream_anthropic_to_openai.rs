//! The Anthropic → OpenAI stream machine behind `StreamConverter`, fed arbitrary upstream bytes
//! cut at arbitrary places: no panic, the output is UTF-8 and the same however the input was
//! cut, it always ends with the client dialect's terminator (a2o closes every stream properly,
//! with an in-band error if need be), and when the upstream's stream is well-formed for its
//! dialect, the client's passes its dialect's grammar validator too. (A malformed upstream
//! stream, such as tool arguments that are not JSON, may stay malformed: a2o relays content,
//! it does not invent it.)

#![no_main]

use a2o::convert::{Losses, ResponseContext};
use a2o::protocol::Dialect;
use a2o::sse::{SseDecoder, SseFrame};
use a2o::stream::validate::{validate_anthropic_bytes, validate_openai_bytes};
use a2o::stream::StreamConverter;
use libfuzzer_sys::fuzz_target;

fn convert(flags: u8, pieces: &[&[u8]]) -> Vec<u8> {
    let ctx = ResponseContext {
        requested_model: Some("client-model".to_owned()),
        include_usage: flags & 1 == 1,
        created: Some(1_700_000_000),
        input_tokens_estimate: (flags & 2 == 2).then_some(42),
        client_model: (flags & 4 == 4).then(|| "alias".to_owned()),
        stop_sequences: vec!["STOP".to_owned()],
        ..ResponseContext::default()
    };
    let mut converter = StreamConverter::new(Dialect::Anthropic, ctx);
    let mut out = Vec::new();
    let mut losses = Losses::new();
    for piece in pieces {
        converter.push(piece, &mut out, &mut losses);
    }
    if flags & 8 == 8 {
        // The upstream went quiet: serve aborts with an idle-timeout error.
        converter.abort("idle", &mut out, &mut losses);
    } else {
        converter.finish(&mut out, &mut losses);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let whole = convert(flags, &[input]);
    let mut pieces = Vec::new();
    let mut rest = input;
    let mut size = usize::from(flags >> 4) + 1;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        pieces.push(&rest[..n]);
        rest = &rest[n..];
        size = size % 16 + 1;
    }
    let split = convert(flags, &pieces);
    assert_eq!(
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&split),
        "output must not depend on how the upstream bytes were cut"
    );
    assert!(std::str::from_utf8(&whole).is_ok(), "output is UTF-8");
    let mut decoder = SseDecoder::new();
    let mut frames: Vec<SseFrame> = Vec::new();
    decoder
        .push(&whole, &mut frames)
        .expect("a2o's output decodes");
    decoder.finish(&mut frames).expect("a2o's output decodes");
    assert!(
        frames.last().is_some_and(SseFrame::is_done),
        "the stream does not end with its terminator:\n--- input ---\n{}\n--- output ---\n{}",
        String::from_utf8_lossy(input),
        String::from_utf8_lossy(&whole)
    );
    if validate_anthropic_bytes(input).is_err() {
        return;
    }
    if let Err(violation) = validate_openai_bytes(&whole) {
        panic!(
            "a well-formed upstream stream became a malformed client stream: {violation}\n--- input ---\n{}\n--- output ---\n{}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&whole)
        );
    }
});
