//! The SSE codec against hand-written streams, a naive whole-input reference decoder, and
//! property tests for split invariance and encode/decode idempotence.

use a2o::sse::{SseDecoder, SseError, SseFrame};
use proptest::prelude::*;

type Decoded = (Vec<SseFrame>, Result<(), SseError>);

/// Decodes `input` cut into pieces at `cuts` (byte offsets), stopping at the first error.
fn decode_cut(input: &[u8], cuts: &[usize], limit: usize) -> Decoded {
    let mut decoder = SseDecoder::with_line_limit(limit);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        if let Err(e) = decoder.push(&input[start..cut], &mut out) {
            return (out, Err(e));
        }
        start = cut;
    }
    let result = decoder.finish(&mut out);
    (out, result)
}

fn decode_whole_limited(input: &[u8], limit: usize) -> Decoded {
    decode_cut(input, &[], limit)
}

fn decode_bytewise(input: &[u8], limit: usize) -> Decoded {
    let cuts: Vec<usize> = (0..input.len()).collect();
    decode_cut(input, &cuts, limit)
}

fn decode(input: &[u8]) -> Vec<SseFrame> {
    let (frames, result) = decode_whole_limited(input, 1 << 24);
    result.expect("decodes");
    // Every test input must also decode the same way one byte at a time.
    assert_eq!(decode_bytewise(input, 1 << 24), (frames.clone(), Ok(())));
    frames
}

fn data(event: Option<&str>, data: &str) -> SseFrame {
    SseFrame::new(event, data)
}

/// A straightforward reading of the rules on the whole input at once, written independently
/// of the incremental decoder: it splits lines first and decodes each whole line before
/// looking for the colon.
fn reference(input: &[u8], limit: usize) -> Decoded {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\n' => {
                lines.push(&input[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&input[start..i]);
                i += if input.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < input.len() {
        lines.push(&input[start..]);
    }

    let mut frames = Vec::new();
    let (mut event, mut buf, mut id, mut retry) = (None::<String>, String::new(), None, None);
    let dispatch = |event: &mut Option<String>,
                    buf: &mut String,
                    id: &mut Option<String>,
                    retry: &mut Option<u64>,
                    frames: &mut Vec<SseFrame>| {
        if !buf.is_empty() || event.is_some() {
            if buf.ends_with('\n') {
                buf.pop();
            }
            frames.push(SseFrame {
                event: event.take(),
                data: std::mem::take(buf),
                id: id.take(),
                retry: retry.take(),
            });
        }
        *event = None;
        buf.clear();
        *id = None;
        *retry = None;
    };
    for line in lines {
        if line.len() > limit {
            return (frames, Err(SseError::LineTooLong { limit }));
        }
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            dispatch(&mut event, &mut buf, &mut id, &mut retry, &mut frames);
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (&line[..], ""),
        };
        match name {
            "event" => event = Some(value.to_string()),
            "data" => {
                buf.push_str(value);
                buf.push('\n');
            }
            "id" if !value.contains('\0') => id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(n) = value.parse() {
                    retry = Some(n);
                }
            }
            _ => {}
        }
    }
    dispatch(&mut event, &mut buf, &mut id, &mut retry, &mut frames);
    (frames, Ok(()))
}

#[test]
fn line_endings_lf_crlf_cr() {
    let expected = vec![data(None, "a"), data(None, "b")];
    assert_eq!(decode(b"data: a\n\ndata: b\n\n"), expected);
    assert_eq!(decode(b"data: a\r\n\r\ndata: b\r\n\r\n"), expected);
    assert_eq!(decode(b"data: a\r\rdata: b\r\r"), expected);
    assert_eq!(decode(b"data: a\r\n\rdata: b\n\r\n"), expected);
}

#[test]
fn cr_at_end_of_push_then_lf_is_one_line_end() {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    decoder.push(b"data: a\r", &mut out).unwrap();
    assert!(out.is_empty());
    // Were this LF a second line end, it would be a blank line dispatching "a" here.
    decoder.push(b"\ndata: b\r", &mut out).unwrap();
    assert!(out.is_empty());
    decoder.push(b"\n\r", &mut out).unwrap();
    assert_eq!(out, vec![data(None, "a\nb")]);
    decoder.push(b"\n", &mut out).unwrap();
    decoder.finish(&mut out).unwrap();
    assert_eq!(out, vec![data(None, "a\nb")]);
}

#[test]
fn cr_then_empty_push_then_lf() {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    decoder.push(b"data: a\r", &mut out).unwrap();
    decoder.push(b"", &mut out).unwrap();
    decoder.push(b"\n", &mut out).unwrap();
    assert!(out.is_empty());
    decoder.push(b"\n", &mut out).unwrap();
    assert_eq!(out, vec![data(None, "a")]);
}

