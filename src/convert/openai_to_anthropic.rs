//! Placeholder, filled in by the openai_to_anthropic converter work.
