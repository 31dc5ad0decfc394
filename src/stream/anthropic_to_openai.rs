//! Placeholder for the Anthropic → OpenAI stream machine.