#[test]
fn multi_line_data() {
    assert_eq!(
        decode(b"data: one\ndata: two\ndata:\ndata:  four\n\n"),
        vec![data(None, "one\ntwo\n\n four")]
    );
    assert_eq!(decode(b"data\n\n"), vec![data(None, "")]);
    assert_eq!(decode(b"data\ndata\n\n"), vec![data(None, "\n")]);
}

#[test]
fn event_id_retry() {
    let frames = decode(b"event: message_start\nid: 7\nretry: 1500\ndata: {}\n\ndata: x\n\n");
    assert_eq!(
        frames,
        vec![
            SseFrame {
                event: Some("message_start".into()),
                data: "{}".into(),
                id: Some("7".into()),
                retry: Some(1500),
            },
            // id and retry belong only to the frame whose block carried them.
            data(None, "x"),
        ]
    );
    // The last occurrence wins; invalid retry and NUL-bearing id are ignored.
    let frames =
        decode(b"event: a\nevent: b\nretry: 5\nretry: 1x\nretry:\nid: 1\nid: 2\0\ndata: d\n\n");
    assert_eq!(
        frames,
        vec![SseFrame {
            event: Some("b".into()),
            data: "d".into(),
            id: Some("1".into()),
            retry: Some(5),
        }]
    );
    // A retry that overflows u64 is ignored.
    assert_eq!(
        decode(b"retry: 99999999999999999999999\ndata: d\n\n")[0].retry,
        None
    );
    // Unknown fields and fields with a space before the colon are ignored.
    assert_eq!(
        decode(b"foo: bar\ndata : no\ndata: yes\n\n"),
        vec![data(None, "yes")]
    );
}

#[test]
fn event_without_data_is_kept_but_empty_blocks_are_not() {
    assert_eq!(decode(b"event: ping\n\n"), vec![data(Some("ping"), "")]);
    assert_eq!(decode(b"event:\n\n"), vec![data(Some(""), "")]);
    assert_eq!(decode(b"\n\n\nid: 3\nretry: 10\n\n: hi\n\n"), vec![]);
    // The id of an undispatched block does not leak onto the next frame.
    assert_eq!(decode(b"id: 3\n\ndata: x\n\n"), vec![data(None, "x")]);
}

#[test]
fn comments_are_ignored() {
    assert_eq!(
        decode(b": keep-alive\n:\n:data: nope\ndata: yes\n: inside\n\n"),
        vec![data(None, "yes")]
    );
}

