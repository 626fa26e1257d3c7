//! [`ApiClient`]: a typed client of a running server's HTTP/JSON API, used by the `strata` CLI
//! (`strata query`, `strata export`) and by `strata-bench`. Answers are decoded into the types
//! here, so a field the server stops sending is an error, never a silent 0.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("connecting to {url}: {reason}")]
    Connect {
        /// The URL called.
        url: String,
        /// The transport's error.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("server answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's message (its `{"error": …}`, else the body).
        message: String,
    },
    /// The answer is not what this client expects.
    #[error("{url}: unexpected answer: {reason}")]
    Decode {
        /// The URL called.
        url: String,
        /// The decoder's error.
        reason: String,
    },
}

/// A result of an [`ApiClient`] call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A selector over a time range, as the API takes them (`query`, `start`, `end`).
#[derive(Clone, Debug)]
pub struct Selection {
    /// The selector, e.g. `process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="api"}`.
    pub query: String,
    /// Range start: `now-1h`, RFC 3339 or a Unix time.
    pub start: String,
    /// Range end.
    pub end: String,
}

impl Selection {
    /// The query parameters of the selection.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("query", self.query.clone()),
            ("start", self.start.clone()),
            ("end", self.end.clone()),
        ]
    }
}

/// The header of a profile report (`meta`).
#[derive(Clone, Debug, Deserialize)]
pub struct ReportMeta {
    /// The profile type.
    pub profile_type: String,
    /// The sample unit (`nanoseconds`, `bytes`, `count`).
    pub unit: String,
    /// Total value.
    pub total: i64,
    /// Total of the base (diffs).
    pub base_total: i64,
    /// Whether this is a diff.
    pub diff: bool,
}

/// A frame of a report.
#[derive(Clone, Debug, Deserialize)]
pub struct ReportFrame {
    /// The name shown (the function, or `<binary> 0x<address>`).
    pub name: String,
    /// The function; empty when unsymbolized.
    pub function: String,
    /// The binary.
    pub binary: String,
    /// Whether the frame has a function name (or is a label group).
    pub symbolized: bool,
}

/// A row of the top table.
#[derive(Clone, Debug, Deserialize)]
pub struct TopRow {
    /// Index into [`TopReport::frames`].
    pub frame: usize,
    /// Value where the frame is the leaf.
    pub flat: i64,
    /// Value of the stacks containing the frame.
    pub cumulative: i64,
    /// Base flat (diffs).
    pub base_flat: i64,
    /// Base cumulative (diffs).
    pub base_cumulative: i64,
}

/// `GET /api/v1/query?report=top`.
#[derive(Clone, Debug, Deserialize)]
pub struct TopReport {
    /// The header.
    pub meta: ReportMeta,
    /// The frames the rows point at.
    pub frames: Vec<ReportFrame>,
    /// The rows, by flat value.
    pub rows: Vec<TopRow>,
}

impl TopReport {
    /// The name of a row's frame.
    pub fn name(&self, row: &TopRow) -> &str {
        self.frames.get(row.frame).map_or("?", |f| f.name.as_str())
    }
}

/// A node of a flame graph. Node 0 is the root (all stacks, no frame).
#[derive(Clone, Debug, Deserialize)]
pub struct FlameNode {
    /// Index into [`FlameGraphReport::frames`] (meaningless for the root).
    pub frame: usize,
    /// Parent node (the root's is itself).
    pub parent: u32,
    /// Depth: the root 0.
    pub depth: u32,
    /// Value of stacks through this path.
    pub cumulative: i64,
    /// Value of stacks that end here.
    pub flat: i64,
    /// Base cumulative (diffs).
    pub base_cumulative: i64,
    /// Base flat (diffs).
    pub base_flat: i64,
    /// Children kept, by name.
    pub children: Vec<u32>,
    /// Value of children pruned away (part of `cumulative`, in no child).
    pub pruned: i64,
}

