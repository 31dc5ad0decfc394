#!/usr/bin/env python3
"""a2o against its peers, LiteLLM and anyllm_proxy, in one run (via scripts/bench-peers.sh).

Runs inside a private network namespace (bench-peers.sh makes it with `unshare -n`) where
198.18.0.1 (the benchmarking range) is on `lo`: anyllm_proxy refuses loopback upstreams, and
the namespace keeps every proxy off the real network. Each system runs as one process per
upstream dialect, as a2o does, against the same mock; every route passes a correctness gate
first (the mock must receive the request in the upstream's dialect), and a route a peer does
not really translate is reported, not timed. Prints the systems side by side with ratios from
this run and writes target/bench/peers.md and peers.json.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import ROUTES, PATHS, MODELS, Endpoint, http, memory_kb, wait_for_line  # noqa: E402

HOST = "198.18.0.1"
UPSTREAM_KEY = "sk-upstream"
CLIENT_KEY = "sk-bench"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(url, timeout=120.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            status, _ = http("GET", url, timeout=2)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def litellm_config(mock_url, upstream):
    if upstream == "anthropic":
        model, base = "anthropic/claude-bench", mock_url
    else:
        model, base = "openai/gpt-bench", mock_url + "/v1"
    return (
        "model_list:\n"
        f"  - model_name: {MODELS[upstream]}\n"
        "    litellm_params:\n"
        f"      model: {model}\n"
        f"      api_base: {base}\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "litellm_settings:\n"
        "  num_retries: 0\n"
        "  request_timeout: 120\n"
        "  callbacks: []\n"
        "  success_callback: []\n"
        "  failure_callback: []\n"
        "  use_chat_completions_url_for_anthropic_messages: true\n"
        "router_settings:\n"
        "  num_retries: 0\n"
        "general_settings:\n"
        f"  master_key: {CLIENT_KEY}\n"
    )


def anyllm_config(mock_url, upstream):
    model = "anthropic/claude-bench" if upstream == "anthropic" else "openai/gpt-bench"
    return (
        "model_list:\n"
        f"  - model_name: {MODELS[upstream]}\n"
        "    litellm_params:\n"
        f"      model: {model}\n"
        f"      api_base: {mock_url}\n"
        f"      api_key: {UPSTREAM_KEY}\n"
    )


class Systems:
    """Starts each system under test for one upstream dialect; returns (procs, fronts)."""

    def __init__(self, runner, args):
        self.runner = runner
        self.args = args
        self.workdir = os.path.join(runner.outdir, "peers")
        os.makedirs(self.workdir, exist_ok=True)

    def start(self, name, mock_url, upstream):
        return getattr(self, "start_" + name)(mock_url, upstream)

    def start_a2o(self, mock_url, upstream):
        proc, fronts = self.runner.start_a2o(mock_url, upstream, host=HOST)
        return proc, fronts

    def start_litellm(self, mock_url, upstream):
        path = os.path.join(self.workdir, f"litellm-{upstream}.yaml")
        with open(path, "w") as f:
            f.write(litellm_config(mock_url, upstream))
        port = free_port()
        log = open(os.path.join(self.workdir, f"litellm-{upstream}.log"), "w")
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
               "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
               "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "True", "NO_DOCS": "True"}
        proc = self.runner.procs.start([self.args.litellm, "--config", path, "--host", HOST,
                                        "--port", str(port), "--num_workers", "1"],
                                       env=env, log=log)
        base = f"http://{HOST}:{port}"
        wait_http(base + "/health/liveliness", proc=proc)
        return proc, {"anthropic": base, "openai": base}

    def start_anyllm(self, mock_url, upstream):
        path = os.path.join(self.workdir, f"anyllm-{upstream}.yaml")
        with open(path, "w") as f:
            f.write(anyllm_config(mock_url, upstream))
        port = free_port()
        home = os.path.join(self.workdir, "anyllm-home")
        os.makedirs(home, exist_ok=True)
        log = open(os.path.join(self.workdir, f"anyllm-{upstream}.log"), "w")
        env = {"PROXY_CONFIG": path, "CACHE_MAX_ENTRIES": "0", "CACHE_TTL_SECS": "0",
               "PROXY_API_KEYS": CLIENT_KEY, "LISTEN_PORT": str(port), "HOME": home,
               "ADMIN_BIND": HOST, "ADMIN_PORT": str(free_port()), "RUST_LOG": "error"}
        proc = self.runner.procs.start([self.args.anyllm], env=env, log=log)
        base = f"http://{HOST}:{port}"
        wait_http(base + "/health", proc=proc)
        return proc, {"anthropic": base, "openai": base}


def headers_for(client):
    if client == "anthropic":
        return {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    return {"Authorization": f"Bearer {CLIENT_KEY}"}


def gate(mock_url, endpoint_for, client, upstream):
    """Non-streaming and streaming once each: both must answer 200 in the client's dialect,
    and the mock must have received both on the upstream dialect's path."""
    problems = []
    # A slow peer may still be working off the previous load run: only requests carrying this
    # gate's own marker count.
    marker = f"gate-{time.time_ns()}"
    http("DELETE", f"{mock_url}/_mock/requests")
    for stream in (False, True):
        endpoint = endpoint_for(stream, f"Say hello. {marker}")
        status, body = http("POST", endpoint.url, endpoint.body,
                            {"content-type": "application/json", **endpoint.headers}, timeout=60)
        text = body.decode(errors="replace")
        if status != 200:
            problems.append(f"status {status}: {text[:160]}")
        elif stream and ("data: [DONE]" if client == "openai" else "message_stop") not in text:
            problems.append(f"stream not in the {client} dialect: {text[:160]}")
    _, body = http("GET", f"{mock_url}/_mock/requests")
    recorded = json.loads(body)
    paths = [r.get("path", "") for r in recorded if marker in json.dumps(r.get("body"))]
    if len(paths) != 2 or not all(p.endswith(PATHS[upstream]) for p in paths):
        problems.append(f"the mock received {paths}, expected two requests on {PATHS[upstream]}"
                        + (" (not translated)" if client != upstream else ""))
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 3)))
    parser.add_argument("--ttft-probes", type=int, default=int(os.environ.get("BENCH_TTFT_PROBES", 30)))
    parser.add_argument("--streams", type=int, default=int(os.environ.get("BENCH_STREAMS", 1000)))
    parser.add_argument("--litellm", default=os.environ.get("LITELLM_BIN", ""))
    parser.add_argument("--anyllm", default=os.environ.get("ANYLLM_BIN", ""))
    args = parser.parse_args()
    args.pin = False
    runner = bench.Bench(args)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        report = run(runner, args)
    finally:
        runner.procs.stop_all()
    print(report)


