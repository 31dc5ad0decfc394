//! Server-Sent Events framing, owned here for both directions: an incremental decoder that
//! turns arbitrarily split upstream bytes into [`SseFrame`]s following the WHATWG
//! event-stream parsing rules, and the canonical encoder that writes frames back out.
//! Nothing here looks inside `data`; the JSON in it belongs to the stream converters.
//!
//! Deliberate departures from the WHATWG algorithm, all for a proxy rather than a browser:
//! - A block that sets `event:` is dispatched even when it has no `data:` line (the spec
//!   drops it), because servers send keep-alives such as `event: ping` with no data and a
//!   translator must still see them. A block with neither data nor event is dropped, as in
//!   the spec.
//! - `id` and `retry` are attached only to the frame whose block carried them; the decoder
//!   keeps no "last event id" across frames. A block holding only `id:`/`retry:` yields no
//!   frame, so those values are dropped.
//! - At end of input ([`SseDecoder::finish`]) an unterminated last line is processed and a
//!   pending event is dispatched, where the spec discards both: upstreams that close the
//!   connection right after the last `data:` line would otherwise lose their final event.
//! - An empty `event:` value is kept as `Some("")` instead of meaning "message", so decoding
//!   and re-encoding stay faithful.
//! - A `retry` value too large for `u64` is ignored.
//! - Lines longer than the decoder's limit are an error ([`SseError::LineTooLong`]) rather
//!   than buffered without bound, and the decoder stays failed afterwards.

use std::io::Write as _;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";
const DEFAULT_LINE_LIMIT: usize = 16 * 1024 * 1024;

