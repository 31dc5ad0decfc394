//! The deployment files (`Dockerfile`, `.dockerignore`, `docker-compose.yml`, `.env.example` and
//! everything in `deploy/`) checked against the binary itself, since no Docker engine or cluster
//! runs here: every environment variable they name is one `a2o serve` reads, `.env.example`
//! lists all of them at the defaults `--help` shows, ports match the binary's defaults, the
//! commands they run are real subcommands and flags, and the settings they pass are accepted
//! by `a2o serve`, which `--print-config` shows resolved.
//!
//! The truth is the binary itself: `a2o serve --help` prints `[env: NAME=]` and
//! `[default: …]` for every setting, so a new flag with an env var fails here until the files
//! document it, and `a2o serve --print-config` gives the settings a file's variables produce.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde::Deserialize;
use serde_norway::Value;

/// Read by the HTTP client (reqwest's system-proxy support), not by clap, so `--help` cannot
/// list them; `.env.example` documents them for containers behind an outbound proxy.
const OUTBOUND_PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"];

const ANTHROPIC_PORT_VAR: &str = "PORT";
const OPENAI_PORT_VAR: &str = "OPENAI_PROXY_PORT";

/// What `a2o serve --help` says about the settings that have an environment variable.
struct ServeSettings {
    /// Variable name to its default (`None` when the flag has no default).
    defaults: BTreeMap<String, Option<String>>,
}

impl ServeSettings {
    fn read() -> Self {
        let help = run_a2o(&["serve", "--no-dotenv", "--help"]);
        let defaults = parse_env_defaults(&help);
        assert!(
            defaults.contains_key(ANTHROPIC_PORT_VAR) && defaults.contains_key(OPENAI_PORT_VAR),
            "`a2o serve --help` lists no port variables; has its format changed?\n{help}"
        );
        Self { defaults }
    }

    fn default_of(&self, name: &str) -> &str {
        self.defaults
            .get(name)
            .and_then(Option::as_deref)
            .unwrap_or_else(|| panic!("`a2o serve --help` shows no default for {name}"))
    }

    fn default_number(&self, name: &str) -> u64 {
        let text = self.default_of(name);
        text.parse()
            .unwrap_or_else(|_| panic!("default of {name} is not a number: {text}"))
    }

    fn default_ports(&self) -> BTreeSet<u16> {
        [ANTHROPIC_PORT_VAR, OPENAI_PORT_VAR]
            .iter()
            .map(|name| self.default_number(name) as u16)
            .collect()
    }

    fn is_known(&self, name: &str) -> bool {
        self.defaults.contains_key(name) || OUTBOUND_PROXY_VARS.contains(&name)
    }
}

