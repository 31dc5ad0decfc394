#!/usr/bin/env python3
"""The a2o benchmark (run it through scripts/bench.sh, which builds first).

Starts the in-repo mock upstream and two `a2o serve` processes (one per upstream dialect, so
all four routes exist), checks that the mock really receives converted requests, and then
measures, each against the mock hit directly in the same run:

- wrk runs for the four routes x non-streaming/streaming x concurrency 1 and 50: req/s,
  p50/p99, added latency, a2o CPU per request (utime+stime from /proc), peak RSS;
- time to first token with a 10 ms gap between upstream events (sequential probes);
- memory with 1,000 open streams; idle RSS; cold start to the first proxied 200;
- `a2o convert stream` throughput and the conversion cost of a Claude Code-sized request.

It prints one markdown report (the matrix table and the targets table) and writes it to
target/bench/results.md, with the raw numbers in target/bench/results.json.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_VARS = ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]

# The targets: (key, label, limit, "max" if the measured value must be <= limit).
TARGETS = [
    ("cpu_translated_us", "CPU per translated non-streaming request (c50)", 35, "max", "µs"),
    ("cpu_passthrough_us", "CPU per pass-through non-streaming request (c50)", 25, "max", "µs"),
    ("rps_c50", "throughput at concurrency 50 (worst non-streaming route)", 30000, "min", "req/s"),
    ("added_p50_c1_us", "added p50 latency at concurrency 1 (worst route)", 80, "max", "µs"),
    ("added_ttft_us", "added time to first token (worst route, p50)", 200, "max", "µs"),
    ("sse_us_per_event", "SSE conversion CPU per event (worst direction)", 5, "max", "µs"),
    ("idle_rss_mb", "idle RSS", 20, "max", "MB"),
    ("streams_1000_rss_mb", "RSS with 1,000 open streams (worst route)", 100, "max", "MB"),
    ("coldstart_ms", "cold start to the first proxied 200 (p50)", 50, "max", "ms"),
    ("convert_stream_mbps", "`a2o convert stream` throughput (worst direction)", 100, "min", "MB/s"),
]


# ---------------------------------------------------------------------------------------------
# Processes


def _die_with_parent():
    """Children get SIGTERM if this script dies, even by SIGKILL: nothing outlives a run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def child_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update(extra or {})
    return env


class Processes:
    """Every process the benchmark starts, ended on exit whatever happens."""

    def __init__(self):
        self.procs = []

    def start(self, argv, pin=None, env=None, cwd=None, log=None):
        if pin is not None:
            argv = ["taskset", "-c", pin] + argv
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            env=child_env(env),
            cwd=cwd,
            preexec_fn=_die_with_parent,
            text=True,
        )
        # A reader thread keeps stdout drained (a full pipe would block the child) and hands
        # lines to wait_for_line.
        proc.lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                proc.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        self.procs.append(proc)
        return proc

    def stop(self, proc, grace=3.0):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self):
        for proc in list(self.procs):
            self.stop(proc)


def wait_for_line(proc, pattern, timeout=30.0, what="process"):
    """Reads stdout until a line matches; returns the match."""
    deadline = time.time() + timeout
    regex = re.compile(pattern)
    seen = []
    while time.time() < deadline:
        try:
            line = proc.lines.get(timeout=0.1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line.rstrip())
        match = regex.search(line)
        if match:
            return match
    raise RuntimeError(f"{what} did not print {pattern!r}; it printed: {seen[-10:]}")


