//! [`DebuginfodFetcher`]: the last place debug info is looked for, pluggable so the library
//! starts no runtime; [`HttpDebuginfod`] is a blocking client for it (cargo feature
//! `debuginfod-http`, on by default).

use crate::error::Result;
use crate::object_ref::DebugFile;

/// A debug file fetched for a build id.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Where it came from (shown in [`crate::DebugInfoSource::Debuginfod`]).
    pub url: String,
    /// The file.
    pub file: DebugFile,
}

/// Fetches debug files by build id, e.g. from debuginfod servers. Called from the thread
/// that symbolizes, at most once per build id while its entry stays cached; it may block.
pub trait DebuginfodFetcher: Send + Sync {
    /// The debug file of `build_id`: `Ok(None)` when no server has it (HTTP 404), an error
    /// when a server could not be asked.
    fn fetch(&self, build_id: &str) -> Result<Option<Fetched>>;
}

#[cfg(feature = "debuginfod-http")]
pub use http::HttpDebuginfod;

#[cfg(feature = "debuginfod-http")]
mod http {
    use std::io::Read;
    use std::time::Duration;

    use super::{DebuginfodFetcher, Fetched};
    use crate::error::{Error, Result};
    use crate::object_ref::DebugFile;

    /// A blocking debuginfod client: `GET <url>/buildid/<build id>/debuginfo` on each server
    /// in turn (plain HTTP or HTTPS with the webpki roots), the first 200 wins; 404 goes on to
    /// the next server.
    #[derive(Clone, Debug)]
    pub struct HttpDebuginfod {
        urls: Vec<String>,
        max_bytes: u64,
        agent: ureq::Agent,
    }

    impl HttpDebuginfod {
        /// A client for `urls` (without the `/buildid/...` part), with a whole-request
        /// `timeout` and answers over `max_bytes` refused.
        pub fn new(urls: Vec<String>, timeout: Duration, max_bytes: u64) -> Self {
            let agent = ureq::AgentBuilder::new().timeout(timeout).build();
            HttpDebuginfod {
                urls,
                max_bytes,
                agent,
            }
        }

        fn fetch_from(&self, base: &str, build_id: &str) -> Result<Option<Fetched>> {
            let url = format!(
                "{}/buildid/{build_id}/debuginfo",
                base.trim_end_matches('/')
            );
            let failed = |reason: String| Error::Debuginfod {
                url: url.clone(),
                reason,
            };
            let response = match self.agent.get(&url).call() {
                Ok(r) => r,
                Err(ureq::Error::Status(404, _)) => return Ok(None),
                Err(ureq::Error::Status(code, r)) => {
                    return Err(failed(format!("HTTP {code} {}", r.status_text())));
                }
                Err(e) => return Err(failed(e.to_string())),
            };
            let mut bytes = Vec::new();
            response
                .into_reader()
                .take(self.max_bytes + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| failed(format!("reading the body: {e}")))?;
            if bytes.len() as u64 > self.max_bytes {
                return Err(failed(format!(
                    "answer over {} bytes (max_file_bytes)",
                    self.max_bytes
                )));
            }
            Ok(Some(Fetched {
                url,
                file: DebugFile::from_bytes(bytes),
            }))
        }
    }

    impl DebuginfodFetcher for HttpDebuginfod {
        fn fetch(&self, build_id: &str) -> Result<Option<Fetched>> {
            // Build ids go into a URL path: only the characters build ids are made of.
            if build_id.is_empty()
                || !build_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Ok(None);
            }
            let mut first_error = None;
            for base in &self.urls {
                match self.fetch_from(base, build_id) {
                    Ok(Some(f)) => return Ok(Some(f)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "debuginfod fetch failed");
                        first_error.get_or_insert(e);
                    }
                }
            }
            first_error.map_or(Ok(None), Err)
        }
    }
}
