//! The `a2o` binary: parses the command line and dispatches. Exit codes: 0 success, 1 a check
//! found a difference, 2 error. A closed stdout (`| head`) is a quiet success.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use a2o::cli::{Cli, Command, ConvertArgs, KindArg, MockArgs, ServeArgs};
use a2o::convert::{Losses, RequestOptions};
use a2o::pipeline::{self, DocumentKind, DocumentOptions};
use a2o::protocol::Dialect;
use a2o::stream::StreamConverter;

fn main() -> ExitCode {
    load_dotenv();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(args) => run_convert(args),
        Command::Serve(args) => run_serve(args),
        Command::Check(args) => a2o::check::run(args),
        Command::MockUpstream(args) => run_mock(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(io::stderr(), "a2o: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run_convert(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let from = Dialect::from(args.from);
    let request = match &args.request {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read --request {}", path.display()))?,
        ),
        None => None,
    };
    let mut input: Box<dyn Read> = match &args.input {
        Some(path) => Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("cannot open --input {}", path.display()))?,
        ),
        None => Box::new(io::stdin().lock()),
    };
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create --output {}", path.display()))?,
        )),
        None => Box::new(io::stdout().lock()),
    };
    let kind = match args.kind {
        KindArg::Request => DocumentKind::Request,
        KindArg::Response => DocumentKind::Response,
        KindArg::Error => DocumentKind::Error,
        KindArg::Stream => {
            let ctx = pipeline::response_context(from.other(), request.as_deref())?;
            let lost = convert_stream(from, ctx, &mut input, &mut output)?;
            return Ok(exit_for_losses(lost, args.strict));
        }
    };
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).context("cannot read input")?;
    let opts = DocumentOptions {
        request,
        status: args.status,
        request_options: RequestOptions {
            default_max_tokens: args.default_max_tokens,
        },
        created: None,
        pretty: args.pretty,
    };
    let converted = pipeline::convert_document(kind, from, &bytes, &opts)?;
    output.write_all(&converted.body)?;
    output.flush()?;
    let mut stderr = io::stderr().lock();
    if let (Some(status), Some(_)) = (converted.status, args.status) {
        writeln!(stderr, "{}", serde_json::json!({ "status": status }))?;
    }
    let lost = !converted.losses.is_empty();
    print_losses(&mut stderr, &converted.losses)?;
    Ok(exit_for_losses(lost, args.strict))
}

/// Converts an SSE stream as it arrives: every read is converted and flushed at once, so a
/// piped `curl -N` shows tokens live.
fn convert_stream(
    from: Dialect,
    ctx: a2o::convert::ResponseContext,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> anyhow::Result<bool> {
    let mut converter = StreamConverter::new(from, ctx);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    let mut losses = Losses::new();
    let mut stderr = io::stderr();
    let mut lost = false;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read input"),
        };
        converter.push(&buf[..n], &mut out, &mut losses);
        output.write_all(&out)?;
        output.flush()?;
        out.clear();
        lost |= !losses.is_empty();
        print_losses(&mut stderr, &losses)?;
        losses = Losses::new();
    }
    converter.finish(&mut out, &mut losses);
    output.write_all(&out)?;
    output.flush()?;
    lost |= !losses.is_empty();
    print_losses(&mut stderr, &losses)?;
    Ok(lost)
}

fn print_losses(stderr: &mut dyn Write, losses: &Losses) -> io::Result<()> {
    for loss in losses.iter() {
        let line = serde_json::to_string(loss).map_err(io::Error::other)?;
        writeln!(stderr, "{line}")?;
    }
    Ok(())
}

fn exit_for_losses(lost: bool, strict: bool) -> ExitCode {
    if lost && strict {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Reads `.env` from the working directory for `serve`, unless `--no-dotenv` is given. Variables
/// already in the environment win, so the order is flags, environment, `.env`, defaults.
fn load_dotenv() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("serve") || args.iter().any(|a| a == "--no-dotenv") {
        return;
    }
    let Ok(text) = std::fs::read_to_string(".env") else {
        return;
    };
    for (name, value) in a2o::server::dotenv::parse(&text) {
        if std::env::var_os(&name).is_none() {
            // Single-threaded here: no other thread reads the environment yet.
            unsafe { std::env::set_var(name, value) };
        }
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let effective = a2o::server::settings::resolve(&args)?;
    if args.print_config {
        let described = a2o::server::settings::describe(&effective.config);
        println!("{}", serde_json::to_string_pretty(&described)?);
        for warning in &effective.warnings {
            eprintln!("a2o: warning: {warning}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = effective.config;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let logger = a2o::server::log::Logger {
            format: config.log_format,
            sink: a2o::server::log::stderr_sink(),
        };
        for warning in &effective.warnings {
            logger.event(&format!("warning: {warning}"));
        }
        let upstream = format!("{} ({})", config.upstream, config.upstream_protocol.name());
        let threads = config.worker_threads();
        let bound = a2o::server::bind(config, logger.clone()).await?;
        // Best effort: a closed stdout (a supervisor that read the addresses and left) must not
        // stop the server.
        let via = if bound.upstream_is_proxied() {
            "  via proxy:       from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY\n"
        } else {
            ""
        };
        let banner = format!(
            "a2o {} listening\n  anthropic front: http://{}\n  openai front:    http://{}\n  upstream:        {upstream}\n{via}  threads:         {threads}\n",
            env!("CARGO_PKG_VERSION"),
            bound.anthropic_addr,
            bound.openai_addr
        );
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
        drop(stdout);
        bound.run(a2o::server::shutdown_signal()).await?;
        logger.event("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn run_mock(args: MockArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let options = a2o::mock::MockOptions {
            host: args.host,
            port: args.port,
        };
        let (addr, server) = a2o::mock::bind(&options).await?;
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "a2o mock upstream listening on http://{addr}")?;
        stdout.flush()?;
        drop(stdout);
        server.serve(a2o::server::shutdown_signal()).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
