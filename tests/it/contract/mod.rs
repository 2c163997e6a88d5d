//! Contract tests: `openapi/machines.yaml` holds both sides. The simulator's responses
//! and the client's requests are validated against it, with the strict list of known
//! divergences in `openapi/divergences.yaml`. The validator here knows neither side.

mod client;
mod divergences;
mod harness;
pub(crate) mod openapi;
pub(crate) mod proxy;
pub(crate) mod recorder;
mod sim;
mod validator;
