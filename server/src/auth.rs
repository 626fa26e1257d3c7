//! Bearer-token authentication, with separate tokens for writing (pushes, debug info uploads)
//! and reading (queries, SQL, metrics, target health, the server's own profile).
//!
//! [`AuthConfig`] is the `auth:` config section; [`check`] checks a request's `Authorization:
//! Bearer <token>` header against the [`Access`] its route was declared with (`router.rs`).
//! `/healthy`, `/ready` and the UI's static files are open (they hold no profile data).

use serde::{Deserialize, Serialize};

/// The `auth:` config section. A class of requests needs a token only when tokens are listed
/// for it, so the default (no tokens) leaves the server open, as Parca and Pyroscope are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Tokens that may read: queries (gRPC, HTTP, Flight SQL), `/metrics`, target health,
    /// debug info status, `/debug/pprof`. Default: none (reads are open).
    pub read_tokens: Vec<String>,
    /// Tokens that may write: Parca `WriteRaw`, Pyroscope `Push` and `/ingest`, OTLP
    /// `Export`, debug info uploads. A write token does not read. Default: none (writes are
    /// open).
    pub write_tokens: Vec<String>,
}

/// Shortest accepted token, in bytes.
const MIN_TOKEN_BYTES: usize = 16;

impl AuthConfig {
    /// Checks that every token is at least 16 bytes of visible ASCII and that no token both
    /// reads and writes by mistake of a copy (the same token in both lists is allowed: it
    /// then does both).
    pub fn validate(&self) -> Result<(), String> {
        for (list, tokens) in [
            ("auth.read_tokens", &self.read_tokens),
            ("auth.write_tokens", &self.write_tokens),
        ] {
            for (i, t) in tokens.iter().enumerate() {
                if t.len() < MIN_TOKEN_BYTES || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!(
                        "{list}[{i}]: a token must be at least {MIN_TOKEN_BYTES} visible ASCII characters"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether any token is configured.
    pub fn enabled(&self) -> bool {
        !self.read_tokens.is_empty() || !self.write_tokens.is_empty()
    }
}

/// What a route does, and so which token it needs. Every route is declared with one
/// (`router.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Needs no token: health, readiness, the UI's files.
    Open,
    /// Reads data.
    Read,
    /// Writes data.
    Write,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or one the server does not know: 401 / UNAUTHENTICATED.
    Unauthenticated(String),
    /// A known token of the other class: 403 / PERMISSION_DENIED.
    Forbidden(String),
}

/// Checks a request to `path`, a route of `access`, with the `Authorization` header value
/// `authorization`.
pub fn check(
    config: &AuthConfig,
    access: Access,
    path: &str,
    authorization: Option<&str>,
) -> Result<(), Refusal> {
    let (allowed, other, what) = match access {
        Access::Open => return Ok(()),
        Access::Read => (&config.read_tokens, &config.write_tokens, "read"),
        Access::Write => (&config.write_tokens, &config.read_tokens, "write"),
    };
    if allowed.is_empty() {
        return Ok(());
    }
    let token = authorization
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or_else(|| {
            Refusal::Unauthenticated(format!(
                "{path} needs a {what} token: send `Authorization: Bearer <token>`"
            ))
        })?;
    if allowed
        .iter()
        .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
    {
        return Ok(());
    }
    if other
        .iter()
        .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
    {
        return Err(Refusal::Forbidden(format!(
            "{path} needs a {what} token; this token may not {what}"
        )));
    }
    Err(Refusal::Unauthenticated(format!(
        "{path}: the bearer token is not valid"
    )))
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "read-token-0123456789";
    const W: &str = "write-token-0123456789";

    fn config() -> AuthConfig {
        AuthConfig {
            read_tokens: vec![R.into()],
            write_tokens: vec![W.into()],
        }
    }

    #[test]
    fn each_class_takes_only_its_tokens() {
        let c = config();
        let bearer = |t: &str| format!("Bearer {t}");
        let (w, r) = (Access::Write, Access::Read);
        assert_eq!(check(&c, w, "/ingest", Some(&bearer(W))), Ok(()));
        assert_eq!(check(&c, r, "/api/v1/query", Some(&bearer(R))), Ok(()));
        assert_eq!(
            check(&c, r, "/api/v1/query", Some(&format!("bearer  {R}"))),
            Ok(())
        );
        assert!(matches!(
            check(&c, w, "/ingest", Some(&bearer(R))),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            check(&c, r, "/api/v1/query", Some(&bearer(W))),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            check(&c, r, "/api/v1/query", None),
            Err(Refusal::Unauthenticated(_))
        ));
        assert!(matches!(
            check(&c, r, "/api/v1/query", Some("Basic abc")),
            Err(Refusal::Unauthenticated(_))
        ));
        assert!(matches!(
            check(&c, w, "/ingest", Some(&bearer("write-token-0123456788"))),
            Err(Refusal::Unauthenticated(_))
        ));
        assert_eq!(check(&c, Access::Open, "/healthy", None), Ok(()));
        // Only writes protected: reads stay open.
        let writes_only = AuthConfig {
            read_tokens: vec![],
            ..config()
        };
        assert_eq!(check(&writes_only, r, "/api/v1/query", None), Ok(()));
        assert!(matches!(
            check(&writes_only, w, "/ingest", None),
            Err(Refusal::Unauthenticated(_))
        ));
    }

    #[test]
    fn short_tokens_are_refused() {
        let c = AuthConfig {
            read_tokens: vec!["short".into()],
            write_tokens: vec![],
        };
        assert!(c.validate().unwrap_err().contains("auth.read_tokens[0]"));
        config().validate().unwrap();
    }
}
