//! Everything that reads OpenAI and writes Anthropic, in one place: requests from OpenAI
//! clients, and responses from OpenAI upstreams. An Anthropic client on an OpenAI upstream uses
//! `anthropic_to_openai::request` with this module's `response`.

pub use super::request_openai_to_anthropic::request;
pub use super::response_openai_to_anthropic::{response, usage};
