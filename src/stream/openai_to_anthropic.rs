//! Placeholder for the OpenAI → Anthropic stream machine.
