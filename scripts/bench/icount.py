#!/usr/bin/env python3
"""Instructions per proxied request, counted by callgrind: a cost measure that does not
depend on how busy the machine is, for comparing a change with the one before it.

Runs the mock normally and each `a2o serve` under `valgrind --tool=callgrind`; for every
route and body kind it warms up, zeroes the counters, sends COUNT sequential requests on one
keep-alive connection (bench_probe repeat), and dumps. Userspace only: the kernel's share
(TCP on loopback, scheduling) is not in these numbers; see BENCHMARKS.md.

Usage (after `cargo build --release --bin a2o --example bench_probe`):
    python3 scripts/bench/icount.py [--count 500] [--keep DIR]
With --keep, the callgrind dumps stay in DIR for callgrind_annotate.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def dump_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--keep", help="directory to keep the callgrind dumps in")
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("valgrind is required (Debian: apt-get install valgrind)")
    workdir = args.keep or tempfile.mkdtemp(prefix="a2o-icount-")
    os.makedirs(workdir, exist_ok=True)
    runner = bench.Bench(argparse.Namespace(pin=False))
    rows = []
    try:
        mock, mock_url = runner.start_mock()
        for upstream in ("anthropic", "openai"):
            out = os.path.join(workdir, f"callgrind.{upstream}.%p")
            argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    runner.a2o, "serve", "--no-dotenv", "--host", "127.0.0.1",
                    "--anthropic-port", "0", "--openai-port", "0", "--upstream", mock_url,
                    "--upstream-protocol", upstream]
            proc = runner.procs.start(argv)
            fronts = {
                "anthropic": bench.wait_for_line(proc, r"anthropic front:\s*(http://\S+)", 120, "a2o").group(1),
                "openai": bench.wait_for_line(proc, r"openai front:\s*(http://\S+)", 120, "a2o").group(1),
            }
            for name, client, up in bench.ROUTES:
                if up != upstream:
                    continue
                for stream in (False, True):
                    target = {"name": name, "url": fronts[client] + bench.PATHS[client],
                              "body": bench.request_body(client, up, stream),
                              "headers": bench.client_headers(client)}
                    path = os.path.join(workdir, "target.json")
                    with open(path, "w") as f:
                        json.dump(target, f)
                    runner.run_probe("repeat", "--target", path, "--count", "50")
                    subprocess.run(["callgrind_control", "--zero", str(proc.pid)],
                                   check=True, capture_output=True)
                    result = runner.run_probe("repeat", "--target", path, "--count", str(args.count))
                    before = set(glob.glob(os.path.join(workdir, f"callgrind.{upstream}.{proc.pid}*")))
                    subprocess.run(["callgrind_control", "--dump", str(proc.pid)],
                                   check=True, capture_output=True)
                    dump = None
                    for _ in range(100):
                        after = set(glob.glob(os.path.join(workdir, f"callgrind.{upstream}.{proc.pid}*")))
                        if after - before:
                            dump = sorted(after - before)[-1]
                            break
                        time.sleep(0.1)
                    if dump is None:
                        raise RuntimeError("callgrind did not dump")
                    time.sleep(0.3)
                    kind = "SSE" if stream else "JSON"
                    final = os.path.join(workdir, f"{re.sub(r'[^a-z]+', '_', name)}_{kind}.callgrind")
                    os.replace(dump, final)
                    per_request = dump_total(final) / args.count
                    ok = result["statuses"].get("200", 0)
                    rows.append((name, kind, per_request, ok))
                    print(f"[icount] {name:22} {kind:4} {per_request:10,.0f} instructions/request "
                          f"({ok}/{args.count} answered 200)", flush=True)
            runner.procs.stop(proc, grace=10)
    finally:
        runner.procs.stop_all()
    print()
    print("| route | body | instructions per request (userspace) |")
    print("|---|---|---:|")
    for name, kind, per_request, _ok in rows:
        print(f"| {name} | {kind} | {per_request:,.0f} |")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\ncallgrind dumps in {workdir} (callgrind_annotate --inclusive=yes FILE)")


if __name__ == "__main__":
    main()