/// Runs the built `a2o` with a clean environment and returns its stdout, failing on an error.
fn run_a2o(args: &[&str]) -> String {
    let output = Command::cargo_bin("a2o")
        .expect("binary builds")
        .args(args)
        .env_clear()
        .output()
        .expect("a2o runs");
    assert!(
        output.status.success(),
        "`a2o {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// Reads clap's long help: each option starts on a line beginning with `-`, and its text up
/// to the next option holds `[env: NAME=…]` and `[default: …]` (either may be wrapped onto
/// the next line, so each option's lines are joined first).
fn parse_env_defaults(help: &str) -> BTreeMap<String, Option<String>> {
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim();
        let starts_option = trimmed.starts_with("--")
            || (trimmed.starts_with('-') && trimmed.get(2..4) == Some(", "));
        match blocks.last_mut() {
            Some(block) if !starts_option => {
                block.push(' ');
                block.push_str(trimmed);
            }
            _ if starts_option => blocks.push(trimmed.to_owned()),
            _ => {}
        }
    }
    let bracketed = |block: &str, tag: &str| -> Option<String> {
        let start = block.find(tag)? + tag.len();
        let end = start + block[start..].find(']')?;
        Some(block[start..end].trim().to_owned())
    };
    blocks
        .iter()
        .filter_map(|block| {
            // `[env: NAME=value]`, or `[env: NAME]` when the flag hides env values.
            let env = bracketed(block, "[env: ")?;
            let name = env.split('=').next().unwrap_or_default().to_owned();
            Some((name, bracketed(block, "[default: ")))
        })
        .collect()
}

/// The subcommands `a2o --help` lists.
fn subcommands() -> BTreeSet<String> {
    let help = run_a2o(&["--help"]);
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        // Wrapped descriptions are indented further than the two spaces before a command.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Asserts that `argv` (an image's ENTRYPOINT plus CMD, or a pod's command plus args) runs a
/// real subcommand with real flags: `a2o <args> --help` parses every argument before it prints.
fn assert_runs_real_subcommand(file: &str, argv: &[String]) {
    assert_eq!(
        argv.first().map(String::as_str),
        Some("a2o"),
        "{file} must run the a2o binary: {argv:?}"
    );
    let subcommand = argv.get(1).map(String::as_str).unwrap_or_default();
    assert!(
        subcommands().contains(subcommand),
        "{file} runs `a2o {subcommand}`, which is no subcommand of a2o ({:?})",
        subcommands()
    );
    let mut args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    args.push("--help");
    run_a2o(&args);
}

/// The settings `a2o serve` resolves from a deployment file's variables (and nothing else from
/// this machine), as `--print-config` prints them; fails if the binary rejects a value.
fn effective_settings(file: &str, env: &BTreeMap<String, String>) -> serde_json::Value {
    let output = Command::cargo_bin("a2o")
        .expect("binary builds")
        .args(["serve", "--no-dotenv", "--print-config"])
        .env_clear()
        .envs(env)
        .output()
        .expect("a2o runs");
    assert!(
        output.status.success(),
        "a2o serve rejects the settings of {file} ({env:?}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("--print-config printed no JSON: {err}"))
}

fn effective_ports(effective: &serde_json::Value) -> BTreeSet<u16> {
    ["anthropic_port", "openai_port"]
        .iter()
        .map(|key| {
            effective[key]
                .as_u64()
                .and_then(|port| u16::try_from(port).ok())
                .unwrap_or_else(|| panic!("--print-config shows no {key}"))
        })
        .collect()
}

fn effective_seconds(effective: &serde_json::Value, key: &str) -> f64 {
    effective[key]
        .as_f64()
        .unwrap_or_else(|| panic!("--print-config shows no {key}"))
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {relative}: {err}"))
}

/// Every file under `deploy/`, as (path relative to the crate, text).
fn deploy_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("deploy/ exists")
        .map(|entry| entry.expect("deploy/ is readable").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy();
            let relative = format!("deploy/{name}");
            let text = read(&relative);
            (relative, text)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "deploy/ holds no files");
    files
}

/// All deployment files that may name environment variables.
fn files_naming_variables() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = [".env.example", "docker-compose.yml", "Dockerfile"]
        .iter()
        .map(|name| (name.to_string(), read(name)))
        .collect();
    files.extend(deploy_files());
    files
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The environment variables a file names: an UPPER_CASE word that is referenced (`$NAME`,
/// `${NAME…}`, `$(NAME)`), assigned (`NAME=`), used as a YAML key (`NAME:`), given as a
/// Kubernetes env entry (`name: NAME`), or, having an underscore, mentioned anywhere (comments
/// included, so prose cannot drift either). Names after `os.environ/` are left out.
fn variables_named_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let bytes = line.as_bytes();
        let mut index = 0;
        while index < bytes.len() {
            if !is_identifier_byte(bytes[index]) {
                index += 1;
                continue;
            }
            let start = index;
            while index < bytes.len() && is_identifier_byte(bytes[index]) {
                index += 1;
            }
            let word = &line[start..index];
            let upper_case = word.len() >= 2
                && word.as_bytes()[0].is_ascii_uppercase()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if upper_case && names_a_variable(word, &line[..start], &line[index..]) {
                names.insert(word.to_owned());
            }
        }
    }
    names
}

fn names_a_variable(word: &str, before: &str, after: &str) -> bool {
    // A config file's `os.environ/NAME` is a variable its author chooses, not an a2o setting.
    if before.ends_with("os.environ/") {
        return false;
    }
    let referenced = before.ends_with('$') || before.ends_with("${") || before.ends_with("$(");
    let assigned = after.starts_with('=') && !after.starts_with("==");
    let yaml_key =
        (after == ":" || after.starts_with(": ")) && before.chars().all(|c| c == ' ' || c == '-');
    let env_entry = after.trim().is_empty()
        && before
            .trim_start()
            .trim_start_matches('-')
            .trim_start()
            .strip_prefix("name:")
            .is_some_and(|rest| rest.trim().is_empty());
    referenced || assigned || yaml_key || env_entry || word.contains('_')
}

/// Every `${NAME:-default}` in a text, as (NAME, default).
fn interpolation_defaults(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("${") {
        rest = &rest[open + 2..];
        let Some(close) = rest.find('}') else { break };
        if let Some((name, default)) = rest[..close].split_once(":-") {
            found.push((name.to_owned(), default.to_owned()));
        }
        rest = &rest[close + 1..];
    }
    found
}

/// Replaces each `${NAME:-default}` with its default: the value a deployment file gives when
/// the user sets nothing.
fn with_defaults(text: &str) -> String {
    let mut resolved = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("${") {
        resolved.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find('}')
            .unwrap_or_else(|| panic!("unclosed ${{ in {text}"));
        let (name, default) = after[..close]
            .split_once(":-")
            .unwrap_or_else(|| panic!("${{{}}} has no default", &after[..close]));
        assert!(!name.is_empty(), "empty variable name in {text}");
        resolved.push_str(default);
        rest = &after[close + 1..];
    }
    resolved.push_str(rest);
    resolved
}

/// The settings lines of `.env.example`: `# NAME=value` (commented out) or `NAME=value`, parsed
/// by the binary's own `.env` reader.
fn env_example_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|line| line.trim_start_matches('#').trim_start())
        .filter(|line| {
            line.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
        })
        .flat_map(a2o::server::dotenv::parse)
        .collect()
}