def cpu_ticks(pid):
    """utime + stime of a whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def memory_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux clear_refs 5), so each run has its own peak."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# HTTP without proxies


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, headers=None, timeout=30):
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# ---------------------------------------------------------------------------------------------
# What is measured: endpoints, bodies, routes

ROUTES = [
    # (name, client dialect, upstream dialect)
    ("openai→anthropic", "openai", "anthropic"),
    ("anthropic→anthropic", "anthropic", "anthropic"),
    ("openai→openai", "openai", "openai"),
    ("anthropic→openai", "anthropic", "openai"),
]
MODELS = {"anthropic": "claude-bench", "openai": "gpt-bench"}
PATHS = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}


def client_headers(dialect):
    if dialect == "anthropic":
        return {"x-api-key": "sk-bench", "anthropic-version": "2023-06-01"}
    return {"Authorization": "Bearer sk-bench"}


def request_body(client, upstream, stream, text="Say hello."):
    """A small request, as a chat client sends it, for a model served by `upstream`."""
    body = {"model": MODELS[upstream], "max_tokens": 256,
            "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


class Endpoint:
    """One URL to load, with its body, headers, and the processes whose CPU it costs."""

    def __init__(self, url, body, headers, pids=(), token="Hello"):
        self.url, self.body, self.headers, self.pids, self.token = url, body, headers, list(pids), token

    def body_file(self, outdir, name):
        path = os.path.join(outdir, "bodies", re.sub(r"[^a-zA-Z0-9_.-]", "_", name) + ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(self.body)
        return path

    def probe_target(self, name, body=None):
        return {"name": name, "url": self.url, "body": body or self.body,
                "headers": self.headers, "token": self.token}


# ---------------------------------------------------------------------------------------------
# Running the pieces


class Bench:
    def __init__(self, args):
        self.args = args
        self.outdir = os.path.join(ROOT, "target", "bench")
        os.makedirs(self.outdir, exist_ok=True)
        self.a2o = os.path.join(ROOT, "target", "release", "a2o")
        self.probe = os.path.join(ROOT, "target", "release", "examples", "bench_probe")
        self.procs = Processes()
        self.pin_server = "0" if args.pin else None
        self.pin_load = "1" if args.pin else None
        self.results = {"runs": [], "notes": []}

    def note(self, text):
        print(f"[bench] {text}", flush=True)

    # --- processes under test

    def start_mock(self, host="127.0.0.1"):
        proc = self.procs.start([self.a2o, "mock-upstream", "--host", host, "--port", "0"],
                                pin=self.pin_load)
        match = wait_for_line(proc, r"listening on (http://\S+)", what="the mock")
        return proc, match.group(1)

    def start_a2o(self, upstream_url, protocol, host="127.0.0.1", extra=(), binary=None):
        argv = [binary or self.a2o, "serve", "--no-dotenv", "--host", host, "--anthropic-port", "0",
                "--openai-port", "0", "--upstream", upstream_url, "--upstream-protocol", protocol]
        argv += list(extra)
        # One log line per request is part of the cost measured; it goes to /dev/null rather
        # than filling the disk during long runs.
        proc = self.procs.start(argv, pin=self.pin_server, log=subprocess.DEVNULL)
        anthropic = wait_for_line(proc, r"anthropic front:\s*(http://\S+)", what="a2o").group(1)
        openai = wait_for_line(proc, r"openai front:\s*(http://\S+)", what="a2o").group(1)
        return proc, {"anthropic": anthropic, "openai": openai}

    # --- the load generator

    def wrk(self, endpoint, name, connections, duration):
        body_file = endpoint.body_file(self.outdir, name)
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
                "-s", os.path.join(HERE, "post.lua"), endpoint.url, "--", body_file]
        argv += [f"{k}: {v}" for k, v in endpoint.headers.items()]
        if self.pin_load is not None:
            argv = ["taskset", "-c", self.pin_load] + argv
        before = {pid: cpu_ticks(pid) for pid in endpoint.pids}
        for pid in endpoint.pids:
            reset_peak_rss(pid)
        out = subprocess.run(argv, capture_output=True, text=True, env=child_env())
        after = {pid: cpu_ticks(pid) for pid in endpoint.pids}
        # A slow proxy is still working off requests wrk gave up on: wait until it is idle so
        # the next run is not charged for them (a2o is idle at once).
        settle_until = time.time() + 60
        previous = after
        while time.time() < settle_until:
            time.sleep(0.3)
            now = {pid: cpu_ticks(pid) for pid in endpoint.pids}
            if all(now[pid] - previous[pid] <= 1 for pid in endpoint.pids):
                break
            previous = now
        match = re.search(r"A2O_RESULT (\{.*\})", out.stdout)
        if not match:
            raise RuntimeError(f"wrk failed for {name}: {out.stdout}\n{out.stderr}")
        result = json.loads(match.group(1))
        requests = max(result["requests"], 1)
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
        result["cpu_us"] = {
            pid: (after[pid] - before[pid]) * 1e6 / CLK_TCK / requests for pid in endpoint.pids}
        result["peak_rss_kb"] = {pid: memory_kb(pid, "VmHWM") for pid in endpoint.pids}
        return result

    def run_probe(self, *argv, timeout=600):
        out = subprocess.run([self.probe, *argv], capture_output=True, text=True,
                             env=child_env(), timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"bench_probe {argv[0]} failed: {out.stderr.strip()}")
        return json.loads(out.stdout)


# ---------------------------------------------------------------------------------------------
# The correctness gate


def gate(mock_url, route, endpoint_for, client, upstream):
    """Sends a route's request twice, non-streaming and streaming, and checks the mock got four
    requests in the upstream's dialect (no cache, no short-circuit) and the client got answers
    in its own. Returns a list of problems (empty when all is well)."""
    problems = []
    http("DELETE", f"{mock_url}/_mock/requests")
    for stream in (False, True):
        endpoint = endpoint_for(stream)
        for _ in range(2):
            status, body = http("POST", endpoint.url, endpoint.body,
                                {"content-type": "application/json", **endpoint.headers})
            text = body.decode(errors="replace")
            if status != 200:
                problems.append(f"{route}: status {status}: {text[:200]}")
                continue
            if stream:
                done = "data: [DONE]" if client == "openai" else "event: message_stop"
                if done not in text or "Hello" not in text:
                    problems.append(f"{route}: stream not in the {client} dialect: {text[:200]}")
            else:
                answer = json.loads(text)
                shape = "choices" in answer if client == "openai" else answer.get("type") == "message"
                if not shape:
                    problems.append(f"{route}: response not in the {client} dialect: {text[:200]}")
    status, body = http("GET", f"{mock_url}/_mock/requests")
    recorded = json.loads(body) if status == 200 else []
    if len(recorded) != 4:
        problems.append(f"{route}: the mock recorded {len(recorded)} requests, expected 4")
    for i, request in enumerate(recorded):
        sent = request.get("body") or {}
        stream_expected = i >= 2
        if not request.get("path", "").endswith(PATHS[upstream]):
            problems.append(f"{route}: upstream got {request.get('path')}, not {PATHS[upstream]}")
        if upstream == "anthropic" and "max_tokens" not in sent:
            problems.append(f"{route}: the Anthropic upstream got no max_tokens: {sent}")
        if client != upstream and upstream == "openai" and stream_expected and \
                "stream_options" not in sent:
            problems.append(f"{route}: translated OpenAI stream request has no stream_options")
        if bool(sent.get("stream")) != stream_expected:
            problems.append(f"{route}: upstream stream flag {sent.get('stream')} != {stream_expected}")
        headers = {k.lower(): v for k, v in request.get("headers", [])}
        key_header = "x-api-key" if upstream == "anthropic" else "authorization"
        if "sk-bench" not in headers.get(key_header, ""):
            problems.append(f"{route}: the key did not reach the upstream in {key_header}")
    return problems


# ---------------------------------------------------------------------------------------------
# Reporting helpers


def fmt(value, digits=0):
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def machine_description():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} × {cpu}, {mem_gb:.0f} GiB RAM, Linux {platform.release()}"


def load_text():
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


# ---------------------------------------------------------------------------------------------
# The a2o benchmark


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 4)),
                        help="seconds per wrk run (default 4)")
    parser.add_argument("--ttft-probes", type=int, default=int(os.environ.get("BENCH_TTFT_PROBES", 80)))
    parser.add_argument("--streams", type=int, default=int(os.environ.get("BENCH_STREAMS", 1000)))
    parser.add_argument("--pin", action="store_true", default=os.environ.get("BENCH_PIN") == "1",
                        help="pin a2o to CPU 0 and the mock and wrk to CPU 1")
    parser.add_argument("--baseline", default=os.environ.get("BENCH_BASELINE_BIN", ""),
                        help="another a2o binary (e.g. the last release) measured in the same run, "
                             "route by route right before this one, for an A/B comparison")
    parser.add_argument("--transcript-mb", type=int, default=int(os.environ.get("BENCH_TRANSCRIPT_MB", 64)))
    args = parser.parse_args()
    bench = Bench(args)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        report = run(bench)
    finally:
        bench.procs.stop_all()
    print(report)


def run(bench):
    args = bench.args
    results = bench.results
    started = time.time()
    results["machine"] = machine_description()
    results["load_before"] = load_text()
    results["pinned"] = bool(args.pin)
    bench.note(f"machine: {results['machine']}; load average {results['load_before']}"
               f"{'; pinned: a2o on CPU 0, mock and wrk on CPU 1' if args.pin else '; unpinned'}")

    mock, mock_url = bench.start_mock()
    # A byte-for-byte TCP relay in front of the mock: the floor of any proxy hop here.
    relay = bench.procs.start([bench.probe, "relay", "--to", mock_url], pin=bench.pin_server)
    relay_url = wait_for_line(relay, r"relay listening on (http://\S+)", what="the relay").group(1)
    a2o = {}
    for upstream in ("anthropic", "openai"):
        proc, fronts = bench.start_a2o(mock_url, upstream)
        time.sleep(0.2)
        a2o[upstream] = {"proc": proc, "fronts": fronts,
                         "idle_rss_kb": memory_kb(proc.pid, "VmRSS")}
    baseline = {}
    if args.baseline:
        for upstream in ("anthropic", "openai"):
            proc, fronts = bench.start_a2o(mock_url, upstream, binary=args.baseline)
            baseline[upstream] = {"proc": proc, "fronts": fronts}
        results["baseline_bin"] = args.baseline

    def via(route_client, route_upstream, stream, text="Say hello.", instances=None):
        instance = (instances or a2o)[route_upstream]
        url = instance["fronts"][route_client] + PATHS[route_client]
        return Endpoint(url, request_body(route_client, route_upstream, stream, text),
                        client_headers(route_client), [instance["proc"].pid, mock.pid])

    def direct(upstream, stream, text="Say hello."):
        return Endpoint(mock_url + PATHS[upstream], request_body(upstream, upstream, stream, text),
                        client_headers(upstream), [mock.pid])

    def relayed(upstream, stream, text="Say hello."):
        return Endpoint(relay_url + PATHS[upstream], request_body(upstream, upstream, stream, text),
                        client_headers(upstream), [relay.pid, mock.pid])

    # --- correctness gate: before any timing
    problems = []
    for name, client, upstream in ROUTES:
        problems += gate(mock_url, name, lambda s, c=client, u=upstream: via(c, u, s), client, upstream)
    if problems:
        for problem in problems:
            print(f"GATE FAILED: {problem}", file=sys.stderr)
        raise SystemExit("the correctness gate failed: nothing was timed")
    bench.note("correctness gate passed: the mock received every route's converted requests "
               "(twice each, streaming and not), and clients got their own dialect back")
    results["gate"] = "passed"

    # --- warm-up: connection pools, allocator arenas, page cache
    for name, client, upstream in ROUTES:
        bench.wrk(via(client, upstream, False), f"warmup {name}", 50, 1)

    # --- the matrix
    matrix = []
    for stream in (False, True):
        for connections in (1, 50):
            for upstream in ("anthropic", "openai"):
                # The direct baseline is run before and after the proxied runs; the better of
                # the two is the baseline, so one unlucky run cannot make a proxy look free.
                first = bench.wrk(direct(upstream, stream),
                                  f"direct {upstream} {stream} {connections}", connections, args.duration)
                rows = []
                relay_result = bench.wrk(relayed(upstream, stream),
                                         f"relay {upstream} {stream} {connections}", connections, args.duration)
                rows.append({"route": f"TCP relay → {upstream} mock", "client": upstream,
                             "upstream": upstream, "stream": stream, "c": connections,
                             "direct": False, "relay": True,
                             **summarise(relay_result, relay.pid, mock.pid)})
                for name, client, up in ROUTES:
                    if up != upstream:
                        continue
                    if baseline:
                        result = bench.wrk(via(client, up, stream, instances=baseline),
                                           f"baseline {name} {stream} {connections}", connections,
                                           args.duration)
                        rows.append({"route": f"{name} (baseline)", "client": client, "upstream": up,
                                     "stream": stream, "c": connections, "direct": False,
                                     "relay": False, "baseline": True,
                                     **summarise(result, baseline[up]["proc"].pid, mock.pid)})
                    endpoint = via(client, up, stream)
                    result = bench.wrk(endpoint, f"{name} {stream} {connections}", connections,
                                       args.duration)
                    rows.append({"route": name, "client": client, "upstream": up, "stream": stream,
                                 "c": connections, "direct": False, "relay": False,
                                 **summarise(result, a2o[up]["proc"].pid, mock.pid)})
                second = bench.wrk(direct(upstream, stream),
                                   f"direct {upstream} {stream} {connections}", connections, args.duration)
                base = min(first, second, key=lambda r: r["p50_us"])
                base_row = {"route": f"direct → {upstream} mock", "client": upstream,
                            "upstream": upstream, "stream": stream, "c": connections,
                            "direct": True, "relay": False, **summarise(base, None, mock.pid)}
                base_row["p99_us"] = min(first["p99_us"], second["p99_us"])
                matrix.append(base_row)
                for row in rows:
                    row["added_p50_us"] = row["p50_us"] - base_row["p50_us"]
                    row["added_p99_us"] = row["p99_us"] - base_row["p99_us"]
                    matrix.append(row)
                for row in rows[1:]:
                    name = row["route"]
                    if row.get("baseline"):
                        name = name.replace(" (baseline)", "·base")
                    bench.note(f"{name:22} {'stream' if stream else 'json  '} c={connections:<3}"
                               f" {row['rps']:9,.0f} req/s  p50 {row['p50_us']:7,.0f} µs"
                               f"  (+{row['added_p50_us']:5,.0f})  a2o {row['a2o_cpu_us']:6.1f} µs/req")
    results["matrix"] = matrix
    for upstream in ("anthropic", "openai"):
        pid = a2o[upstream]["proc"].pid
        a2o[upstream]["after_rss_kb"] = memory_kb(pid, "VmRSS")

    # --- time to first token: sequential probes, 10 ms between upstream events
    slow = "mock:slow:10 Say hello."
    groups = []
    for upstream in ("anthropic", "openai"):
        targets = [direct(upstream, True, slow).probe_target(f"direct {upstream}"),
                   relayed(upstream, True, slow).probe_target(f"TCP relay {upstream}")]
        for name, client, up in ROUTES:
            if up == upstream:
                targets.append(via(client, up, True, slow).probe_target(name))
                if baseline:
                    targets.append(via(client, up, True, slow, instances=baseline)
                                   .probe_target(f"{name} (baseline)"))
        groups.append({"targets": targets})
    spec = os.path.join(bench.outdir, "ttft-spec.json")
    with open(spec, "w") as f:
        json.dump({"groups": groups}, f)
    bench.note(f"time to first token: {args.ttft_probes} sequential probes per target")
    ttft = bench.run_probe("ttft", "--spec", spec, "--probes", str(args.ttft_probes))
    results["ttft"] = ttft

    # --- 1,000 open streams, each on a fresh a2o so the number is the whole process
    holds = []
    for name, client, upstream in [ROUTES[0], ROUTES[1]]:
        proc, fronts = bench.start_a2o(mock_url, upstream)
        time.sleep(0.2)
        target = {"name": name, "url": fronts[client] + PATHS[client],
                  "body": request_body(client, upstream, True, "mock:stall hold this stream"),
                  "headers": client_headers(client)}
        path = os.path.join(bench.outdir, "hold-target.json")
        with open(path, "w") as f:
            json.dump(target, f)
        bench.note(f"holding {args.streams} open streams through {name}")
        hold = bench.run_probe("hold", "--target", path, "--count", str(args.streams),
                               "--pid", f"a2o={proc.pid}", "--pid", f"mock={mock.pid}")
        holds.append(hold)
        bench.procs.stop(proc)
    results["hold"] = holds

    # --- cold start
    bench.note("cold start: 10 starts to the first proxied 200")
    results["coldstart"] = bench.run_probe("coldstart", "--bin", bench.a2o, "--upstream", mock_url,
                                           "--runs", "10")

    # --- convert stream throughput
    streams = {}
    for dialect in ("anthropic", "openai"):
        path = os.path.join(bench.outdir, f"transcript-{dialect}-{args.transcript_mb}mb.sse")
        meta_path = path + ".json"
        if not (os.path.exists(path) and os.path.exists(meta_path)):
            meta = bench.run_probe("transcript", "--from", dialect, "--mb", str(args.transcript_mb),
                                   "--out", path)
            with open(meta_path, "w") as f:
                json.dump(meta, f)
        with open(meta_path) as f:
            meta = json.load(f)
        best = None
        for _ in range(3):
            with open(path, "rb") as stdin, open(os.path.join(bench.outdir, "convert-stream.err"), "wb") as err:
                start = time.perf_counter()
                proc = subprocess.Popen([bench.a2o, "convert", "stream", "--from", dialect],
                                        stdin=stdin, stdout=subprocess.DEVNULL, stderr=err)
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - start
            if status != 0:
                raise RuntimeError(f"a2o convert stream --from {dialect} failed ({status})")
            cpu = usage.ru_utime + usage.ru_stime
            run_result = {"bytes": meta["bytes"], "events": meta["events"], "wall_s": wall, "cpu_s": cpu,
                          "mb_per_s": meta["bytes"] / 2**20 / wall,
                          "us_per_event": cpu * 1e6 / meta["events"]}
            if best is None or run_result["wall_s"] < best["wall_s"]:
                best = run_result
        streams[dialect] = best
    results["convert_stream"] = streams

    # --- conversion cost of a Claude Code-sized request
    request_path = os.path.join(bench.outdir, "claude-code-request.json")
    results["convert_cost"] = bench.run_probe("convert-cost", "--iterations", "500",
                                              "--write-request", request_path)

    results["load_after"] = load_text()
    results["elapsed_s"] = time.time() - started
    results["idle_rss_kb"] = {u: a2o[u]["idle_rss_kb"] for u in a2o}
    results["after_rss_kb"] = {u: a2o[u]["after_rss_kb"] for u in a2o}
    report = render(results)
    with open(os.path.join(bench.outdir, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(bench.outdir, "results.md"), "w") as f:
        f.write(report)
    return report


def summarise(result, a2o_pid, mock_pid):
    return {
        "rps": result["rps"],
        "p50_us": result["p50_us"],
        "p99_us": result["p99_us"],
        "requests": result["requests"],
        "errors": result["status_errors"] + result["socket_errors"],
        "a2o_cpu_us": result["cpu_us"].get(a2o_pid) if a2o_pid else None,
        "mock_cpu_us": result["cpu_us"].get(mock_pid),
        "a2o_peak_rss_kb": result["peak_rss_kb"].get(a2o_pid) if a2o_pid else None,
    }


def measured_targets(results):
    """The numbers the issue's targets are about, from the raw results."""
    matrix = results["matrix"]
    via = [r for r in matrix if not r["direct"] and not r.get("relay") and not r.get("baseline")]
    json_c50 = [r for r in via if not r["stream"] and r["c"] == 50]
    translated = [r["a2o_cpu_us"] for r in json_c50 if r["client"] != r["upstream"]]
    passthrough = [r["a2o_cpu_us"] for r in json_c50 if r["client"] == r["upstream"]]
    added_c1 = [r["added_p50_us"] for r in via if r["c"] == 1]
    ttft = results["ttft"]
    added_ttft = []
    for name, _client, upstream in ROUTES:
        added_ttft.append(ttft[name]["first_token"]["p50_us"] - ttft[f"direct {upstream}"]["first_token"]["p50_us"])
    stream_cost = results["convert_stream"]
    holds = results["hold"]
    return {
        "cpu_translated_us": max(translated),
        "cpu_passthrough_us": max(passthrough),
        "rps_c50": min(r["rps"] for r in json_c50),
        "added_p50_c1_us": max(added_c1),
        "added_ttft_us": max(added_ttft),
        "sse_us_per_event": max(s["us_per_event"] for s in stream_cost.values()),
        "idle_rss_mb": max(results["idle_rss_kb"].values()) / 1024,
        "streams_1000_rss_mb": max(h["during"]["a2o"]["rss_kb"] for h in holds) / 1024,
        "coldstart_ms": results["coldstart"]["first_200"]["p50_us"] / 1000,
        "convert_stream_mbps": min(s["mb_per_s"] for s in stream_cost.values()),
    }


