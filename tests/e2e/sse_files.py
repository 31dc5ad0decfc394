"""Reading SSE transcripts, serving them to SDK clients, and computing, independently of a2o,
what a converted stream must add up to."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def parse_sse(data: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) for every event, per the SSE rules the SDKs follow."""
    events = []
    name: str | None = None
    lines: list[str] = []
    for line in data.decode("utf-8").replace("\r\n", "\n").split("\n") + [""]:
        if line == "":
            if lines:
                events.append((name, "\n".join(lines)))
            name, lines = None, []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                lines.append(value)
    return events


@dataclass
class Expected:
    """What a stream must add up to, in dialect-neutral terms."""

    text: str = ""
    thinking: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    stop: str | None = None
    usage: dict[str, int] | None = None
    error: bool = False
    complete: bool = False

    @property
    def reasoning(self) -> str:
        return "".join(block.get("thinking", "") for block in self.thinking)


ANTHROPIC_TO_OPENAI_FINISH = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}
OPENAI_TO_ANTHROPIC_STOP = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
    "function_call": "tool_use", "content_filter": "refusal",
}


def expect_from_anthropic(data: bytes) -> Expected:
    """An Anthropic event stream: text, thinking blocks, client tool calls, stop, usage."""
    expected = Expected()
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, int] = {}
    for name, payload in parse_sse(data):
        event = json.loads(payload)
        kind = event.get("type", name)
        if kind == "error":
            expected.error = True
        elif kind == "message_start":
            usage.update({k: v for k, v in event["message"].get("usage", {}).items() if isinstance(v, int)})
        elif kind == "content_block_start":
            block = dict(event["content_block"])
            block.setdefault("partial_json", "")
            blocks[event["index"]] = block
            if block["type"] in ("thinking", "redacted_thinking"):
                expected.thinking.append(block)
            elif block["type"] == "tool_use":
                expected.tools.append(block)
        elif kind == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                expected.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = block.get("signature", "") + delta["signature"]
            elif delta["type"] == "input_json_delta":
                block["partial_json"] += delta["partial_json"]
        elif kind == "message_delta":
            expected.stop = event["delta"].get("stop_reason")
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if isinstance(v, int)})
        elif kind == "message_stop":
            expected.complete = True
    for tool in expected.tools:
        tool["arguments"] = json.loads(tool["partial_json"] or "{}")
    if usage:
        expected.usage = usage
    return expected


def expect_from_openai(data: bytes) -> Expected:
    """An OpenAI chunk stream, first choice: text, reasoning, tool calls by index, usage."""
    expected = Expected()
    reasoning = ""
    tools: dict[int, dict[str, Any]] = {}
    for _, payload in parse_sse(data):
        if payload.strip() == "[DONE]":
            expected.complete = True
            continue
        chunk = json.loads(payload)
        if "error" in chunk:
            expected.error = True
            continue
        if chunk.get("usage"):
            expected.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            expected.text += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                tool = tools.setdefault(call["index"], {"id": None, "name": "", "partial_json": ""})
                tool["id"] = call.get("id") or tool["id"]
                function = call.get("function") or {}
                tool["name"] += function.get("name") or ""
                tool["partial_json"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                expected.stop = choice["finish_reason"]
    if reasoning:
        expected.thinking = [{"type": "thinking", "thinking": reasoning}]
    expected.tools = [tools[index] for index in sorted(tools)]
    for tool in expected.tools:
        tool["arguments"] = json.loads(tool["partial_json"] or "{}")
    return expected


class TranscriptServer:
    """Serves `<root>/<relative path>` as an SSE body to any POST whose path starts with
    `/<relative path>/`, so an SDK client with that base URL reads the file as its stream."""

    def __init__(self, root: Path):
        root = root.resolve()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                relative = self.path.split("/v1/")[0].lstrip("/")
                target = (root / relative).resolve()
                if root not in target.parents or not target.is_file():
                    self.send_error(404)
                    return
                body = target.read_bytes()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def base_url(self, relative: str) -> str:
        return f"{self.url}/{relative}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