fn yaml_documents(file: &str, text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|err| panic!("{file} is not YAML: {err}"))
        })
        .collect()
}

fn yaml_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn yaml_strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| items.iter().filter_map(yaml_text).collect())
        .unwrap_or_default()
}

/// A compose service's `environment` (map or list form), with interpolations at their defaults.
fn compose_environment(service: &Value) -> BTreeMap<String, String> {
    let environment = &service["environment"];
    let mut env = BTreeMap::new();
    if let Some(map) = environment.as_mapping() {
        for (name, value) in map {
            let name = yaml_text(name).expect("environment names are strings");
            let value = yaml_text(value).unwrap_or_default();
            env.insert(name, with_defaults(&value));
        }
    }
    for entry in yaml_strings(environment) {
        let (name, value) = entry.split_once('=').unwrap_or((&entry, ""));
        env.insert(name.to_owned(), with_defaults(value));
    }
    env
}

/// A duration such as `15s` or `1m30s`, in seconds.
fn duration_seconds(text: &str) -> u64 {
    let mut total = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let amount: u64 = digits
            .parse()
            .unwrap_or_else(|_| panic!("bad duration {text}"));
        digits.clear();
        total += match c {
            'h' => amount * 3600,
            'm' => amount * 60,
            's' => amount,
            _ => panic!("unsupported duration unit in {text}"),
        };
    }
    assert!(digits.is_empty(), "duration {text} has no unit");
    total
}

/// The Dockerfile as instructions (continuation lines joined, comments dropped), split into
/// build stages at each FROM.
fn dockerfile_stages() -> Vec<Vec<(String, String)>> {
    let text = read("Dockerfile");
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for instruction in logical {
        let (keyword, arguments) = instruction
            .split_once(' ')
            .unwrap_or((instruction.as_str(), ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push((keyword, arguments.trim().to_owned()));
    }
    stages
}

fn last_argument<'a>(stage: &'a [(String, String)], keyword: &str) -> Option<&'a str> {
    stage
        .iter()
        .rev()
        .find(|(k, _)| k == keyword)
        .map(|(_, arguments)| arguments.as_str())
}

fn exec_form(file: &str, arguments: &str) -> Vec<String> {
    serde_json::from_str(arguments)
        .unwrap_or_else(|_| panic!("{file}: use the exec (JSON array) form, not {arguments}"))
}

/// The `ENV` settings of a Dockerfile stage.
fn dockerfile_env(stage: &[(String, String)]) -> BTreeMap<String, String> {
    stage
        .iter()
        .filter(|(keyword, _)| keyword == "ENV")
        .flat_map(|(_, arguments)| arguments.split_whitespace())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("Dockerfile: write ENV as NAME=value, not {pair}"));
            (name.to_owned(), value.trim_matches('"').to_owned())
        })
        .collect()
}

