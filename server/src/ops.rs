//! What an operator reads off the server: health ([`health`]), Prometheus metrics about
//! itself ([`metrics`]), its own CPU profile ([`self_profile`]) and the web UI ([`ui`]); and
//! what an operator does to it: flush the heads ([`flush`]).

pub(crate) mod flush;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod self_profile;
pub(crate) mod ui;
