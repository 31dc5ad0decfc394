#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, and every Rust test (unit, golden, property,
# CLI). One command for developers and CI alike.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