/// The settings an a2o container runs with inside Docker or Kubernetes must be accepted and
/// let clients reach it on the ports the image exposes and the examples route to. Returns them.
fn assert_container_settings(
    file: &str,
    settings: &ServeSettings,
    env: &BTreeMap<String, String>,
) -> serde_json::Value {
    let effective = effective_settings(file, env);
    assert_eq!(
        effective["host"], "0.0.0.0",
        "{file}: inside a container a2o must listen on 0.0.0.0"
    );
    assert_eq!(
        effective_ports(&effective),
        settings.default_ports(),
        "{file}: the image exposes, and the examples route to, the default ports"
    );
    effective
}

#[test]
fn env_example_lists_every_serve_variable_at_its_default() {
    let settings = ServeSettings::read();
    let text = read(".env.example");
    assert!(
        a2o::server::dotenv::parse(&text).is_empty(),
        ".env.example must change nothing when copied to .env unedited: comment out every line"
    );
    let listed = env_example_settings(&text);
    let mut seen = BTreeSet::new();
    for (name, value) in &listed {
        assert!(seen.insert(name.clone()), ".env.example lists {name} twice");
        assert!(
            settings.is_known(name),
            ".env.example lists {name}, which a2o serve does not read"
        );
        let expected = settings
            .defaults
            .get(name)
            .cloned()
            .flatten()
            .unwrap_or_default();
        assert_eq!(
            value, &expected,
            ".env.example shows {name}={value}, but its default is {expected:?}"
        );
    }
    let missing: Vec<&String> = settings
        .defaults
        .keys()
        .filter(|name| !seen.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        ".env.example misses variables that a2o serve reads: {missing:?}"
    );
}

#[test]
fn deploy_files_name_only_variables_the_binary_reads() {
    let settings = ServeSettings::read();
    for (file, text) in files_naming_variables() {
        let unknown: Vec<String> = variables_named_in(&text)
            .into_iter()
            .filter(|name| !settings.is_known(name))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names variables a2o serve does not read: {unknown:?}"
        );
    }
    // The scanner must see the variables where they are: an empty result would prove nothing.
    let env_example = variables_named_in(&read(".env.example"));
    let unseen: Vec<&String> = settings
        .defaults
        .keys()
        .filter(|name| !env_example.contains(*name))
        .collect();
    assert!(
        unseen.is_empty(),
        "the scanner missed {unseen:?} in .env.example"
    );
    let compose = variables_named_in(&read("docker-compose.yml"));
    assert!(
        compose.contains(ANTHROPIC_PORT_VAR) && compose.contains(OPENAI_PORT_VAR),
        "the scanner missed the port variables in docker-compose.yml: {compose:?}"
    );
}

#[test]
fn interpolation_defaults_match_the_binary() {
    let settings = ServeSettings::read();
    for (file, text) in files_naming_variables() {
        for (name, default) in interpolation_defaults(&text) {
            assert_eq!(
                default,
                settings.default_of(&name),
                "{file}: ${{{name}:-{default}}} disagrees with the binary's default"
            );
        }
    }
}