/// `GET /api/v1/query?report=flamegraph`.
#[derive(Clone, Debug, Deserialize)]
pub struct FlameGraphReport {
    /// The header.
    pub meta: ReportMeta,
    /// The frames the nodes point at.
    pub frames: Vec<ReportFrame>,
    /// The nodes, depth first; node 0 is the root.
    pub nodes: Vec<FlameNode>,
    /// Deepest node.
    pub height: u32,
    /// Nodes pruned (`min_fraction`, `max_nodes`).
    pub pruned_nodes: u64,
}

/// A point of a range series.
#[derive(Clone, Debug, Deserialize)]
pub struct RangePoint {
    /// Bucket start, ns since the epoch.
    pub timestamp_ns: i64,
    /// The bucket's value.
    pub value: f64,
    /// Value per second (summed buckets).
    pub value_per_second: f64,
    /// Profiles in the bucket.
    pub profiles: u64,
}

/// A series of a range answer.
#[derive(Clone, Debug, Deserialize)]
pub struct RangeSeries {
    /// Its labels (or the `sum_by` labels).
    pub labels: BTreeMap<String, String>,
    /// Its points, by time.
    pub points: Vec<RangePoint>,
}

/// `GET /api/v1/query_range`.
#[derive(Clone, Debug, Deserialize)]
pub struct RangeAnswer {
    /// The series.
    pub series: Vec<RangeSeries>,
}

/// A column of an SQL answer.
#[derive(Clone, Debug, Deserialize)]
pub struct SqlColumn {
    /// Its name.
    pub name: String,
    /// Its Arrow type.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// `POST /api/v1/sql`.
#[derive(Clone, Debug, Deserialize)]
pub struct SqlAnswer {
    /// The columns.
    pub columns: Vec<SqlColumn>,
    /// The rows: numbers and booleans as such, null as null, other values as text.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// One build id in `GET /api/v1/debuginfo/status`.
#[derive(Clone, Debug, Deserialize)]
pub struct BuildIdStatus {
    /// The build id.
    pub build_id: String,
    /// `found`, `missing`, `failed`, `pending`, `unknown` or `disabled`.
    pub status: String,
    /// Why it is missing or failed; empty when found.
    pub reason: String,
    /// Where the debug info came from, when found.
    pub source: Option<strata_symbolizer::DebugInfoSource>,
    /// What the debug info holds, when found.
    pub content: Option<strata_symbolizer::SymbolContent>,
    /// The file names it was mapped as.
    pub filenames: Vec<String>,
    /// Locations given symbols since the server started.
    pub symbolized_locations: u64,
}

/// `GET /api/v1/debuginfo/status`.
#[derive(Clone, Debug, Deserialize)]
pub struct DebuginfoStatusAnswer {
    /// Whether background symbolization is on.
    pub enabled: bool,
    /// The build ids asked for (or every one known).
    pub build_ids: Vec<BuildIdStatus>,
}

/// The header that names a tenant (the server's default `tenants.header`).
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// A client of one server.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    tenant: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the server at `base` (`http://127.0.0.1:7070`).
    pub fn new(base: impl Into<String>) -> Self {
        ApiClient {
            base: base.into().trim_end_matches('/').to_owned(),
            token: None,
            tenant: None,
            http: reqwest::Client::new(),
        }
    }

    /// Sends `Authorization: Bearer <token>` with every call.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Names `tenant` (the `X-Scope-OrgID` header) in every call.
    pub fn with_tenant(mut self, tenant: Option<String>) -> Self {
        self.tenant = tenant;
        self
    }

