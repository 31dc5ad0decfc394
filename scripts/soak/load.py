#!/usr/bin/env python3
"""Load generator for scripts/soak.sh (stdlib only: asyncio and a minimal HTTP/1.1 client).

Two phases against a running `a2o serve`:
  1. `--streams` concurrent slow streams, all open at once (the peak of a2o_open_streams is
     sampled while they are);
  2. `--requests` mixed requests over `--concurrency` keep-alive connections: every route
     (both client dialects x both upstream dialects), streaming and not, clean answers, every
     fault the mock can inject, a2o's own refusals, and clients that leave mid-stream.

Each request knows what the client must see; anything else is an unexpected error. Prints one
JSON summary line on stdout; exits 1 if there was any unexpected error.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

# Scenarios that must come back clean: a 200 and, for a stream, the dialect's proper end.
CLEAN = ["hello", "mock:tool", "mock:parallel_tools", "mock:thinking", "mock:cache",
         "mock:max_tokens", "mock:stop_sequence"]
# Faults the mock injects, and what a client may see for each (statuses; "inband" means a
# 200 stream that ends with the dialect's in-band error).
FAULTS = ["mock:error:429", "mock:error:529", "mock:error:400", "mock:midstream_error",
          "mock:truncate", "mock:html", "mock:bad_json", "mock:reset"]


class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, base):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.reader = self.writer = None

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method, path, headers, body=b"", leave_after_first_chunk=False):
        """Returns (status, headers dict, body bytes). Reconnects once if a kept-alive
        connection turned out to be closed."""
        for attempt in (0, 1):
            if self.writer is None:
                await self.connect()
            try:
                return await self._exchange(method, path, headers, body, leave_after_first_chunk)
            except (ConnectionError, asyncio.IncompleteReadError) as err:
                self.close()
                if attempt == 1:
                    raise err
        raise AssertionError("unreachable")

    async def _exchange(self, method, path, headers, body, leave):
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}",
                 f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed before the status line")
        status = int(status_line.split()[1])
        head = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            head[name.strip().lower()] = value.strip()
        chunks = []
        if head.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
                if leave:
                    self.close()
                    return status, head, b"".join(chunks)
        elif "content-length" in head:
            chunks.append(await self.reader.readexactly(int(head["content-length"])))
        else:
            chunks.append(await self.reader.read())
            self.close()
        if head.get("connection", "").lower() == "close":
            self.close()
        return status, head, b"".join(chunks)


def request_for(client, model, text, stream, key="k1,k2"):
    body = {"model": model, "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": text}]}
    if client == "openai":
        path, headers = "/v1/chat/completions", {"authorization": f"Bearer {key}"}
    else:
        path, headers = "/v1/messages", {"x-api-key": key}
    headers["content-type"] = "application/json"
    return path, headers, json.dumps(body).encode()


def in_band_error(client, body):
    if client == "openai":
        return b'data: {"error"' in body
    return b"event: error" in body


def proper_end(client, body):
    text = body.rstrip()
    if client == "openai":
        return text.endswith(b"data: [DONE]") and b'{"error"' not in body
    return b"event: message_stop" in body and b"event: error" not in body


def error_shaped(client, body):
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    if client == "openai":
        return isinstance(doc.get("error"), dict) and "message" in doc["error"] and "type" in doc["error"]
    return doc.get("type") == "error" and isinstance(doc.get("error"), dict)


def judge(kind, scenario, client, stream, status, body):
    """None if the answer is what the client must see, else why not."""
    if kind == "clean":
        if status != 200:
            return f"{status} for a clean request"
        if stream and not proper_end(client, body):
            return "stream without its proper end"
        if not stream and not body.startswith(b"{"):
            return "non-JSON 200"
        return None
    if kind == "own":
        expected = {"no_key": 401, "bad_json": 400, "bad_type": 400}[scenario]
        if status != expected or not error_shaped(client, body):
            return f"{status} (expected {expected} in the client's dialect)"
        return None
    # Injected faults.
    if status == 200:
        if stream and in_band_error(client, body):
            return None
        return f"200 without an in-band error for {scenario}"
    if status < 400 or not error_shaped(client, body):
        return f"{status} not a dialect error for {scenario}"
    if scenario == "mock:error:429" and status != 429:
        return f"{status} for a 429"
    if scenario in ("mock:html", "mock:bad_json", "mock:reset") and status != 502:
        return f"{status} for {scenario} (expected 502)"
    return None


async def metrics(front):
    http = Http(front)
    try:
        status, _, body = await http.request("GET", "/metrics", {})
    finally:
        http.close()
    values = {}
    for line in body.decode().splitlines():
        if line.startswith("a2o_open_streams"):
            values["open_streams"] = float(line.split()[-1])
    return values


async def phase_streams(args, fronts):
    """`args.streams` slow streams open at once; returns counts and the sampled peak."""
    results = {"ok": 0, "unexpected": []}
    started = asyncio.Event()
    opened = 0

    async def one(i):
        nonlocal opened
        client = "openai" if i % 2 else "anthropic"
        model = "mock-openai" if i % 4 < 2 else "claude-mock"
        path, headers, body = request_for(client, model, f"mock:slow:{args.stream_gap_ms}", True)
        http = Http(fronts[i % 2])
        try:
            await http.connect()
            opened += 1
            if opened == args.streams:
                started.set()
            status, _, answer = await http.request("POST", path, headers, body)
            verdict = judge("clean", "slow", client, True, status, answer)
        except Exception as err:  # noqa: BLE001 - every failure is reported, none hidden
            verdict = f"transport: {err!r}"
        finally:
            http.close()
        if verdict:
            results["unexpected"].append(verdict)
        else:
            results["ok"] += 1

    tasks = [asyncio.create_task(one(i)) for i in range(args.streams)]
    await asyncio.wait_for(started.wait(), 30)
    peak = 0.0
    # Sample the gauge while the streams are running.
    for _ in range(20):
        await asyncio.sleep(args.stream_gap_ms / 1000)
        peak = max(peak, (await metrics(fronts[0])).get("open_streams", 0.0))
    await asyncio.gather(*tasks)
    results["peak_open_streams"] = peak
    return results


def mixed_jobs(n, seed):
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        client = rng.choice(["openai", "anthropic"])
        model = rng.choice(["mock-openai", "claude-mock"])
        stream = rng.random() < 0.5
        roll = rng.random()
        if roll < 0.55:
            jobs.append(("clean", rng.choice(CLEAN), client, model, stream, i))
        elif roll < 0.85:
            jobs.append(("fault", rng.choice(FAULTS), client, model, stream, i))
        elif roll < 0.93:
            jobs.append(("own", rng.choice(["no_key", "bad_json", "bad_type"]), client, model, stream, i))
        else:
            jobs.append(("leave", "mock:slow:20", client, model, True, i))
    return jobs


async def phase_mixed(args, fronts):
    jobs = mixed_jobs(args.requests, args.seed)
    queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    counts = {"clean": 0, "fault": 0, "own": 0, "leave": 0}
    unexpected = []
    statuses = {}

    async def worker(w):
        conns = {front: Http(front) for front in fronts}
        try:
            while True:
                try:
                    kind, scenario, client, model, stream, i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                front = fronts[i % 2]
                http = conns[front]
                if kind == "own" and scenario == "no_key":
                    path, headers, body = request_for(client, model, "hi", stream)
                    headers.pop("authorization", None)
                    headers.pop("x-api-key", None)
                elif kind == "own" and scenario == "bad_json":
                    path, headers, _ = request_for(client, model, "hi", stream)
                    body = b'{"model": "m", "messages": [ oops'
                elif kind == "own":
                    path, headers, _ = request_for(client, model, "hi", stream)
                    body = json.dumps({"model": model, "max_tokens": "many", "messages": 7}).encode()
                else:
                    path, headers, body = request_for(client, model, scenario, stream)
                try:
                    status, _, answer = await http.request(
                        "POST", path, headers, body, leave_after_first_chunk=(kind == "leave"))
                except Exception as err:  # noqa: BLE001
                    http.close()
                    unexpected.append(f"{kind} {scenario} {client}/{model} stream={stream}: transport {err!r}")
                    continue
                counts[kind] += 1
                statuses[status] = statuses.get(status, 0) + 1
                if kind == "leave":
                    continue
                verdict = judge(kind, scenario, client, stream, status, answer)
                if verdict:
                    unexpected.append(f"{kind} {scenario} {client}/{model} stream={stream}: {verdict}: {answer[:300]!r}")
        finally:
            for http in conns.values():
                http.close()

    await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
    return {"counts": counts, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "unexpected": unexpected}


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--anthropic-front", required=True)
    parser.add_argument("--openai-front", required=True)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--stream-gap-ms", type=int, default=300)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", choices=["streams", "mixed", "both"], default="both")
    args = parser.parse_args()
    fronts = [args.anthropic_front, args.openai_front]
    summary = {}
    if args.phase in ("streams", "both"):
        t = time.monotonic()
        streams = await phase_streams(args, fronts)
        summary["streams"] = {"opened": args.streams, "ok": streams["ok"],
                              "peak_open_streams": streams["peak_open_streams"],
                              "unexpected": len(streams["unexpected"]),
                              "seconds": round(time.monotonic() - t, 1)}
        for line in streams["unexpected"][:20]:
            print(f"unexpected (streams): {line}", file=sys.stderr)
    if args.phase in ("mixed", "both"):
        t = time.monotonic()
        mixed = await phase_mixed(args, fronts)
        seconds = time.monotonic() - t
        summary["mixed"] = {"requests": args.requests, **mixed["counts"],
                            "statuses": mixed["statuses"],
                            "unexpected": len(mixed["unexpected"]),
                            "seconds": round(seconds, 1),
                            "rps": round(args.requests / seconds)}
        for line in mixed["unexpected"][:20]:
            print(f"unexpected (mixed): {line}", file=sys.stderr)
    print(json.dumps(summary))
    bad = summary.get("streams", {}).get("unexpected", 0) + summary.get("mixed", {}).get("unexpected", 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