#[test]
fn dockerfile_runs_serve_as_non_root_with_an_http_health_check() {
    let settings = ServeSettings::read();
    let stages = dockerfile_stages();
    let final_stage = stages.last().expect("the Dockerfile has a stage");
    assert!(stages.len() >= 2, "the Dockerfile is multi-stage");

    let build_stage = &stages[0];
    let build_command = last_argument(build_stage, "RUN").unwrap_or_default();
    assert!(
        build_command.contains("cargo build --release --locked"),
        "the build stage builds with the lock file: {build_command}"
    );

    let entrypoint = exec_form(
        "Dockerfile",
        last_argument(final_stage, "ENTRYPOINT").expect("ENTRYPOINT"),
    );
    let cmd = exec_form(
        "Dockerfile",
        last_argument(final_stage, "CMD").expect("CMD"),
    );
    let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    assert_runs_real_subcommand("Dockerfile", &argv);
    assert_eq!(argv.get(1).map(String::as_str), Some("serve"));
    let installed = final_stage
        .iter()
        .any(|(k, a)| k == "COPY" && a.ends_with(" /usr/local/bin/a2o"));
    assert!(
        installed,
        "the final stage puts a2o on PATH at /usr/local/bin/a2o"
    );

    let user = last_argument(final_stage, "USER").expect("the final stage sets USER");
    let user_name = user.split(':').next().unwrap_or_default();
    assert!(
        user_name != "root" && user_name != "0",
        "the image runs as a non-root user, not {user}"
    );

    let exposed: BTreeSet<u16> = last_argument(final_stage, "EXPOSE")
        .expect("EXPOSE")
        .split_whitespace()
        .map(|port| port.parse().expect("EXPOSE lists port numbers"))
        .collect();
    assert_eq!(exposed, settings.default_ports());
    assert_container_settings("Dockerfile", &settings, &dockerfile_env(final_stage));

    let health = last_argument(final_stage, "HEALTHCHECK").expect("HEALTHCHECK");
    let check = health
        .split_once("CMD ")
        .map(|(_, command)| command)
        .expect("HEALTHCHECK runs a command");
    assert!(
        with_defaults(check).contains(&format!(
            "http://127.0.0.1:{}/health",
            settings.default_of(ANTHROPIC_PORT_VAR)
        )),
        "the health check requests /health on the Anthropic front: {check}"
    );
    let tool = check.split_whitespace().next().unwrap_or_default();
    let final_installs: Vec<&str> = final_stage
        .iter()
        .filter(|(k, a)| k == "RUN" && a.contains("apt-get install"))
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        final_installs.iter().any(|run| run.contains(tool)),
        "the health check's `{tool}` must be installed in the final image"
    );

    // Without ca-certificates in the image, TLS works only with roots compiled into a2o.
    if !final_installs
        .iter()
        .any(|run| run.contains("ca-certificates"))
    {
        let manifest = read("Cargo.toml");
        let reqwest = manifest
            .lines()
            .find(|line| line.starts_with("reqwest"))
            .expect("reqwest is a dependency");
        assert!(
            reqwest.contains("\"rustls-tls\""),
            "reqwest no longer bundles its TLS roots ({reqwest}): install ca-certificates"
        );
        // The direct upstream client bundles the same Mozilla roots (the system store, when
        // there is one, only adds to them).
        assert!(
            manifest
                .lines()
                .any(|line| line.starts_with("webpki-roots")),
            "the upstream client no longer bundles its TLS roots: install ca-certificates"
        );
    }
}

#[test]
fn dockerignore_keeps_build_output_and_secrets_out() {
    let patterns: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_start_matches('/').to_owned())
        .collect();
    for needed in ["target", ".git", ".env"] {
        assert!(
            patterns.contains(needed),
            ".dockerignore must exclude {needed}"
        );
    }
    for source in ["Cargo.toml", "Cargo.lock", "src"] {
        assert!(
            !patterns.contains(source),
            ".dockerignore must keep {source}: the build needs it"
        );
    }
}

#[test]
fn compose_runs_serve_with_both_ports_env_file_and_health_check() {
    let settings = ServeSettings::read();
    let documents = yaml_documents("docker-compose.yml", &read("docker-compose.yml"));
    let service = &documents[0]["services"]["a2o"];
    assert!(
        service.is_mapping(),
        "docker-compose.yml defines service a2o"
    );
    assert_eq!(yaml_text(&service["build"]).as_deref(), Some("."));
    assert!(
        yaml_text(&service["restart"]).is_some(),
        "docker-compose.yml sets a restart policy"
    );
    assert!(
        service["command"].is_null() && service["entrypoint"].is_null(),
        "docker-compose.yml runs the image's own `a2o serve`"
    );

    let env_file_paths: Vec<String> = match &service["env_file"] {
        Value::String(path) => vec![path.clone()],
        Value::Sequence(items) => items
            .iter()
            .filter_map(|item| yaml_text(item).or_else(|| yaml_text(&item["path"])))
            .collect(),
        _ => Vec::new(),
    };
    assert_eq!(env_file_paths, vec![".env".to_owned()]);

    let env = compose_environment(service);
    let effective = assert_container_settings("docker-compose.yml", &settings, &env);
    let published: BTreeSet<u16> = yaml_strings(&service["ports"])
        .iter()
        .map(|mapping| {
            let resolved = with_defaults(mapping);
            let container = resolved.rsplit(':').next().unwrap_or_default();
            let container = container.split('/').next().unwrap_or_default();
            container.parse().expect("a published container port")
        })
        .collect();
    assert_eq!(published, effective_ports(&effective));

    let health = yaml_strings(&service["healthcheck"]["test"]).join(" ");
    assert!(
        with_defaults(&health).contains(&format!(
            "http://127.0.0.1:{}/health",
            settings.default_of(ANTHROPIC_PORT_VAR)
        )),
        "docker-compose.yml checks /health: {health}"
    );
    assert_stop_grace_covers_shutdown("docker-compose.yml", service, &effective);
}

