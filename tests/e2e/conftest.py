"""Fixtures for the end-to-end suite: one mock upstream and two `a2o serve` processes (one per
upstream dialect) for the whole session, and official SDK clients pointed at them.

Every test that uses `mock` starts with an empty request log, so "what did the upstream get"
assertions see only that test's requests. Tests run one at a time (the log is shared)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, Iterator

import anthropic
import openai
import pytest

from harness import Mock, Proxy, drop_proxy_settings

drop_proxy_settings()
UPSTREAMS = ("anthropic", "openai")
CLIENT_TIMEOUT = 15.0


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("a2o-logs")


@pytest.fixture(scope="session")
def mock_upstream(log_dir: Path) -> Iterator[Mock]:
    mock = Mock(log_dir)
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture(scope="session")
def proxies(mock_upstream: Mock, log_dir: Path) -> Iterator[dict[str, Proxy]]:
    started: dict[str, Proxy] = {}
    try:
        for upstream in UPSTREAMS:
            started[upstream] = Proxy(mock_upstream.url, upstream, log_dir)
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()


@pytest.fixture
def mock(mock_upstream: Mock) -> Mock:
    mock_upstream.clear()
    return mock_upstream


@pytest.fixture(params=UPSTREAMS, ids=lambda upstream: f"{upstream}-upstream")
def upstream(request: pytest.FixtureRequest) -> str:
    """The upstream dialect of the route under test; the client's dialect is the test file's."""
    return request.param


@pytest.fixture
def proxy(proxies: dict[str, Proxy], upstream: str) -> Proxy:
    return proxies[upstream]


@pytest.fixture
def make_openai(proxy: Proxy) -> Callable[..., openai.OpenAI]:
    """OpenAI clients on the OpenAI front of the route's proxy; `api_key` may be a key pool."""

    def make(api_key: str = "sk-e2e", **options) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", CLIENT_TIMEOUT)
        return openai.OpenAI(base_url=f"{proxy.openai_front}/v1", api_key=api_key, **options)

    return make


@pytest.fixture
def make_anthropic(proxy: Proxy) -> Callable[..., anthropic.Anthropic]:
    """Anthropic clients on the Anthropic front of the route's proxy."""

    def make(api_key: str = "sk-e2e", **options) -> anthropic.Anthropic:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", CLIENT_TIMEOUT)
        return anthropic.Anthropic(base_url=proxy.anthropic_front, api_key=api_key, **options)

    return make


@pytest.fixture
def oai(make_openai) -> openai.OpenAI:
    return make_openai()


@pytest.fixture
def claude(make_anthropic) -> anthropic.Anthropic:
    return make_anthropic()


@pytest.fixture
def fresh_keys() -> Callable[[int], list[str]]:
    """Keys no other test used, so a pool's round-robin position starts at its first key
    (a2o keeps the position per pool for the life of the process)."""

    def make(count: int) -> list[str]:
        tag = uuid.uuid4().hex[:8]
        return [f"k{i + 1}-{tag}" for i in range(count)]

    return make
