//! OpenAI request bytes → parse → convert to Anthropic → serialise → parse back as an
//! Anthropic request, as `a2o serve` does on the OpenAI front: no panic anywhere, and what we
//! produce our own parser accepts.

#![no_main]

use a2o::convert::{openai_to_anthropic, Losses, RequestOptions};
use a2o::protocol::{anthropic, openai};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = a2o::protocol::parse::<openai::ChatRequest>(data) else {
        return;
    };
    let mut losses = Losses::new();
    let Ok(converted) =
        openai_to_anthropic::request(request, &RequestOptions::default(), &mut losses)
    else {
        return;
    };
    let bytes = serde_json::to_vec(&converted).expect("a converted request serialises");
    if let Err(err) = a2o::protocol::parse::<anthropic::MessagesRequest>(&bytes) {
        panic!(
            "a2o's own Anthropic request does not parse back: {err}\n{}",
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
