//! Target health: what each scrape target did last, for `GET /api/v1/targets` (Prometheus'
//! response shape) and `/metrics`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::Json;
use serde::Serialize;

/// A target: one endpoint of one instance of one job.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    /// The job.
    pub job: String,
    /// `host:port`.
    pub instance: String,
    /// The profile name (`process_cpu`, `memory`, ...).
    pub profile: String,
}

/// What a target did last.
#[derive(Clone, Debug)]
pub struct TargetHealth {
    /// The URL scraped.
    pub scrape_url: String,
    /// The series labels the target's profiles get (`job`, `instance`, static labels).
    pub labels: BTreeMap<String, String>,
    /// When the last scrape started; `None` before the first.
    pub last_scrape: Option<SystemTime>,
    /// How long it took.
    pub last_duration: Duration,
    /// Why it failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Samples it stored.
    pub last_samples: u64,
}

impl TargetHealth {
    /// `up`, `down`, or `unknown` before the first scrape.
    pub fn health(&self) -> &'static str {
        match (&self.last_scrape, &self.last_error) {
            (None, _) => "unknown",
            (Some(_), None) => "up",
            (Some(_), Some(_)) => "down",
        }
    }
}

/// The health of every active target.
pub type TargetHealthMap = parking_lot::RwLock<BTreeMap<TargetKey, TargetHealth>>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActiveTarget {
    labels: BTreeMap<String, String>,
    scrape_pool: String,
    profile: String,
    scrape_url: String,
    health: &'static str,
    last_error: String,
    /// RFC 3339, or empty before the first scrape.
    last_scrape: String,
    last_scrape_duration: f64,
    last_samples: u64,
}

/// `GET /api/v1/targets`: `{"status":"success","data":{"activeTargets":[...]}}`.
pub(crate) fn targets(targets: &TargetHealthMap) -> Json<serde_json::Value> {
    let active: Vec<ActiveTarget> = targets
        .read()
        .iter()
        .map(|(k, h)| ActiveTarget {
            labels: h.labels.clone(),
            scrape_pool: k.job.clone(),
            profile: k.profile.clone(),
            scrape_url: h.scrape_url.clone(),
            health: h.health(),
            last_error: h.last_error.clone().unwrap_or_default(),
            last_scrape: h.last_scrape.map(rfc3339).unwrap_or_default(),
            last_scrape_duration: h.last_duration.as_secs_f64(),
            last_samples: h.last_samples,
        })
        .collect();
    Json(serde_json::json!({
        "status": "success",
        "data": { "activeTargets": active },
    }))
}

/// `t` as RFC 3339 in UTC with milliseconds.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let at = |s: u64, ms: u64| {
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(s * 1000 + ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_528_934, 120), "2026-11-24T14:02:14.120Z");
    }
}
