//! Placeholder, filled in by the anthropic_to_openai converter work.