    /// The server's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn authorize(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(tenant) = &self.tenant {
            request = request.header(TENANT_HEADER, tenant);
        }
        request
    }

    async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|e| ClientError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })?
            .to_vec();
        if !status.is_success() {
            #[derive(Deserialize)]
            struct ErrorBody {
                error: String,
            }
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Status {
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }

    /// `GET path?params`: the answer's bytes.
    pub async fn get_bytes(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        self.send(&url, self.http.get(&url).query(params)).await
    }

    /// `POST path` with `body`: the answer's bytes.
    pub async fn post_bytes(&self, path: &str, body: impl Into<reqwest::Body>) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        self.send(&url, self.http.post(&url).body(body)).await
    }

    /// `GET path?params`, decoded as `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<T> {
        decode(path, &self.get_bytes(path, params).await?)
    }

    /// The top table of `selection` (extra parameters: `group_by`, `mode=diff`, …).
    pub async fn top(&self, selection: &Selection, extra: &[(&str, String)]) -> Result<TopReport> {
        let mut params = selection.params();
        params.push(("report", "top".to_owned()));
        params.extend(extra.iter().cloned());
        self.get_json("/api/v1/query", &params).await
    }

    /// The flame graph of `selection` (extra parameters: `mode=diff`, `max_nodes`, …).
    pub async fn flamegraph(
        &self,
        selection: &Selection,
        extra: &[(&str, String)],
    ) -> Result<FlameGraphReport> {
        let mut params = selection.params();
        params.push(("report", "flamegraph".to_owned()));
        params.extend(extra.iter().cloned());
        self.get_json("/api/v1/query", &params).await
    }

    /// Values over time (extra parameters: `step`, `sum_by`).
    pub async fn range(
        &self,
        selection: &Selection,
        extra: &[(&str, String)],
    ) -> Result<RangeAnswer> {
        let mut params = selection.params();
        params.extend(extra.iter().cloned());
        self.get_json("/api/v1/query_range", &params).await
    }

    /// One SQL statement.
    pub async fn sql(&self, sql: &str) -> Result<SqlAnswer> {
        decode(
            "/api/v1/sql",
            &self.post_bytes("/api/v1/sql", sql.to_owned()).await?,
        )
    }

    /// A report of `selection` as bytes (`pprof`, `folded`, `pgo-go`, `llvm-sample`).
    pub async fn export(&self, selection: &Selection, report: &str) -> Result<Vec<u8>> {
        let mut params = selection.params();
        params.push(("report", report.to_owned()));
        self.get_bytes("/api/v1/query", &params).await
    }

    /// What the symbolizer found for `build_ids` (every build id known when empty).
    pub async fn debuginfo_status(&self, build_ids: &[String]) -> Result<DebuginfoStatusAnswer> {
        let params: Vec<(&str, String)> =
            build_ids.iter().map(|b| ("build_id", b.clone())).collect();
        self.get_json("/api/v1/debuginfo/status", &params).await
    }

    /// The values of label `name` (parameters, each optional: `query`, a selector whose
    /// series to look in; `start`, `end`).
    pub async fn label_values(&self, name: &str, params: &[(&str, String)]) -> Result<Vec<String>> {
        let bad_base = |reason: String| ClientError::Connect {
            url: self.base.clone(),
            reason,
        };
        let mut url = reqwest::Url::parse(&self.base).map_err(|e| bad_base(e.to_string()))?;
        // One path segment, percent-encoded: label names are any UTF-8 (Prometheus 3).
        url.path_segments_mut()
            .map_err(|()| bad_base("not a base URL".to_owned()))?
            .pop_if_empty()
            .extend(["api", "v1", "labels", name, "values"]);
        let request = self.http.get(url.clone()).query(params);
        decode(url.path(), &self.send(url.as_str(), request).await?)
    }

    /// The profile type ids stored.
    pub async fn profile_types(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Type {
            id: String,
        }
        let types: Vec<Type> = self.get_json("/api/v1/profile_types", &[]).await?;
        Ok(types.into_iter().map(|t| t.id).collect())
    }
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| ClientError::Decode {
        url: path.to_owned(),
        reason: e.to_string(),
    })
}
