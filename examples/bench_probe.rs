//! The timing-sensitive parts of `scripts/bench.sh`, in Rust so that the probe itself adds
//! microseconds, not milliseconds: time-to-first-token probes, holding many streams open,
//! cold start to the first 200, a realistic Claude Code request for the conversion cost, and
//! large SSE transcripts for `a2o convert stream`. The orchestration (starting processes,
//! the load generator, tables) lives in `scripts/bench/bench.py`; every subcommand here prints
//! one JSON document on stdout for it.
//!
//! Run `cargo run --release --example bench_probe -- --help` for the subcommands.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use a2o::pipeline::{convert_document, DocumentKind, DocumentOptions};
use a2o::protocol::Dialect;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Probes for scripts/bench.sh; each prints one JSON document")]
struct Cli {
    #[command(subcommand)]
    command: Probe,
}

#[derive(Subcommand)]
enum Probe {
    /// Sequential time-to-first-byte and time-to-first-token probes on keep-alive
    /// connections; the targets of a group are probed in turn, so drift hits them alike.
    Ttft {
        /// JSON: {"groups":[{"targets":[{"name","url","body","headers":{..},"token"}]}]}
        #[arg(long)]
        spec: PathBuf,
        #[arg(long, default_value_t = 80)]
        probes: usize,
    },
    /// Opens `count` streams at once, waits until each has its first event, samples the
    /// memory of the given processes, then closes them all.
    Hold {
        /// JSON of one target: {"name","url","body","headers":{..}}
        #[arg(long)]
        target: PathBuf,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// `name=pid` of a process whose memory to report; repeatable.
        #[arg(long = "pid")]
        pids: Vec<String>,
    },
    /// Sends one target's request `count` times in sequence on one keep-alive connection
    /// (for profiling a fixed amount of work under callgrind or perf).
    Repeat {
        /// JSON of one target: {"name","url","body","headers":{..}}
        #[arg(long)]
        target: PathBuf,
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// A byte-for-byte TCP relay to `to` (no HTTP at all): the floor of any proxy hop on this
    /// machine, for calibrating added latency. Prints `relay listening on ADDR`, runs until killed.
    Relay {
        #[arg(long)]
        to: String,
    },
    /// Starts `a2o serve` `runs` times and times the first proxied 200.
    Coldstart {
        #[arg(long)]
        bin: PathBuf,
        #[arg(long)]
        upstream: String,
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// Converts a realistic Claude Code request (about 76 KB, 24 tools) repeatedly.
    ConvertCost {
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        /// Also write the request here, for inspection.
        #[arg(long)]
        write_request: Option<PathBuf>,
        /// Time only this measurement (for profiling one path under perf or callgrind).
        #[arg(long)]
        only: Option<String>,
    },
    /// Writes a large, realistic SSE transcript of the given dialect.
    Transcript {
        #[arg(long, value_enum)]
        from: DialectArg,
        #[arg(long, default_value_t = 64)]
        mb: usize,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DialectArg {
    Anthropic,
    Openai,
}

fn main() -> Result<()> {
    let report = match Cli::parse().command {
        Probe::Ttft { spec, probes } => ttft(&spec, probes)?,
        Probe::Hold {
            target,
            count,
            pids,
        } => hold(&target, count, &pids)?,
        Probe::Repeat { target, count } => repeat(&target, count)?,
        Probe::Relay { to } => relay(&to)?,
        Probe::Coldstart {
            bin,
            upstream,
            runs,
        } => coldstart(&bin, &upstream, runs)?,
        Probe::ConvertCost {
            iterations,
            write_request,
            only,
        } => convert_cost(iterations, write_request.as_deref(), only.as_deref())?,
        Probe::Transcript { from, mb, out } => transcript(from, mb, &out)?,
    };
    println!("{report}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A minimal blocking HTTP/1.1 client: exact timestamps, keep-alive, chunked bodies.

#[derive(Clone, Debug, Deserialize)]
struct Target {
    name: String,
    url: String,
    body: String,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    /// Text whose arrival counts as the first token.
    #[serde(default)]
    token: Option<String>,
}

impl Target {
    fn addr(&self) -> Result<(SocketAddr, String)> {
        let rest = self
            .url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// URLs: {}", self.url))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr = authority
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow!("cannot resolve {authority}"))?;
        Ok((addr, if path.is_empty() { "/" } else { path }.to_owned()))
    }

    fn request_bytes(&self, host: &SocketAddr, path: &str) -> Vec<u8> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!(
                "{name}: {}\r\n",
                value.as_str().unwrap_or_default()
            ));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

/// When the parts of one response arrived, counted from just before the request was written.
struct Timing {
    first_byte: Duration,
    token: Option<Duration>,
    status: u16,
}

/// One keep-alive connection to a target.
struct Connection {
    stream: Option<TcpStream>,
    addr: SocketAddr,
    request: Vec<u8>,
    /// Bytes read past the end of the previous response.
    pending: Vec<u8>,
}

impl Connection {
    fn new(target: &Target) -> Result<Connection> {
        let (addr, path) = target.addr()?;
        let request = target.request_bytes(&addr, &path);
        Ok(Connection {
            stream: None,
            addr,
            request,
            pending: Vec::new(),
        })
    }

    fn stream(&mut self) -> Result<&mut TcpStream> {
        if self.stream.is_none() {
            let stream =
                TcpStream::connect(self.addr).with_context(|| format!("connect {}", self.addr))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(60)))?;
            self.stream = Some(stream);
            self.pending.clear();
        }
        self.stream.as_mut().ok_or_else(|| anyhow!("no connection"))
    }

    /// Sends the request and reads the whole response, noting when the first body byte and
    /// the token arrived.
    fn exchange(&mut self, token: Option<&[u8]>) -> Result<Timing> {
        let request = std::mem::take(&mut self.request);
        // The connection is opened before the clock starts: connecting is not the proxy's cost.
        self.stream()?;
        let start = Instant::now();
        let result = self.exchange_timed(&request, token, start);
        self.request = request;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange_timed(
        &mut self,
        request: &[u8],
        token: Option<&[u8]>,
        start: Instant,
    ) -> Result<Timing> {
        let mut raw = std::mem::take(&mut self.pending);
        let stream = self.stream()?;
        stream.write_all(request)?;
        let mut buf = vec![0u8; 64 * 1024];
        let header_end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                bail!("connection closed before the response head");
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..header_end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let header = |name: &str| {
            head.lines()
                .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
        let length = header("content-length:").and_then(|v| v.parse::<usize>().ok());
        let close = header("connection:").is_some_and(|v| v.contains("close"));
        let mut rest = raw.split_off(header_end + 4);
        let mut body = Body::new(chunked, length);
        let mut first_byte = None;
        let mut token_at = None;
        loop {
            let done = body.feed(&mut rest)?;
            if first_byte.is_none() && !body.decoded.is_empty() {
                first_byte = Some(start.elapsed());
            }
            if token_at.is_none() {
                if let Some(token) = token {
                    if find(&body.decoded, token).is_some() {
                        token_at = Some(start.elapsed());
                    }
                }
            }
            if done {
                break;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                if body.until_eof() {
                    break;
                }
                bail!("connection closed mid-body");
            }
            rest.extend_from_slice(&buf[..n]);
        }
        if close || body.until_eof() {
            self.stream = None;
        } else {
            self.pending = rest;
        }
        Ok(Timing {
            first_byte: first_byte.unwrap_or_else(|| start.elapsed()),
            token: token_at,
            status,
        })
    }
}

/// An incremental HTTP body decoder (chunked, Content-Length, or until EOF).
struct Body {
    chunked: bool,
    length: Option<usize>,
    decoded: Vec<u8>,
}

impl Body {
    fn new(chunked: bool, length: Option<usize>) -> Body {
        Body {
            chunked,
            length,
            decoded: Vec::new(),
        }
    }

    fn until_eof(&self) -> bool {
        !self.chunked && self.length.is_none()
    }

    /// Consumes what it can from `raw`; true once the body is complete.
    fn feed(&mut self, raw: &mut Vec<u8>) -> Result<bool> {
        if !self.chunked {
            self.decoded.append(raw);
            return Ok(self.length.is_some_and(|n| self.decoded.len() >= n));
        }
        loop {
            let Some(line_end) = find(raw, b"\r\n") else {
                return Ok(false);
            };
            let size_text = String::from_utf8_lossy(&raw[..line_end]);
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .with_context(|| format!("bad chunk size {size_text:?}"))?;
            if size == 0 {
                // No trailers are expected: the body ends with "0\r\n\r\n".
                if raw.len() < line_end + 4 {
                    return Ok(false);
                }
                raw.drain(..line_end + 4);
                return Ok(true);
            }
            if raw.len() < line_end + 2 + size + 2 {
                return Ok(false);
            }
            self.decoded
                .extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
            raw.drain(..line_end + 2 + size + 2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Serialize, Default)]
struct Stats {
    samples: usize,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    min_us: f64,
    max_us: f64,
}

fn stats(samples: &mut [f64]) -> Stats {
    if samples.is_empty() {
        return Stats::default();
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        samples: samples.len(),
        p50_us: at(0.5),
        p99_us: at(0.99),
        mean_us: samples.iter().sum::<f64>() / samples.len() as f64,
        min_us: samples[0],
        max_us: samples[samples.len() - 1],
    }
}

// ---------------------------------------------------------------------------------------------
// ttft

#[derive(Deserialize)]
struct TtftSpec {
    groups: Vec<TtftGroup>,
}

#[derive(Deserialize)]
struct TtftGroup {
    targets: Vec<Target>,
}

fn ttft(spec: &PathBuf, probes: usize) -> Result<Value> {
    let spec: TtftSpec = serde_json::from_slice(&std::fs::read(spec)?)?;
    let mut report = serde_json::Map::new();
    for group in &spec.groups {
        let mut connections = group
            .targets
            .iter()
            .map(Connection::new)
            .collect::<Result<Vec<_>>>()?;
        let mut first_bytes = vec![Vec::new(); group.targets.len()];
        let mut tokens = vec![Vec::new(); group.targets.len()];
        let mut failures = vec![0usize; group.targets.len()];
        // One unmeasured round opens the connections and warms every pool on the way.
        for (connection, target) in connections.iter_mut().zip(&group.targets) {
            connection.exchange(target.token.as_deref().map(str::as_bytes))?;
        }
        for _ in 0..probes {
            for (i, (connection, target)) in connections.iter_mut().zip(&group.targets).enumerate()
            {
                let token = target.token.as_deref().map(str::as_bytes);
                match connection.exchange(token) {
                    Ok(timing) if timing.status == 200 => {
                        first_bytes[i].push(timing.first_byte.as_secs_f64() * 1e6);
                        match timing.token {
                            Some(at) => tokens[i].push(at.as_secs_f64() * 1e6),
                            None => failures[i] += 1,
                        }
                    }
                    Ok(_) | Err(_) => failures[i] += 1,
                }
            }
        }
        for (i, target) in group.targets.iter().enumerate() {
            report.insert(
                target.name.clone(),
                json!({
                    "first_byte": stats(&mut first_bytes[i]),
                    "first_token": stats(&mut tokens[i]),
                    "failures": failures[i],
                }),
            );
        }
    }
    Ok(Value::Object(report))
}

// ---------------------------------------------------------------------------------------------
// relay

fn relay(to: &str) -> Result<Value> {
    let to: SocketAddr = to
        .trim_start_matches("http://")
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {to}"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("relay listening on http://{}", listener.local_addr()?);
        loop {
            let (mut inbound, _) = listener.accept().await?;
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    })
}

// ---------------------------------------------------------------------------------------------
// repeat

fn repeat(target: &PathBuf, count: usize) -> Result<Value> {
    let target: Target = serde_json::from_slice(&std::fs::read(target)?)?;
    let mut connection = Connection::new(&target)?;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let status = connection.exchange(None).map_or(0, |timing| timing.status);
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
        *statuses.entry(status).or_default() += 1;
    }
    Ok(
        json!({"target": target.name, "count": count, "statuses": statuses, "latency": stats(&mut latencies)}),
    )
}

// ---------------------------------------------------------------------------------------------
// hold

fn memory_of(pid: &str) -> Value {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let threads = kb("Threads:");
    json!({"rss_kb": kb("VmRSS:"), "hwm_kb": kb("VmHWM:"), "threads": threads})
}

fn hold(target: &PathBuf, count: usize, pids: &[String]) -> Result<Value> {
    let target: Target = serde_json::from_slice(&std::fs::read(target)?)?;
    let (addr, path) = target.addr()?;
    let request = target.request_bytes(&addr, &path);
    let named_pids: Vec<(String, String)> = pids
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(n, p)| (n.to_owned(), p.to_owned()))
                .ok_or_else(|| anyhow!("--pid name=pid, not {p}"))
        })
        .collect::<Result<_>>()?;
    let before: serde_json::Map<String, Value> = named_pids
        .iter()
        .map(|(name, pid)| (name.clone(), memory_of(pid)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (streams, opened) = runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Bounded parallel connects, so the listen backlog never overflows.
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let request = request.clone();
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.ok();
                let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
                stream.set_nodelay(true).ok()?;
                stream.write_all(&request).await.ok()?;
                drop(permit);
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // Open means: the head and at least one body byte (the first event) arrived.
                loop {
                    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
                        .await
                        .ok()?
                        .ok()?;
                    if n == 0 {
                        return None;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(end) = find(&seen, b"\r\n\r\n") {
                        if !seen.starts_with(b"HTTP/1.1 200") {
                            return None;
                        }
                        if seen.len() > end + 4 {
                            break;
                        }
                    }
                }
                Some(stream)
            }));
        }
        let mut streams = Vec::with_capacity(count);
        for task in tasks {
            if let Ok(Some(stream)) = task.await {
                streams.push(stream);
            }
        }
        let opened = streams.len();
        (streams, opened)
    });
    let open_time = started.elapsed();
    // Let the proxy settle (buffers allocated on first write are in place by now).
    std::thread::sleep(Duration::from_millis(300));
    let during: serde_json::Map<String, Value> = named_pids
        .iter()
        .map(|(name, pid)| (name.clone(), memory_of(pid)))
        .collect();
    drop(streams);
    drop(runtime);
    Ok(json!({
        "target": target.name,
        "requested": count,
        "opened": opened,
        "open_ms": open_time.as_secs_f64() * 1e3,
        "before": before,
        "during": during,
    }))
}