/// One dispatched event: the fields of one blank-line-terminated block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseFrame {
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`, without a trailing newline.
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

impl SseFrame {
    pub fn new(event: Option<&str>, data: impl Into<String>) -> Self {
        SseFrame {
            event: event.map(str::to_owned),
            data: data.into(),
            id: None,
            retry: None,
        }
    }

    /// Whether this is OpenAI's end-of-stream marker, `data: [DONE]`. Surrounding ASCII
    /// whitespace is tolerated because the decoder keeps padding verbatim.
    pub fn is_done(&self) -> bool {
        self.data.trim_ascii() == "[DONE]"
    }

    /// Appends the canonical encoding: `event`, `id`, `retry` (each only if set), one
    /// `data: ` line per line of `data`, then the blank line. Decoding it yields this frame
    /// back whenever the frame is representable (see below), which makes encoding idempotent.
    ///
    /// The wire format cannot carry a line break inside `event` or `id`, nor a bare CR inside
    /// `data`. Rather than let such a value inject extra fields or events into the stream,
    /// CR and LF are dropped from `event`/`id`, and CR or CRLF in `data` becomes a line break
    /// like LF (so it decodes as `\n`).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.data.len() + 16);
        if let Some(event) = &self.event {
            out.extend_from_slice(b"event: ");
            push_single_line(out, event);
            out.push(b'\n');
        }
        if let Some(id) = &self.id {
            out.extend_from_slice(b"id: ");
            push_single_line(out, id);
            out.push(b'\n');
        }
        if let Some(retry) = self.retry {
            // Writing into a Vec cannot fail.
            let _ = writeln!(out, "retry: {retry}");
        }
        let mut rest = self.data.as_bytes();
        loop {
            out.extend_from_slice(b"data: ");
            match find_line_end(rest) {
                Some(pos) => {
                    out.extend_from_slice(&rest[..pos]);
                    out.push(b'\n');
                    rest = &rest[pos + line_end_len(rest, pos)..];
                }
                None => {
                    out.extend_from_slice(rest);
                    out.push(b'\n');
                    break;
                }
            }
        }
        out.push(b'\n');
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

fn push_single_line(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    if find_line_end(bytes).is_some() {
        out.extend(bytes.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
    } else {
        out.extend_from_slice(bytes);
    }
}

#[inline]
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n' || b == b'\r')
}

/// Length of the line terminator at `pos`, which must be a CR or LF.
#[inline]
fn line_end_len(bytes: &[u8], pos: usize) -> usize {
    if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') {
        2
    } else {
        1
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("SSE line longer than {limit} bytes")]
    LineTooLong { limit: usize },
}

/// Where the decoder stands on the optional byte-order mark, which may arrive split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// This many leading bytes of the stream matched the BOM so far.
    Matching(usize),
    Decided,
}

/// The fields of the block being read; kept apart from the line buffer so a line held in
/// that buffer can be processed without copying it out first.
#[derive(Debug, Default)]
struct Block {
    event: Option<String>,
    data: String,
    id: Option<String>,
    retry: Option<u64>,
}

impl Block {
    fn line(&mut self, line: &[u8], out: &mut Vec<SseFrame>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        // Splitting on the raw bytes is equivalent to decoding first: lossy UTF-8 decoding
        // never merges an ASCII byte such as ':' into a replacement character.
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return,
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                // `from_utf8` first: it validates several times faster than the lossy decoder,
                // which is only needed for the rare invalid line.
                match std::str::from_utf8(value) {
                    Ok(text) => self.data.push_str(text),
                    Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
                }
                self.data.push('\n');
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All ASCII digits, so this is valid UTF-8 and fails only on overflow.
                if let Ok(retry) = std::str::from_utf8(value).unwrap_or("").parse() {
                    self.retry = Some(retry);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseFrame>) {
        if !self.data.is_empty() || self.event.is_some() {
            let data = self.data.strip_suffix('\n').unwrap_or(&self.data);
            out.push(SseFrame {
                event: self.event.take(),
                // A right-sized copy lets `self.data` keep its capacity for the next block.
                data: data.to_owned(),
                id: self.id.take(),
                retry: self.retry.take(),
            });
        }
        self.data.clear();
        self.event = None;
        self.id = None;
        self.retry = None;
    }
}

/// Incremental decoder: feed it bytes as they arrive, in pieces of any size; the frames it
/// produces do not depend on where the pieces were cut.
#[derive(Debug)]
pub struct SseDecoder {
    limit: usize,
    /// Raw bytes of a line whose end has not arrived yet. Bytes, not text, so that a UTF-8
    /// character split across pushes decodes as one character.
    line: Vec<u8>,
    /// The previous push ended in CR; an LF opening the next push belongs to that line end.
    skip_lf: bool,
    bom: Bom,
    block: Block,
    failed: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::with_line_limit(DEFAULT_LINE_LIMIT)
    }

    /// A decoder that fails once a single line (excluding its terminator) exceeds `limit`
    /// bytes, bounding what an upstream can make us buffer.
    pub fn with_line_limit(limit: usize) -> Self {
        SseDecoder {
            limit,
            line: Vec::new(),
            skip_lf: false,
            bom: Bom::Matching(0),
            block: Block::default(),
            failed: false,
        }
    }

    /// Feeds `bytes`; frames completed by them are appended to `out`. On error, frames
    /// completed before the offending line are already in `out`, and every later call fails
    /// the same way: the stream's framing can no longer be trusted.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        if self.failed {
            return Err(self.error());
        }
        if let Bom::Matching(mut matched) = self.bom {
            while matched < BOM.len() {
                match bytes.first() {
                    None => {
                        self.bom = Bom::Matching(matched);
                        return Ok(());
                    }
                    Some(&b) if b == BOM[matched] => {
                        matched += 1;
                        bytes = &bytes[1..];
                    }
                    Some(_) => {
                        // Not a BOM after all: the bytes held back start the first line.
                        self.bom = Bom::Decided;
                        self.buffer(&BOM[..matched])?;
                        break;
                    }
                }
            }
            self.bom = Bom::Decided;
        }
        if self.skip_lf {
            if let Some((&first, rest)) = bytes.split_first() {
                self.skip_lf = false;
                if first == b'\n' {
                    bytes = rest;
                }
            }
        }
        while let Some(pos) = find_line_end(bytes) {
            let content = &bytes[..pos];
            if self.line.is_empty() {
                // Fast path: the whole line is in this push, so process it in place.
                self.check_len(content.len())?;
                self.block.line(content, out);
            } else {
                self.buffer(content)?;
                self.block.line(&self.line, out);
                self.line.clear();
            }
            if bytes[pos] == b'\r' && pos + 1 == bytes.len() {
                self.skip_lf = true;
            }
            bytes = &bytes[pos + line_end_len(bytes, pos)..];
        }
        self.buffer(bytes)
    }

    /// Ends the input: processes an unterminated last line, then dispatches any pending
    /// event even without its closing blank line. Afterwards the decoder is ready for a new
    /// stream (unless it had failed, which is permanent).
    pub fn finish(&mut self, out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        if self.failed {
            return Err(self.error());
        }
        if let Bom::Matching(matched) = self.bom {
            // A stream that ended inside what looked like a BOM: those bytes were a line.
            self.buffer(&BOM[..matched])?;
        }
        if !self.line.is_empty() {
            self.block.line(&self.line, out);
            self.line.clear();
        }
        self.block.dispatch(out);
        self.skip_lf = false;
        self.bom = Bom::Matching(0);
        Ok(())
    }

    /// Appends to the pending line, refusing to grow it past the limit.
    fn buffer(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        self.check_len(self.line.len() + bytes.len())?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn check_len(&mut self, len: usize) -> Result<(), SseError> {
        if len > self.limit {
            self.failed = true;
            // Release the partial line now: the caller may keep the failed decoder around.
            self.line = Vec::new();
            return Err(self.error());
        }
        Ok(())
    }

    fn error(&self) -> SseError {
        SseError::LineTooLong { limit: self.limit }
    }
}
