"""What the mock upstream answers (mirrors src/mock/render.rs) and small request builders
shared by the SDK tests."""

from __future__ import annotations

import base64
from typing import Any

ANSWER = "Hello from the mock upstream."
THINKING = "Let me think about this."
SIGNATURE = "mock-signature-0123456789"
REDACTED_DATA = "bW9jay1yZWRhY3RlZC10aGlua2luZw=="
TOOL_ARGS = [{"city": "Paris"}, {"city": "Tokyo"}, {"city": "Lima"}]
MODEL = "e2e-model"

# A 1×1 transparent PNG.
PNG_BASE64 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
IMAGE_URL = "https://example.com/cat.png"

CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


def openai_tool(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": f"{name} for a city", "parameters": CITY_SCHEMA, **extra},
    }


def anthropic_tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"{name} for a city", "input_schema": CITY_SCHEMA}


def ask(question: str, scenario: str | None = None) -> dict[str, Any]:
    """A user message; `scenario` picks the mock's answer (`mock:<scenario>` in the text)."""
    text = f"{question} mock:{scenario}" if scenario else question
    return {"role": "user", "content": text}


def upstream_path(upstream: str) -> str:
    return "/v1/messages" if upstream == "anthropic" else "/v1/chat/completions"


def upstream_key(request: dict[str, Any], upstream: str) -> str | None:
    """The key the mock received, from the header of the upstream's own dialect."""
    headers = request["headers"]
    if upstream == "anthropic":
        return headers.get("x-api-key")
    authorization = headers.get("authorization", "")
    return authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else None


def system_text(body: dict[str, Any]) -> str:
    """An Anthropic request's system prompt as one string, whether a string or blocks."""
    system = body.get("system")
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "\n".join(block.get("text", "") for block in system)