// ---------------------------------------------------------------------------------------------
// coldstart

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn coldstart(bin: &PathBuf, upstream: &str, runs: usize) -> Result<Value> {
    let body =
        r#"{"model":"claude-x","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}"#;
    let mut listening = Vec::new();
    let mut first_ok = Vec::new();
    for _ in 0..runs {
        let (anthropic_port, openai_port) = (free_port()?, free_port()?);
        let addr: SocketAddr = format!("127.0.0.1:{anthropic_port}").parse()?;
        let target = Target {
            name: "coldstart".into(),
            url: format!("http://{addr}/v1/messages"),
            body: body.into(),
            headers: json!({"x-api-key": "sk-bench", "anthropic-version": "2023-06-01"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            token: None,
        };
        let start = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--no-dotenv", "--host", "127.0.0.1"])
            .args(["--anthropic-port", &anthropic_port.to_string()])
            .args(["--openai-port", &openai_port.to_string()])
            .args(["--upstream", upstream, "--upstream-protocol", "anthropic"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let deadline = start + Duration::from_secs(10);
        let mut connection = Connection::new(&target)?;
        let outcome = loop {
            if Instant::now() > deadline {
                break None;
            }
            match TcpStream::connect(addr) {
                Ok(stream) => {
                    let up = start.elapsed();
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    connection.stream = Some(stream);
                    let ok = connection.exchange(None).map(|t| t.status).ok();
                    if ok == Some(200) {
                        break Some((up, start.elapsed()));
                    }
                    break None;
                }
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        let (up, ok) = outcome.ok_or_else(|| anyhow!("a2o did not answer 200 within 10 s"))?;
        listening.push(up.as_secs_f64() * 1e6);
        first_ok.push(ok.as_secs_f64() * 1e6);
    }
    Ok(json!({
        "runs": runs,
        "listening": stats(&mut listening),
        "first_200": stats(&mut first_ok),
    }))
}

// ---------------------------------------------------------------------------------------------
// convert-cost

/// A request shaped like Claude Code's: a long cached system prompt, 24 tools whose schemas
/// use JSON Schema 2020-12 (`$defs`/`$ref`, `anyOf`, `const`, `prefixItems`, formats), thinking,
/// a long metadata user id, and a conversation with tool calls, results and system reminders.
fn claude_code_request() -> Value {
    let prose = "Use this tool when the task calls for it. Prefer the dedicated tools over shell \
commands for reading, searching and editing files, and batch independent calls together. \
Always use absolute paths; never guess file contents; read a file before you edit it. When \
the output is long it is truncated, so narrow the query instead of paging through results. ";
    let paragraph = |n: usize| prose.repeat(n);
    let names = [
        "Task",
        "Bash",
        "Glob",
        "Grep",
        "ExitPlanMode",
        "Read",
        "Edit",
        "MultiEdit",
        "Write",
        "NotebookEdit",
        "WebFetch",
        "TodoWrite",
        "WebSearch",
        "BashOutput",
        "KillShell",
        "SlashCommand",
        "ListMcpResourcesTool",
        "ReadMcpResourceTool",
        "mcp__ide__getDiagnostics",
        "mcp__ide__executeCode",
        "mcp__github__create_issue",
        "mcp__github__search_code",
        "mcp__playwright__browser_navigate",
        "mcp__playwright__browser_click",
    ];
    let tools: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "name": name,
                "description": format!("{name}: {}", paragraph(1 + usize::from(i % 3 == 0))),
                "input_schema": {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["target"],
                    "$defs": {
                        "range": {
                            "type": "array",
                            "prefixItems": [{"type": "integer", "minimum": 0}, {"type": "integer", "exclusiveMinimum": 0}],
                            "items": false
                        },
                        "mode": {"enum": ["fast", "thorough", "auto"], "default": "auto"}
                    },
                    "properties": {
                        "target": {"type": "string", "minLength": 1, "description": "The absolute path or URL to operate on.", "examples": ["/repo/src/main.rs"]},
                        "url": {"type": "string", "format": "uri"},
                        "lines": {"$ref": "#/$defs/range"},
                        "mode": {"$ref": "#/$defs/mode"},
                        "timeout": {"type": "number", "maximum": 600000, "description": "Optional timeout in milliseconds."},
                        "options": {
                            "anyOf": [
                                {"type": "object", "properties": {"kind": {"const": "glob"}, "pattern": {"type": "string"}}, "required": ["kind", "pattern"], "additionalProperties": false},
                                {"type": "object", "properties": {"kind": {"const": "regex"}, "pattern": {"type": "string"}, "multiline": {"type": "boolean"}}, "required": ["kind"], "additionalProperties": false},
                                {"type": "null"}
                            ]
                        },
                        "edits": {
                            "type": "array", "minItems": 1,
                            "items": {"type": "object", "properties": {"old_string": {"type": "string"}, "new_string": {"type": "string"}, "replace_all": {"type": "boolean", "default": false}}, "required": ["old_string", "new_string"], "additionalProperties": false}
                        },
                        "todos": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"content": {"type": "string", "minLength": 1}, "status": {"enum": ["pending", "in_progress", "completed"]}, "activeForm": {"type": "string"}}, "required": ["content", "status", "activeForm"]}
                        }
                    }
                }
            })
        })
        .collect();
    let file_text = "fn main() {\n    println!(\"hello, world\");\n}\n".repeat(24);
    let mut messages = vec![json!({"role": "user", "content": [
        {"type": "text", "text": format!("<system-reminder>\nAs you answer the user's questions, you can use the following context:\n# claudeMd\n{}</system-reminder>", paragraph(8))},
        {"type": "text", "text": "Find why the build fails on CI and fix it."}
    ]})];
    for turn in 0..6 {
        let id = format!("toolu_01A{turn:02}bench");
        messages.push(json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": paragraph(1), "signature": "EqQBCkYIBxgCKkD".repeat(20)},
            {"type": "text", "text": "Let me look at the relevant files first."},
            {"type": "tool_use", "id": id, "name": names[(turn * 5) % names.len()], "input": {"target": "/repo/src/main.rs", "lines": [0, 200], "mode": "fast"}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": file_text}], "is_error": turn == 3},
            {"type": "text", "text": "<system-reminder>The TodoWrite tool hasn't been used recently.</system-reminder>"}
        ]}));
    }
    if let Some(last) = messages
        .last_mut()
        .and_then(|m| m.get_mut("content"))
        .and_then(Value::as_array_mut)
        .and_then(|blocks| blocks.last_mut())
    {
        last["cache_control"] = json!({"type": "ephemeral"});
    }
    json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "temperature": 1,
        "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "metadata": {"user_id": format!("user_{}_account_{}_session_{}", "a1b2c3d4".repeat(8), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9")},
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": paragraph(30), "cache_control": {"type": "ephemeral"}}
        ],
        "tools": tools,
        "messages": messages
    })
}

