"""Process and HTTP plumbing for the end-to-end suite: starting `a2o mock-upstream` and
`a2o serve` on free ports, reading their bound addresses from stdout, stopping them, and
reading the mock's request log. The tests themselves only talk through the official SDKs;
this module is the one place that knows how the binaries are launched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


def drop_proxy_settings() -> None:
    """Everything here talks to 127.0.0.1, so proxy settings in the environment (honoured by
    httpx, urllib and a2o itself) can only get in the way: removed from this process and so
    from the processes it starts."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            del os.environ[name]


def a2o_binary() -> Path:
    """The binary under test: $A2O_BIN, else the debug build scripts/e2e.sh makes."""
    configured = os.environ.get("A2O_BIN")
    binary = Path(configured) if configured else REPO / "target" / "debug" / "a2o"
    if not binary.is_file():
        raise RuntimeError(f"{binary} not found: run `cargo build` (or scripts/e2e.sh) first")
    return binary


class Process:
    """A child process whose stdout is read line by line (the bound addresses are printed
    there) and whose stderr goes to a log file, so a full pipe can never block it."""

    def __init__(self, name: str, args: list[str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.stderr.log"
        self._stderr = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=log_dir,
        )
        self.stdout_lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._changed:
                self.stdout_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = STARTUP_TIMEOUT) -> re.Match[str]:
        """The first stdout line matching `pattern`, waiting for it to be printed. If it never
        comes, the process is stopped and the error says what it printed."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.stdout_lines[seen:]:
                    match = pattern.search(line)
                    if match:
                        return match
                seen = len(self.stdout_lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    break
                self._changed.wait(min(remaining, 0.2))
        self.stop()
        raise RuntimeError(
            f"{self.name}: no line matching {pattern.pattern!r} on stdout "
            f"(exit code {self.proc.poll()}); stdout={self.stdout_lines!r}; "
            f"stderr tail: {self.stderr_tail()}"
        )

    def stderr_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-limit:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate, then kill if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self._reader.join(STOP_TIMEOUT)
        self._stderr.close()


class Mock:
    """`a2o mock-upstream` and its request log."""

    def __init__(self, log_dir: Path):
        self.process = Process(
            "mock-upstream",
            [str(a2o_binary()), "mock-upstream", "--host", "127.0.0.1", "--port", "0"],
            log_dir,
        )
        self.url = self.process.wait_for_line(re.compile(r"listening on (http://\S+)")).group(1)

    def requests(self) -> list[dict[str, Any]]:
        """Every `/v1/…` request received since the last clear, oldest first, each with
        `method`, `path`, `query`, `headers` (a name → value dict, lower-case names) and
        `body` (parsed JSON or None)."""
        with urllib.request.urlopen(f"{self.url}/_mock/requests", timeout=10) as response:
            recorded = json.load(response)
        for request in recorded:
            request["headers"] = {name.lower(): value for name, value in request["headers"]}
        return recorded

    def posts(self) -> list[dict[str, Any]]:
        """The recorded POSTs (completions, messages, count_tokens)."""
        return [r for r in self.requests() if r["method"] == "POST"]

    def last_body(self) -> dict[str, Any]:
        posts = self.posts()
        assert posts, "the mock upstream received no POST"
        return posts[-1]["body"]

    def clear(self) -> None:
        request = urllib.request.Request(f"{self.url}/_mock/requests", method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        self.process.stop()


class Proxy:
    """One `a2o serve` with both fronts on free ports. `name` tells its log file apart."""

    def __init__(
        self,
        mock_url: str,
        upstream_protocol: str,
        log_dir: Path,
        name: str | None = None,
        http_timeout: float = 10,
        extra: list[str] = (),
    ):
        self.upstream_protocol = upstream_protocol
        self.process = Process(
            f"serve-{name or upstream_protocol}",
            [
                str(a2o_binary()), "serve", "--no-dotenv", "--host", "127.0.0.1",
                "--anthropic-port", "0", "--openai-port", "0",
                "--upstream", mock_url, "--upstream-protocol", upstream_protocol,
                "--http-timeout", str(http_timeout), "--max-retry-wait", "2",
                *extra,
            ],
            log_dir,
        )
        front = self.process.wait_for_line
        self.anthropic_front = front(re.compile(r"anthropic front:\s*(http://\S+)")).group(1)
        self.openai_front = front(re.compile(r"openai front:\s*(http://\S+)")).group(1)

    def stop(self) -> None:
        self.process.stop()