fn assert_stop_grace_covers_shutdown(file: &str, service: &Value, effective: &serde_json::Value) {
    // Compose's default when the file sets none.
    let stop_grace = yaml_text(&service["stop_grace_period"])
        .map(|text| duration_seconds(&text))
        .unwrap_or(10);
    let shutdown_grace = effective_seconds(effective, "shutdown_grace");
    assert!(
        stop_grace as f64 > shutdown_grace,
        "{file}: stop_grace_period ({stop_grace} s) must exceed a2o's shutdown grace ({shutdown_grace} s)"
    );
}

#[test]
fn nginx_example_fronts_both_ports_of_the_replicas() {
    let settings = ServeSettings::read();
    let compose = yaml_documents(
        "deploy/docker-compose.nginx.yml",
        &read("deploy/docker-compose.nginx.yml"),
    );
    let services = &compose[0]["services"];
    let replica = &services["a2o"];
    assert_eq!(yaml_text(&replica["build"]).as_deref(), Some(".."));
    let env = compose_environment(replica);
    let effective = assert_container_settings("deploy/docker-compose.nginx.yml", &settings, &env);
    assert_stop_grace_covers_shutdown("deploy/docker-compose.nginx.yml", replica, &effective);
    let mounts = yaml_strings(&services["nginx"]["volumes"]);
    assert!(mounts.iter().any(|m| m.starts_with("./nginx.conf:")));

    let conf = read("deploy/nginx.conf");
    let directive_values = |name: &str| -> Vec<String> {
        conf.lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.strip_prefix(name))
            .filter(|rest| rest.starts_with(' '))
            .map(|rest| rest.trim().trim_end_matches(';').trim().to_owned())
            .collect()
    };
    let upstream_ports: BTreeSet<u16> = directive_values("server")
        .iter()
        .filter(|value| *value != "{")
        .map(|value| {
            let address = value.split_whitespace().next().unwrap_or_default();
            let (host, port) = address.rsplit_once(':').expect("server host:port");
            assert_eq!(host, "a2o", "nginx.conf routes to the compose service a2o");
            port.parse().expect("a port number")
        })
        .collect();
    assert_eq!(upstream_ports, effective_ports(&effective));
    let listen_ports: BTreeSet<u16> = directive_values("listen")
        .iter()
        .map(|value| value.parse().expect("listen takes a port"))
        .collect();
    assert_eq!(
        listen_ports,
        settings.default_ports(),
        "nginx serves both fronts"
    );

    assert_eq!(directive_values("proxy_buffering"), vec!["off"]);
    let read_timeout = duration_seconds(&directive_values("proxy_read_timeout")[0]);
    assert!(
        read_timeout as f64 > effective_seconds(&effective, "http_timeout"),
        "nginx must wait longer than a2o's own upstream timeout"
    );
    let body_limit = directive_values("client_max_body_size")[0].clone();
    let megabytes: u64 = body_limit
        .strip_suffix('m')
        .and_then(|n| n.parse().ok())
        .expect("client_max_body_size in m");
    let body_limit = effective["body_limit"]
        .as_u64()
        .expect("--print-config shows body_limit");
    assert!(
        megabytes * 1024 * 1024 > body_limit,
        "nginx must let a2o answer oversized bodies itself"
    );
}