def render(results):
    lines = []
    add = lines.append
    add(f"# a2o benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}")
    add("")
    add(f"Machine: {results['machine']}. Load average (1/5/15 min) before: {results['load_before']},"
        f" after: {results['load_after']}. {'Pinned: a2o on CPU 0, mock and wrk on CPU 1' if results['pinned'] else 'Unpinned'}."
        f" wrk, 1 thread; took {results['elapsed_s']:.0f} s."
        + (f" Rows marked (baseline) are `{results['baseline_bin']}`, measured right before the build under test." if results.get('baseline_bin') else ""))
    add("")
    add("| route (client → upstream) | body | conc. | req/s | p50 µs | p99 µs | added p50 µs | added p99 µs | a2o CPU µs/req | mock CPU µs/req | a2o peak RSS MB |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["matrix"]:
        warn = f" ⚠ {r['errors']} errors" if r["errors"] else ""
        plain = r["direct"] or r.get("relay") or r.get("baseline")
        add(f"| {r['route'] if plain else '**' + r['route'] + '**'}{warn} | {'SSE' if r['stream'] else 'JSON'} | {r['c']} "
            f"| {fmt(r['rps'])} | {fmt(r['p50_us'])} | {fmt(r['p99_us'])} "
            f"| {fmt(r.get('added_p50_us'))} | {fmt(r.get('added_p99_us'))} "
            f"| {fmt(r['a2o_cpu_us'], 1)}{' (relay)' if r.get('relay') else ''} | {fmt(r['mock_cpu_us'], 1)} "
            f"| {fmt(r['a2o_peak_rss_kb'] / 1024 if r['a2o_peak_rss_kb'] else None, 1)} |")
    add("")
    add("Time to first token (10 ms between upstream events; sequential probes on keep-alive connections):")
    add("")
    add("| route | first byte p50 µs | first token p50 µs | first token p99 µs | added first token p50 µs | added p99 µs |")
    add("|---|---:|---:|---:|---:|---:|")
    ttft = results["ttft"]
    calibration = [(f"{kind} {u}", None, u) for u in ("anthropic", "openai") for kind in ("direct", "TCP relay")]
    compared = [(f"{name} (baseline)", c, u) for name, c, u in ROUTES if f"{name} (baseline)" in ttft]
    for name, _client, upstream in calibration + compared + ROUTES:
        t = ttft[name]
        base = ttft[f"direct {upstream}"]["first_token"]
        added = "" if name.startswith("direct") else fmt(t["first_token"]["p50_us"] - base["p50_us"])
        added99 = "" if name.startswith("direct") else fmt(t["first_token"]["p99_us"] - base["p99_us"])
        fail = f" ⚠ {t['failures']} failed" if t["failures"] else ""
        add(f"| {name}{fail} | {fmt(t['first_byte']['p50_us'])} | {fmt(t['first_token']['p50_us'])} "
            f"| {fmt(t['first_token']['p99_us'])} | {added} | {added99} |")
    add("")
    measured = measured_targets(results)
    add("| target | limit | measured | met |")
    add("|---|---:|---:|:---:|")
    for key, label, limit, kind, unit in TARGETS:
        value = measured[key]
        ok = value <= limit if kind == "max" else value >= limit
        digits = 1 if value < 100 else 0
        add(f"| {label} | {'≤' if kind == 'max' else '≥'} {fmt(limit)} {unit} | {fmt(value, digits)} {unit} | {'yes' if ok else '**no**'} |")
    add("")
    holds = results["hold"]
    details = [f"{h['target']}: {h['opened']}/{h['requested']} open, a2o RSS {h['before']['a2o']['rss_kb'] / 1024:.1f} → "
               f"{h['during']['a2o']['rss_kb'] / 1024:.1f} MB "
               f"({(h['during']['a2o']['rss_kb'] - h['before']['a2o']['rss_kb']) / max(h['opened'], 1):.1f} KB per stream), "
               f"mock {h['during']['mock']['rss_kb'] / 1024:.1f} MB" for h in holds]
    add("Open streams: " + "; ".join(details) + ".")
    idle = results["idle_rss_kb"]
    after = results["after_rss_kb"]
    add(f"Idle RSS right after start: {', '.join(f'{u} upstream {idle[u] / 1024:.1f} MB' for u in idle)}; "
        f"after the load runs: {', '.join(f'{after[u] / 1024:.1f} MB' for u in after)}.")
    cold = results["coldstart"]
    add(f"Cold start ({cold['runs']} runs): listening after p50 {cold['listening']['p50_us'] / 1000:.1f} ms, "
        f"first proxied 200 after p50 {cold['first_200']['p50_us'] / 1000:.1f} ms (max {cold['first_200']['max_us'] / 1000:.1f} ms).")
    cs = results["convert_stream"]
    add("`a2o convert stream` (best of 3): " + "; ".join(
        f"from {d}: {s['bytes'] / 2**20:.0f} MB, {s['events']:,} events in {s['wall_s']:.2f} s = {s['mb_per_s']:.0f} MB/s, "
        f"{s['us_per_event']:.2f} µs CPU per event" for d, s in cs.items()) + ".")
    cc = results["convert_cost"]
    add(f"Claude Code-sized request ({cc['request_bytes'] / 1000:.1f} kB, {cc['tools']} tools, JSON Schema 2020-12): "
        f"Anthropic → OpenAI {cc['anthropic_to_openai']['best_us']:.0f} µs (median of batches {cc['anthropic_to_openai']['median_us']:.0f}), "
        f"OpenAI → Anthropic {cc['openai_to_anthropic']['best_us']:.0f} µs; of which the typed parse "
        f"{cc['parse_anthropic_typed']['best_us']:.0f} µs (untracked {cc['parse_anthropic_untracked']['best_us']:.0f} µs); "
        f"a plain serde_json Value parse + write takes {cc['serde_value_roundtrip']['best_us']:.0f} µs.")
    add("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