def run(runner, args):
    started = time.time()
    names = ["a2o"]
    skipped = {}
    for name, path in (("litellm", args.litellm), ("anyllm", args.anyllm)):
        if path and (os.path.exists(path) or shutil.which(path)):
            names.append(name)
        else:
            skipped[name] = "not installed (see the install step's message above)"
    results = {"machine": bench.machine_description(), "load_before": bench.load_text(),
               "systems": names, "skipped": skipped, "rows": [], "ttft": {}, "memory": {},
               "gate": {}}
    runner.note(f"machine: {results['machine']}; load average {results['load_before']}; "
                f"systems: {', '.join(names)}")
    mock, mock_url = runner.start_mock(host=HOST)
    systems = Systems(runner, args)

    def direct(upstream, stream, text="Say hello."):
        return Endpoint(mock_url + PATHS[upstream], bench.request_body(upstream, upstream, stream, text),
                        bench.client_headers(upstream), [mock.pid])

    # Direct baselines, once for every upstream dialect, body kind and concurrency.
    baselines = {}
    for upstream in ("anthropic", "openai"):
        for stream in (False, True):
            for c in (1, 50):
                r = runner.wrk(direct(upstream, stream), f"peers direct {upstream} {stream} {c}", c, args.duration)
                baselines[(upstream, stream, c)] = r
    slow = "mock:slow:10 Say hello."
    for name in names:
        results["memory"][name] = {}
        for upstream in ("anthropic", "openai"):
            try:
                proc, fronts = systems.start(name, mock_url, upstream)
            except Exception as err:  # a peer that cannot start is reported, not fatal
                results["skipped"].setdefault(name, f"did not start: {err}")
                runner.note(f"{name} ({upstream} upstream) did not start: {err}")
                continue
            time.sleep(0.5)
            idle = memory_kb(proc.pid, "VmRSS")
            ttft_targets = [direct(upstream, True, slow).probe_target(f"{name} direct {upstream}")]
            for route, client, up in ROUTES:
                if up != upstream:
                    continue
                key = f"{name} {route}"

                def endpoint_for(stream, text="Say hello.", client=client, up=up):
                    return Endpoint(fronts[client] + PATHS[client],
                                    bench.request_body(client, up, stream, text),
                                    headers_for(client), [proc.pid, mock.pid])

                problems = gate(mock_url, endpoint_for, client, up)
                results["gate"][key] = problems
                if problems:
                    runner.note(f"{key}: not timed: {'; '.join(problems)}")
                    continue
                runner.note(f"{key}: gate passed")
                for stream in (False, True):
                    for c in (1, 50):
                        r = runner.wrk(endpoint_for(stream), f"peers {key} {stream} {c}", c, args.duration)
                        base = baselines[(up, stream, c)]
                        row = {"system": name, "route": route, "stream": stream, "c": c,
                               "rps": r["rps"], "p50_us": r["p50_us"], "p99_us": r["p99_us"],
                               "added_p50_us": r["p50_us"] - base["p50_us"],
                               "cpu_us": r["cpu_us"][proc.pid], "errors": r["status_errors"] + r["socket_errors"],
                               "peak_rss_kb": r["peak_rss_kb"][proc.pid]}
                        results["rows"].append(row)
                        runner.note(f"{key:28} {'SSE ' if stream else 'JSON'} c={c:<3} {row['rps']:9,.0f} req/s "
                                    f"p50 {row['p50_us']:8,.0f} µs  CPU {row['cpu_us']:9,.1f} µs/req")
                ttft_targets.append(endpoint_for(True, slow).probe_target(key))
            spec = os.path.join(systems.workdir, "ttft-spec.json")
            with open(spec, "w") as f:
                json.dump({"groups": [{"targets": ttft_targets}]}, f)
            if len(ttft_targets) > 1:
                results["ttft"].update(runner.run_probe("ttft", "--spec", spec, "--probes", str(args.ttft_probes)))
            hold = None
            translated = [t for t in ttft_targets[1:] if t["name"] == f"{name} openai→anthropic"]
            if translated:
                target = dict(translated[0])
                target["body"] = bench.request_body("openai", "anthropic", True, "mock:stall hold this stream")
                path = os.path.join(systems.workdir, "hold-target.json")
                with open(path, "w") as f:
                    json.dump(target, f)
                try:
                    hold = runner.run_probe("hold", "--target", path, "--count", str(args.streams),
                                            "--pid", f"proxy={proc.pid}", timeout=300)
                except Exception as err:
                    hold = {"error": str(err)}
            results["memory"][name][upstream] = {
                "idle_rss_kb": idle, "after_rss_kb": memory_kb(proc.pid, "VmRSS"), "hold": hold}
            runner.procs.stop(proc, grace=10)
    results["load_after"] = bench.load_text()
    results["elapsed_s"] = time.time() - started
    report = render(results)
    with open(os.path.join(runner.outdir, "peers.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(runner.outdir, "peers.md"), "w") as f:
        f.write(report)
    return report


def render(results):
    names = results["systems"]
    peers = [n for n in names if n != "a2o"]
    lines = []
    add = lines.append
    add(f"# a2o and its peers, {time.strftime('%Y-%m-%d %H:%M')}")
    add("")
    add(f"Machine: {results['machine']}. Load average before: {results['load_before']}, after: "
        f"{results['load_after']}. One process per system and upstream dialect, in a private network "
        f"namespace, against the same in-repo mock; wrk, 1 thread; took {results['elapsed_s']:.0f} s.")
    for name, why in results["skipped"].items():
        add(f"- **{name}** skipped: {why}")
    for key, problems in results["gate"].items():
        if problems:
            add(f"- **{key}** not timed (correctness gate): {'; '.join(problems)}")
    add("")
    header = "| route | body | conc. | a2o req/s | a2o p50 µs | a2o CPU µs/req |"
    rule = "|---|---|---:|---:|---:|---:|"
    for peer in peers:
        header += f" {peer} req/s | {peer} p50 µs | {peer} CPU µs/req | {peer} CPU ÷ a2o |"
        rule += "---:|---:|---:|---:|"
    add(header)
    add(rule)
    index = {(r["system"], r["route"], r["stream"], r["c"]): r for r in results["rows"]}
    for route, _client, _up in ROUTES:
        for stream in (False, True):
            for c in (1, 50):
                a = index.get(("a2o", route, stream, c))
                if a is None:
                    continue
                line = (f"| {route} | {'SSE' if stream else 'JSON'} | {c} | {a['rps']:,.0f} | {a['p50_us']:,.0f} "
                        f"| {a['cpu_us']:,.1f} |")
                for peer in peers:
                    p = index.get((peer, route, stream, c))
                    if p is None:
                        line += " – | – | – | – |"
                        continue
                    warn = f" ⚠{p['errors']}" if p["errors"] else ""
                    line += (f" {p['rps']:,.0f}{warn} | {p['p50_us']:,.0f} | {p['cpu_us']:,.1f} "
                             f"| {p['cpu_us'] / a['cpu_us']:,.1f}× |")
                add(line)
    add("")
    add("| system | route | added time to first token p50 µs | p99 µs | idle RSS MB | RSS at the end MB | RSS with open streams MB |")
    add("|---|---|---:|---:|---:|---:|---:|")
    ttft = results["ttft"]
    for name in names:
        for route, _client, upstream in ROUTES:
            key = f"{name} {route}"
            t = ttft.get(key)
            base = ttft.get(f"{name} direct {upstream}")
            mem = results["memory"].get(name, {}).get(upstream, {})
            hold = mem.get("hold") or {}
            hold_text = "–"
            if route == "openai→anthropic" and "during" in hold:
                hold_text = f"{hold['during']['proxy']['rss_kb'] / 1024:,.1f} ({hold['opened']}/{hold['requested']} open)"
            elif route == "openai→anthropic" and "error" in hold:
                hold_text = "failed"
            if t is None or base is None:
                added = added99 = "–"
            else:
                added = f"{t['first_token']['p50_us'] - base['first_token']['p50_us']:,.0f}"
                added99 = f"{t['first_token']['p99_us'] - base['first_token']['p99_us']:,.0f}"
            add(f"| {name} | {route} | {added} | {added99} "
                f"| {mem.get('idle_rss_kb', 0) / 1024:,.1f} | {mem.get('after_rss_kb', 0) / 1024:,.1f} | {hold_text} |")
    add("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