#[test]
fn kubernetes_example_exposes_both_fronts_with_health_probes() {
    let settings = ServeSettings::read();
    let file = "deploy/kubernetes.yaml";
    let documents = yaml_documents(file, &read(file));
    let of_kind = |kind: &str| -> &Value {
        documents
            .iter()
            .find(|doc| yaml_text(&doc["kind"]).as_deref() == Some(kind))
            .unwrap_or_else(|| panic!("{file} has a {kind}"))
    };
    let config_map = of_kind("ConfigMap");
    let deployment = of_kind("Deployment");
    let service = of_kind("Service");

    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    if let Some(data) = config_map["data"].as_mapping() {
        for (name, value) in data {
            env.insert(
                yaml_text(name).unwrap_or_default(),
                yaml_text(value).unwrap_or_default(),
            );
        }
    }
    for entry in container["env"].as_sequence().into_iter().flatten() {
        env.insert(
            yaml_text(&entry["name"]).unwrap_or_default(),
            yaml_text(&entry["value"]).unwrap_or_default(),
        );
    }
    let effective = assert_container_settings(file, &settings, &env);

    let mut argv = yaml_strings(&container["command"]);
    if argv.is_empty() {
        argv.push("a2o".to_owned()); // the image's ENTRYPOINT
    }
    argv.extend(yaml_strings(&container["args"]));
    assert_runs_real_subcommand(file, &argv);

    let mut named_ports = BTreeMap::new();
    for port in container["ports"].as_sequence().into_iter().flatten() {
        let number: u16 = yaml_text(&port["containerPort"])
            .and_then(|text| text.parse().ok())
            .expect("containerPort is a number");
        named_ports.insert(yaml_text(&port["name"]).unwrap_or_default(), number);
    }
    let container_ports: BTreeSet<u16> = named_ports.values().copied().collect();
    assert_eq!(container_ports, effective_ports(&effective));
    let resolve_port = |value: &Value| -> u16 {
        let text = yaml_text(value).expect("a port");
        named_ports
            .get(&text)
            .copied()
            .or_else(|| text.parse().ok())
            .unwrap_or_else(|| panic!("{file}: port {text} is not a container port"))
    };

    for probe in ["readinessProbe", "livenessProbe"] {
        let http_get = &container[probe]["httpGet"];
        assert_eq!(
            yaml_text(&http_get["path"]).as_deref(),
            Some("/health"),
            "{file}: {probe} requests /health"
        );
        assert!(container_ports.contains(&resolve_port(&http_get["port"])));
    }

    let service_targets: BTreeSet<u16> = service["spec"]["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|port| resolve_port(&port["targetPort"]))
        .collect();
    assert_eq!(
        service_targets, container_ports,
        "the Service exposes both fronts"
    );
    assert_eq!(
        service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"],
        "the Service selects the Deployment's pods"
    );

    let pre_stop: u64 = yaml_strings(&container["lifecycle"]["preStop"]["exec"]["command"])
        .last()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(0);
    let shutdown_grace = effective_seconds(&effective, "shutdown_grace");
    // Kubernetes' default when the file sets none.
    let termination_grace: u64 = yaml_text(&pod["terminationGracePeriodSeconds"])
        .and_then(|text| text.parse().ok())
        .unwrap_or(30);
    assert!(
        termination_grace.saturating_sub(pre_stop) as f64 > shutdown_grace,
        "{file}: terminationGracePeriodSeconds must exceed the preStop pause plus A2O_SHUTDOWN_GRACE"
    );
    assert_eq!(
        pod["securityContext"]["runAsNonRoot"],
        Value::Bool(true),
        "{file}: pods run as non-root"
    );
}

#[test]
fn variable_scanner_reads_every_form() {
    let text = "ENV HOST=0.0.0.0\n\
                CMD wget http://127.0.0.1:${PORT:-9998}/health $OTHER\n\
                  ANYROUTER_BASE_URL: x\n\
                - name: A2O_LOG_FORMAT\n\
                # mentions HTTP_TIMEOUT in prose, and os.environ/MY_KEY from a config\n\
                FROM rust AS build\n\
                test: [\"CMD-SHELL\", \"x\"]\n\
                drop: [\"ALL\"]\n";
    let names: Vec<String> = variables_named_in(text).into_iter().collect();
    assert_eq!(
        names,
        [
            "A2O_LOG_FORMAT",
            "ANYROUTER_BASE_URL",
            "HOST",
            "HTTP_TIMEOUT",
            "OTHER",
            "PORT"
        ]
    );
    assert_eq!(
        interpolation_defaults("a ${PORT:-9998} b ${HOST}"),
        vec![("PORT".to_owned(), "9998".to_owned())]
    );
    assert_eq!(with_defaults("${PORT:-1}:${PORT:-1}"), "1:1");
    assert_eq!(duration_seconds("1m30s"), 90);
}
