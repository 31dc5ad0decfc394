//! Anthropic request bytes → parse → convert to OpenAI → serialise → parse back as an OpenAI
//! request, as `a2o serve` does on the Anthropic front: no panic anywhere, and what we
//! produce our own parser accepts.

#![no_main]

use a2o::convert::{anthropic_to_openai, Losses, RequestOptions};
use a2o::protocol::{anthropic, openai};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = a2o::protocol::parse::<anthropic::MessagesRequest>(data) else {
        return;
    };
    // What serve computes from every Anthropic request before converting it.
    let _ = a2o::estimate::anthropic_request_tokens(&request);
    let mut losses = Losses::new();
    let Ok(converted) =
        anthropic_to_openai::request(request, &RequestOptions::default(), &mut losses)
    else {
        return;
    };
    let bytes = serde_json::to_vec(&converted).expect("a converted request serialises");
    if let Err(err) = a2o::protocol::parse::<openai::ChatRequest>(&bytes) {
        panic!(
            "a2o's own OpenAI request does not parse back: {err}\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    for loss in losses.iter() {
        assert!(
            loss.path.is_empty() || loss.path.starts_with('/'),
            "loss paths are JSON pointers: {}",
            loss.path
        );
    }
});