fn time_per_op(iterations: usize, mut op: impl FnMut() -> Result<()>) -> Result<Value> {
    // Warm caches and the allocator first.
    for _ in 0..iterations.min(50) {
        op()?;
    }
    // Several batches, so one preempted batch shows up as a spread, not as the result.
    let batches = 5;
    let per_batch = (iterations / batches).max(1);
    let mut per_op = Vec::new();
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            op()?;
        }
        per_op.push(start.elapsed().as_secs_f64() * 1e6 / per_batch as f64);
    }
    let stats = stats(&mut per_op);
    Ok(
        json!({"iterations": per_batch * batches, "best_us": stats.min_us, "median_us": stats.p50_us, "worst_us": stats.max_us}),
    )
}

fn convert_cost(
    iterations: usize,
    write_request: Option<&std::path::Path>,
    only: Option<&str>,
) -> Result<Value> {
    let request = claude_code_request();
    let bytes = serde_json::to_vec(&request)?;
    if let Some(path) = write_request {
        std::fs::write(path, &bytes)?;
    }
    let tool_count = request["tools"].as_array().map_or(0, Vec::len);
    let opts = DocumentOptions::default();
    let converted = convert_document(DocumentKind::Request, Dialect::Anthropic, &bytes, &opts)?;
    let back = converted.body.clone();
    let mut report = serde_json::Map::new();
    report.insert("request_bytes".into(), json!(bytes.len()));
    report.insert("tools".into(), json!(tool_count));
    report.insert("losses".into(), json!(converted.losses.iter().count()));
    let wanted = |name: &str| only.is_none_or(|only| only == name);
    if wanted("anthropic_to_openai") {
        let timing = time_per_op(iterations, || {
            convert_document(DocumentKind::Request, Dialect::Anthropic, &bytes, &opts)?;
            Ok(())
        })?;
        report.insert("anthropic_to_openai".into(), timing);
    }
    if wanted("openai_to_anthropic") {
        let timing = time_per_op(iterations, || {
            convert_document(DocumentKind::Request, Dialect::OpenAi, &back, &opts)?;
            Ok(())
        })?;
        report.insert("openai_to_anthropic".into(), timing);
    }
    if wanted("parse_anthropic_typed") {
        let timing = time_per_op(iterations, || {
            a2o::protocol::parse::<a2o::protocol::anthropic::MessagesRequest>(&bytes)
                .map_err(|e| anyhow!("{e:?}"))?;
            Ok(())
        })?;
        report.insert("parse_anthropic_typed".into(), timing);
    }
    if wanted("parse_anthropic_untracked") {
        // The same typed parse without the path-tracking wrapper of `protocol::parse`.
        let timing = time_per_op(iterations, || {
            serde_json::from_slice::<a2o::protocol::anthropic::MessagesRequest>(&bytes)?;
            Ok(())
        })?;
        report.insert("parse_anthropic_untracked".into(), timing);
    }
    if wanted("serde_value_roundtrip") {
        // The floor for any converter that builds a tree: parse to a Value and write it back.
        let timing = time_per_op(iterations, || {
            let value: Value = serde_json::from_slice(&bytes)?;
            serde_json::to_vec(&value)?;
            Ok(())
        })?;
        report.insert("serde_value_roundtrip".into(), timing);
    }
    Ok(Value::Object(report))
}

