"""Reading SSE transcripts, serving them to SDK clients, and computing, independently of a2o,
what a converted stream must add up to."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def parse_sse(data: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) for every event, per the SSE rules the SDKs follow. An event that the
    input cuts off before its blank line is never dispatched (WHATWG: "If the file ends in the
    middle of an event, before the final empty line, the incomplete event is not dispatched")."""
    events = []
    name: str | None = None
    lines: list[str] = []
    # The last piece is what follows the final newline: a line that never ended.
    for line in data.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")[:-1]:
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
    # The stream's stop came from a stop sequence the client asked for.
    stop_sequence: bool = False
    # The model refused (OpenAI's `refusal` field).
    refused: bool = False

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


def is_valid_tool_name(name: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name))


def client_tool_name(upstream_name: str, request: dict[str, Any] | None) -> str:
    """The name the client gave a tool that the upstream saw as `upstream_name`. Names the
    upstream would refuse travel shortened (invalid characters replaced, a suffix added), so
    the client's name is the one of its own tools whose cleaned-up form the upstream's name
    starts with, less that suffix."""
    names = []
    for tool in (request or {}).get("tools") or []:
        names.append((tool.get("function") or tool).get("name", ""))
    if upstream_name in names or not names:
        return upstream_name
    stem = upstream_name.rsplit("_", 1)[0]
    matches = [n for n in names if not is_valid_tool_name(n) and re.sub(r"[^a-zA-Z0-9_-]", "_", n).startswith(stem)]
    assert len(matches) == 1, (upstream_name, names)
    return matches[0]


def parse_arguments(text: str) -> Any:
    """Tool arguments as JSON; None when a broken stream cut them off (the SDK must raise
    for such a stream anyway, so they are never compared)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def starts_another_call(tool: dict[str, Any], new_id: str | None) -> bool:
    """Some upstreams send every parallel call under index 0, each with its own id: a new id
    after a call whose arguments are whole JSON is another call."""
    return bool(new_id and tool["id"] and new_id != tool["id"] and parse_arguments(tool["partial_json"]) is not None)


def expect_from_anthropic(data: bytes, request: dict[str, Any] | None = None) -> Expected:
    """An Anthropic event stream: text, thinking blocks, client tool calls, stop, usage.
    `request` is the client's own request, for the tool names it used."""
    expected = Expected()
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, int] = {}
    for name, payload in parse_sse(data):
        try:
            event = json.loads(payload)
        except ValueError:
            # Nothing after an event that does not parse can be trusted: the stream is broken.
            expected.error = True
            break
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
                block["name"] = client_tool_name(block["name"], request)
                expected.tools.append(block)
        elif kind == "content_block_delta":
            block, delta = blocks.setdefault(event["index"], {"type": "orphan"}), event["delta"]
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
        # Arguments that never streamed were given whole in the start.
        tool["arguments"] = parse_arguments(tool["partial_json"]) if tool["partial_json"] else tool.get("input") or {}
    if usage:
        expected.usage = usage
    return expected


def expect_from_openai(data: bytes, request: dict[str, Any] | None = None) -> Expected:
    """An OpenAI chunk stream, first choice: text (and refusal, which has no Anthropic field
    of its own), reasoning, tool calls by index, usage. A stream that reached its finish_reason
    is complete even without `[DONE]`. `request` is the client's own request: tool names, and
    the stop sequences a vLLM-style `stop_reason` can be matched against. A tool call with no
    id or name expects one made up (None / "" here)."""
    expected = Expected()
    reasoning = ""
    # Calls in order of first appearance, and the call each `tool_calls[].index` now feeds.
    tools: dict[int, dict[str, Any]] = {}
    latest: dict[int, int] = {}
    stop_sequences = (request or {}).get("stop_sequences") or []
    for _, payload in parse_sse(data):
        if payload.strip() == "[DONE]":
            expected.complete = True
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:
            expected.error = True
            break
        if "error" in chunk:
            expected.error = True
            continue
        if chunk.get("usage"):
            expected.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            expected.text += (delta.get("content") or "") + (delta.get("refusal") or "")
            # `reasoning` is vLLM's (after the rename) and OpenRouter's name for the same text.
            reasoning += delta.get("reasoning_content") or delta.get("reasoning") or ""
            expected.refused = expected.refused or bool(delta.get("refusal"))
            for call in delta.get("tool_calls") or []:
                key = latest.get(call["index"])
                if key is None or starts_another_call(tools[key], call.get("id")):
                    key = latest[call["index"]] = len(tools)
                    tools[key] = {"id": None, "name": "", "partial_json": "", "order": key}
                tool = tools[key]
                tool["id"] = call.get("id") or tool["id"]
                function = call.get("function") or {}
                tool["name"] += function.get("name") or ""
                tool["partial_json"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                expected.stop = choice["finish_reason"]
                expected.complete = True
                matched = choice.get("stop_reason") or choice.get("matched_stop")
                expected.stop_sequence = matched in stop_sequences
    if reasoning:
        expected.thinking = [{"type": "thinking", "thinking": reasoning}]
    expected.tools = sorted(tools.values(), key=lambda tool: tool["order"])
    for tool in expected.tools:
        tool["arguments"] = parse_arguments(tool["partial_json"] or "{}")
        if tool["name"]:
            tool["name"] = client_tool_name(tool["name"], request)
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
