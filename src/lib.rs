//! a2o: translation between OpenAI Chat Completions and Anthropic Messages. The library is the
//! pure core (wire types, converters, SSE codec, stream machines) shared by the `convert`,
//! `serve` and `check` commands of the binary.

pub mod check;
pub mod cli;
pub mod convert;
pub mod estimate;
pub mod keys;
pub mod mock;
pub mod pipeline;
pub mod protocol;
pub mod server;
pub mod sse;
pub mod stream;