// ---------------------------------------------------------------------------------------------
// transcript

/// One very long streamed answer (a converter ends at `message_stop` / `[DONE]`, so the file
/// is one message, as a long generation would be): thinking, many short text deltas as real
/// models send them, pings, and a tool call with streamed arguments.
fn transcript(from: DialectArg, mb: usize, out: &PathBuf) -> Result<Value> {
    let limit = mb * 1024 * 1024;
    let words = [
        "The", " build", " fails", " because", " the", " linker", " cannot", " find", " the",
        " symbol;", " adding", " the", " feature", " flag", " fixes", " it.\n",
    ];
    let mut text = String::new();
    let mut events = 0usize;
    match from {
        DialectArg::Anthropic => {
            let mut push = |event: &str, data: Value, text: &mut String| {
                text.push_str("event: ");
                text.push_str(event);
                text.push_str("\ndata: ");
                text.push_str(&data.to_string());
                text.push_str("\n\n");
                events += 1;
            };
            push(
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":0,"cache_read_input_tokens":5000,"output_tokens":1}}}),
                &mut text,
            );
            push(
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
                &mut text,
            );
            for i in 0..200 {
                push(
                    "content_block_delta",
                    json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":words[i % words.len()]}}),
                    &mut text,
                );
            }
            push(
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIBxgCKkD".repeat(8)}}),
                &mut text,
            );
            push(
                "content_block_stop",
                json!({"type":"content_block_stop","index":0}),
                &mut text,
            );
            push(
                "content_block_start",
                json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}),
                &mut text,
            );
            let tail = 2048;
            let mut i = 0;
            while text.len() + tail < limit {
                push(
                    "content_block_delta",
                    json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":words[i % words.len()]}}),
                    &mut text,
                );
                i += 1;
                if i % 64 == 0 {
                    push("ping", json!({"type":"ping"}), &mut text);
                }
            }
            push(
                "content_block_stop",
                json!({"type":"content_block_stop","index":1}),
                &mut text,
            );
            push(
                "content_block_start",
                json!({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_bench","name":"Bash","input":{}}}),
                &mut text,
            );
            for part in ["{\"command\": ", "\"cargo build", " --release\"", "}"] {
                push(
                    "content_block_delta",
                    json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":part}}),
                    &mut text,
                );
            }
            push(
                "content_block_stop",
                json!({"type":"content_block_stop","index":2}),
                &mut text,
            );
            push(
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":i}}),
                &mut text,
            );
            push("message_stop", json!({"type":"message_stop"}), &mut text);
        }
        DialectArg::Openai => {
            let chunk = |delta: Value, finish: Value| json!({"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":delta,"logprobs":null,"finish_reason":finish}]});
            let mut push = |data: Value, text: &mut String| {
                text.push_str("data: ");
                text.push_str(&data.to_string());
                text.push_str("\n\n");
                events += 1;
            };
            push(
                chunk(
                    json!({"role":"assistant","content":"","refusal":null}),
                    Value::Null,
                ),
                &mut text,
            );
            let tail = 4096;
            let mut i = 0;
            while text.len() + tail < limit {
                push(
                    chunk(json!({"content": words[i % words.len()]}), Value::Null),
                    &mut text,
                );
                i += 1;
            }
            push(
                chunk(
                    json!({"tool_calls":[{"index":0,"id":"call_bench","type":"function","function":{"name":"Bash","arguments":""}}]}),
                    Value::Null,
                ),
                &mut text,
            );
            for part in ["{\"command\": ", "\"cargo build", " --release\"", "}"] {
                push(
                    chunk(
                        json!({"tool_calls":[{"index":0,"function":{"arguments":part}}]}),
                        Value::Null,
                    ),
                    &mut text,
                );
            }
            push(chunk(json!({}), json!("tool_calls")), &mut text);
            push(
                json!({"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":i,"total_tokens":1200 + i}}),
                &mut text,
            );
            text.push_str("data: [DONE]\n\n");
            events += 1;
        }
    }
    std::fs::write(out, text.as_bytes())?;
    Ok(json!({"bytes": text.len(), "events": events}))
}
