#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, every Rust test (unit, golden, property, CLI,
# proxy), the conformance suites against a2o serve + the mock upstream, and the end-to-end
# suites that drive the official OpenAI and Anthropic SDKs (Python and Node).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
bash scripts/conformance.sh
bash scripts/e2e.sh