#[test]
fn bom_is_skipped_once_at_start() {
    let expected = vec![data(None, "a")];
    assert_eq!(decode(b"\xEF\xBB\xBFdata: a\n\n"), expected);
    for split in 1..3 {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let input = b"\xEF\xBB\xBFdata: a\n\n";
        decoder.push(&input[..split], &mut out).unwrap();
        decoder.push(b"", &mut out).unwrap();
        decoder.push(&input[split..], &mut out).unwrap();
        decoder.finish(&mut out).unwrap();
        assert_eq!(out, expected, "split at {split}");
    }
    // A second BOM is part of the line, so the field name is not "data".
    assert_eq!(decode(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), vec![]);
    // A BOM later in the stream is not special either.
    assert_eq!(decode(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"), expected);
    // A BOM prefix that turns out not to be one stays part of the first line.
    assert_eq!(decode(b"\xEF\xBBdata: a\n\n"), vec![]);
    assert_eq!(decode(b"\xEFdata: a\n\ndata: b\n\n"), vec![data(None, "b")]);
    assert_eq!(decode(b"\xEF\xBB"), vec![]);
}

#[test]
fn final_event_without_blank_line_is_dispatched() {
    assert_eq!(
        decode(b"data: a\n\ndata: b"),
        vec![data(None, "a"), data(None, "b")]
    );
    assert_eq!(decode(b"event: e\ndata: b\n"), vec![data(Some("e"), "b")]);
    assert_eq!(decode(b"data: b\r"), vec![data(None, "b")]);
    assert_eq!(decode(b""), vec![]);
    assert_eq!(decode(b": only a comment"), vec![]);
}

#[test]
fn decoder_is_reusable_after_finish() {
    let mut decoder = SseDecoder::default();
    let mut out = Vec::new();
    decoder.push(b"data: a\r", &mut out).unwrap();
    decoder.finish(&mut out).unwrap();
    decoder
        .push(b"\xEF\xBB\xBF\ndata: b\n\n", &mut out)
        .unwrap();
    assert_eq!(out, vec![data(None, "a"), data(None, "b")]);
}

#[test]
fn padded_json_data_is_kept_verbatim() {
    let stream = b"event: content_block_delta\n\
        data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}     \n\n\
        data:  \t{\"a\":1}\t \n\n";
    let frames = decode(stream);
    assert_eq!(frames[0].event.as_deref(), Some("content_block_delta"));
    assert_eq!(
        frames[0].data,
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}     "
    );
    // Only one space after the colon is removed; other whitespace stays.
    assert_eq!(frames[1].data, " \t{\"a\":1}\t ");
    let value: serde_json::Value = serde_json::from_str(&frames[0].data).unwrap();
    assert_eq!(value["delta"]["text"], "Hi");
    assert_eq!(
        decode(b"data: {\"a\":1}     \n\n"),
        vec![data(None, "{\"a\":1}     ")]
    );
}

#[test]
fn openai_stream_sample() {
    let stream = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"He\"}}]}\n\n\
        : OPENROUTER PROCESSING\n\n\
        data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo\"}}]}\n\n\
        data: [DONE]\n\n";
    let frames = decode(stream);
    assert_eq!(frames.len(), 3);
    assert!(!frames[0].is_done() && !frames[1].is_done());
    assert!(frames[2].is_done());
}

#[test]
fn done_detection() {
    assert!(data(None, "[DONE]").is_done());
    assert!(data(None, " [DONE] \t").is_done());
    assert!(data(None, "[DONE]\n").is_done());
    assert!(decode(b"data:[DONE]\n\n")[0].is_done());
    assert!(decode(b"data: [DONE]   \r\n\r\n")[0].is_done());
    assert!(!data(None, "[DONE]x").is_done());
    assert!(!data(None, "[done]").is_done());
    assert!(!data(None, "").is_done());
    assert!(!data(None, "{\"text\":\"[DONE]\"}").is_done());
}

#[test]
fn line_limit() {
    let limit = 8;
    // A line of exactly the limit is fine; the terminator does not count.
    assert_eq!(
        decode_whole_limited(b"data:123\r\n\r\n", limit),
        (vec![data(None, "123")], Ok(()))
    );
    let err = || Err(SseError::LineTooLong { limit });
    assert_eq!(
        decode_whole_limited(b"data: 1\n\ndata:1234\n\n", limit),
        (vec![data(None, "1")], err())
    );
    assert_eq!(
        decode_bytewise(b"data: 1\n\ndata:1234\n\n", limit),
        (vec![data(None, "1")], err())
    );
    // An unterminated line is refused as soon as it outgrows the limit, without waiting.
    let mut decoder = SseDecoder::with_line_limit(limit);
    let mut out = Vec::new();
    decoder.push(b"data:", &mut out).unwrap();
    assert_eq!(decoder.push(b"1234", &mut out), err());
    // The failure is permanent.
    assert_eq!(decoder.push(b"\n\n", &mut out), err());
    assert_eq!(decoder.finish(&mut out), err());
    assert_eq!(
        SseError::LineTooLong { limit: 8 }.to_string(),
        "SSE line longer than 8 bytes"
    );
}

#[test]
fn many_short_lines_within_limit() {
    let mut decoder = SseDecoder::with_line_limit(16);
    let mut out = Vec::new();
    for _ in 0..1000 {
        decoder.push(b"data: 0123456789\n", &mut out).unwrap();
    }
    decoder.push(b"\n", &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data.len(), 1000 * 11 - 1);
}

#[test]
fn invalid_utf8_becomes_replacement_character() {
    assert_eq!(decode(b"data: a\xFFb\n\n"), vec![data(None, "a\u{FFFD}b")]);
    assert_eq!(
        decode(b"event: \xC3\ndata: \xE2\x82\n\n"),
        vec![data(Some("\u{FFFD}"), "\u{FFFD}")]
    );
    // A field name with invalid bytes is not a known field.
    assert_eq!(decode(b"dat\xE1:x\ndata:y\n\n"), vec![data(None, "y")]);
}

#[test]
fn utf8_split_across_pushes_decodes_whole() {
    let input = "data: é€😀\n\n".as_bytes();
    for split in 0..=input.len() {
        let (frames, result) = decode_cut(input, &[split], 1 << 20);
        result.unwrap();
        assert_eq!(frames, vec![data(None, "é€😀")], "split at {split}");
    }
}

#[test]
fn canonical_encoding() {
    assert_eq!(data(None, "x").encode(), b"data: x\n\n");
    assert_eq!(data(None, "").encode(), b"data: \n\n");
    assert_eq!(
        data(None, "a\n\nb\n").encode(),
        b"data: a\ndata: \ndata: b\ndata: \n\n"
    );
    let frame = SseFrame {
        event: Some("e".into()),
        data: " x ".into(),
        id: Some("9".into()),
        retry: Some(30),
    };
    assert_eq!(frame.encode(), b"event: e\nid: 9\nretry: 30\ndata:  x \n\n");
    let mut out = b"prefix".to_vec();
    data(Some("ping"), "").encode_into(&mut out);
    assert_eq!(out, b"prefixevent: ping\ndata: \n\n");
}

#[test]
fn encoding_cannot_inject_lines() {
    let frame = SseFrame {
        event: Some("a\r\nevent: b".into()),
        data: "x\r\ny\rz".into(),
        id: Some("1\n\ndata: evil".into()),
        retry: None,
    };
    assert_eq!(
        frame.encode(),
        b"event: aevent: b\nid: 1data: evil\ndata: x\ndata: y\ndata: z\n\n"
    );
    assert_eq!(
        decode(&frame.encode()),
        vec![SseFrame {
            event: Some("aevent: b".into()),
            data: "x\ny\nz".into(),
            id: Some("1data: evil".into()),
            retry: None,
        }]
    );
}

#[test]
fn reference_agrees_on_samples() {
    for sample in [
        &b"\xEF\xBB\xBFevent: e\r\ndata: 1\rdata:2\n\nid: x\nretry: 3\ndata\n\n: c\nevent:\n\ndata: z"[..],
        b"data:\xF0\x9F\r\n\r\n",
        b"\r\n\n\r",
    ] {
        assert_eq!(decode_whole_limited(sample, 64), reference(sample, 64));
    }
}

fn pick(choices: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(choices).prop_map(<[u8]>::to_vec)
}

/// Bytes that look like SSE often enough to reach every rule, with arbitrary bytes mixed in.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => pick(&[b"data", b"event", b"id", b"retry", b"data: ", b"event: ping", b"retry: 100"]),
        4 => pick(&[b":", b" ", b"\n", b"\r", b"\r\n", b"\n\n"]),
        2 => pick(&[
            b"\xEF\xBB\xBF",
            b"\xEF\xBB",
            b"\xEF",
            b"[DONE]",
            b"123",
            b"\0",
            b"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", // "é€😀"
            b"{\"a\": 1}   ",
        ]),
        2 => proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(token, 0..48).prop_map(|tokens| tokens.concat())
}

