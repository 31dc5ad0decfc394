//! Everything that reads Anthropic and writes OpenAI, in one place: requests from Anthropic
//! clients, and responses from Anthropic upstreams. An OpenAI client on an Anthropic upstream
//! uses `openai_to_anthropic::request` with this module's `response`.

pub use super::request_anthropic_to_openai::request;
pub use super::response_anthropic_to_openai::{response, usage};
