//! The SSE decoder on arbitrary bytes: no panic, bounded lines, the frames do not depend on
//! how the input was split, and re-encoding the frames decodes to the same frames.

#![no_main]

use a2o::sse::{SseDecoder, SseFrame};
use libfuzzer_sys::fuzz_target;

/// Small enough that fuzzed inputs cross it, so the failure path is exercised too.
const LINE_LIMIT: usize = 256;

fn decode(pieces: &[&[u8]]) -> (Vec<SseFrame>, bool) {
    let mut decoder = SseDecoder::with_line_limit(LINE_LIMIT);
    let mut frames = Vec::new();
    for piece in pieces {
        if decoder.push(piece, &mut frames).is_err() {
            return (frames, false);
        }
    }
    let ok = decoder.finish(&mut frames).is_ok();
    (frames, ok)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let (whole, whole_ok) = decode(&[input]);
    // Cut into pieces of 1..=16 bytes, sizes drawn from the first byte.
    let mut pieces = Vec::new();
    let mut rest = input;
    let mut size = usize::from(split % 16) + 1;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        pieces.push(&rest[..n]);
        rest = &rest[n..];
        size = size % 16 + 1;
    }
    let (split_frames, split_ok) = decode(&pieces);
    assert_eq!(whole_ok, split_ok, "failure must not depend on the split");
    if whole_ok {
        assert_eq!(whole, split_frames, "frames must not depend on the split");
        // Canonical encoding round-trips.
        let mut encoded = Vec::new();
        for frame in &whole {
            frame.encode_into(&mut encoded);
        }
        let mut decoder = SseDecoder::new();
        let mut again = Vec::new();
        decoder
            .push(&encoded, &mut again)
            .expect("own encoding decodes");
        decoder.finish(&mut again).expect("own encoding decodes");
        let again_encoded: Vec<u8> = again.iter().flat_map(SseFrame::encode).collect();
        assert_eq!(encoded, again_encoded, "encoding is idempotent");
    }
});