fn any_line_limit() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(3),
        Just(7),
        Just(16),
        Just(1 << 24)
    ]
}

/// A string of characters drawn mostly from the ones the format treats specially.
fn text(specials: &'static str) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => proptest::sample::select(specials.chars().collect::<Vec<_>>()),
        2 => any::<char>(),
    ];
    proptest::collection::vec(ch, 0..12).prop_map(|chars| chars.into_iter().collect())
}

fn no_line_break(s: &str) -> bool {
    !s.contains(['\r', '\n'])
}

fn frame() -> impl Strategy<Value = SseFrame> {
    (
        proptest::option::of(
            text(" :a\u{FEFF}\u{FFFD}").prop_filter("single line", |s| no_line_break(s)),
        ),
        text(" \n:a\u{FEFF}\u{FFFD}").prop_filter("no CR", |s| !s.contains('\r')),
        proptest::option::of(text(" :1").prop_filter("single line, no NUL", |s| {
            no_line_break(s) && !s.contains('\0')
        })),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(event, data, id, retry)| SseFrame {
            event,
            data,
            id,
            retry,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn split_invariance(
        input in sse_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        limit in any_line_limit(),
    ) {
        let whole = decode_whole_limited(&input, limit);
        prop_assert_eq!(&decode_bytewise(&input, limit), &whole);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&decode_cut(&input, &cuts, limit), &whole);
        prop_assert_eq!(&reference(&input, limit), &whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        limit in any_line_limit(),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let cut = decode_cut(&input, &cuts, limit);
        prop_assert_eq!(&cut, &decode_whole_limited(&input, limit));
        prop_assert_eq!(&cut, &reference(&input, limit));
        for frame in &cut.0 {
            let _ = frame.is_done();
            let _ = frame.encode();
        }
    }

    #[test]
    fn encode_decode_idempotent(frames in proptest::collection::vec(frame(), 0..6)) {
        let mut encoded = Vec::new();
        for frame in &frames {
            frame.encode_into(&mut encoded);
        }
        let decoded = decode_whole_limited(&encoded, 1 << 24);
        prop_assert_eq!(&decoded, &(frames.clone(), Ok(())));
        prop_assert_eq!(&decode_bytewise(&encoded, 1 << 24), &decoded);
        let mut reencoded = Vec::new();
        for frame in &decoded.0 {
            frame.encode_into(&mut reencoded);
        }
        prop_assert_eq!(reencoded, encoded);
    }

    #[test]
    fn decode_then_encode_is_a_fixed_point(input in sse_bytes()) {
        // Whatever the decoder accepts, its canonical re-encoding decodes to the same frames.
        let (frames, _) = decode_whole_limited(&input, 1 << 24);
        let encoded: Vec<u8> = frames.iter().flat_map(SseFrame::encode).collect();
        prop_assert_eq!(decode_whole_limited(&encoded, 1 << 24), (frames, Ok(())));
    }
}
