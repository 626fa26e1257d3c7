//! `/healthy` and `/ready`: the process is up, and its store is open (it is, once the app
//! exists).

/// `GET /healthy`.
pub(crate) async fn healthy() -> &'static str {
    "ok\n"
}

/// `GET /ready`.
pub(crate) async fn ready() -> &'static str {
    "ready\n"
}
