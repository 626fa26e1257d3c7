//! Arrow Flight SQL on the server's port, used by a real client: the ADBC Flight SQL driver
//! from Python (`tests/fixtures/flight_sql_client.py`; `scripts/test` installs
//! adbc-driver-flightsql and pyarrow). Profiles pushed over Parca `WriteRaw` come back through
//! SQL over `samples` and `merge(...)`; bad SQL gets DataFusion's message.

mod common;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use strata_ingest::PprofBuilder;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};

const CPU: &str = "process_cpu:samples:count:cpu:nanoseconds:delta";

/// A CPU profile taken now; `stacks` are (frames leaf first, sample count).
fn cpu_profile(now_ns: i64, stacks: &[(&[&str], i64)]) -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(now_ns, 10_000_000_000);
    for (stack, n) in stacks {
        b.sample(stack, &[*n, n * 10_000_000], &[]);
    }
    b.encode()
}

fn series(job: &str, profile: Vec<u8>) -> RawProfileSeries {
    let labels = [("__name__", "process_cpu"), ("job", job)]
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect();
    RawProfileSeries {
        labels: Some(LabelSet { labels }),
        samples: vec![RawSample {
            raw_profile: profile,
        }],
    }
}

/// Runs the fixture client against `addr`; returns its JSON lines by case.
fn client(addr: std::net::SocketAddr) -> BTreeMap<String, Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flight_sql_client.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!("grpc://{addr}"))
        .arg(CPU)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Flight SQL client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["case"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_runs_sql_over_flight_sql() {
    let adbc = common::python_imports("adbc_driver_flightsql.dbapi, pyarrow");
    if !common::tool_or_skip("FLIGHT_SQL", adbc) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = common::spawn_server(app, async {
        let _ = stopped.await;
    })
    .await;

    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let api = cpu_profile(
        now_ns,
        &[
            (&["work", "main"], 7),
            (&["idle", "main"], 2),
            (&["main"], 1),
        ],
    );
    let db = cpu_profile(now_ns, &[(&["query", "main"], 5)]);
    let mut parca = ProfileStoreServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    parca
        .write_raw(WriteRawRequest {
            series: vec![series("api", api), series("db", db)],
            ..Default::default()
        })
        .await
        .unwrap();

    let got = tokio::task::spawn_blocking(move || client(addr))
        .await
        .unwrap();
    let case = |name: &str| {
        got.get(name)
            .unwrap_or_else(|| panic!("no result for {name}: {got:?}"))
            .clone()
    };

    // (1) An aggregate over `samples`.
    let by_job = case("by_job");
    assert_eq!(by_job["ok"], true, "{by_job}");
    assert_eq!(by_job["columns"], json!(["job", "v"]));
    assert_eq!(
        by_job["rows"],
        json!([{"job": "api", "v": 10}, {"job": "db", "v": 5}])
    );

    // The same without a prepared statement (`CommandStatementQuery`).
    let unprepared = case("by_job_unprepared");
    assert_eq!(unprepared["ok"], true, "{unprepared}");
    assert_eq!(unprepared["rows"], by_job["rows"]);

    // Timestamps arrive as timestamps.
    let time = case("time");
    assert_eq!(time["ok"], true, "{time}");
    assert_eq!(time["types"][0], "timestamp[ns, tz=UTC]", "{time}");
    assert_eq!(time["rows"][0]["ns"], json!(now_ns), "{time}");

    // (2) The merged profile of one job, top stacks first.
    let merge = case("merge");
    assert_eq!(merge["ok"], true, "{merge}");
    assert_eq!(
        merge["columns"],
        json!(["stack_id", "value", "leaf", "stack"])
    );
    let rows = merge["rows"].as_array().unwrap();
    let top: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["stack"].as_str().unwrap(),
                r["leaf"].as_str().unwrap(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![
            ("main;work", "work", 7),
            ("main;idle", "idle", 2),
            ("main", "main", 1)
        ]
    );

    // A count over every row, the scan asking for no column.
    let count_all = case("count_all");
    assert_eq!(count_all["ok"], true, "{count_all}");
    let count_values = case("count_values");
    assert_eq!(count_values["ok"], true, "{count_values}");
    // Four stacks in two profile types (samples and cpu) of the pushed profiles.
    assert_eq!(count_all["rows"], json!([{"n": 8}]), "{count_all}");
    assert_eq!(count_all["rows"], count_values["rows"]);
    let count_stacks = case("count_stacks");
    assert_eq!(count_stacks["ok"], true, "{count_stacks}");
    assert!(
        count_stacks["rows"][0]["n"].as_i64().unwrap() >= 4,
        "{count_stacks}"
    );

    // (3) Bad SQL: the driver raises with DataFusion's message.
    for name in ["bad_sql", "bad_sql_unprepared"] {
        let bad = case(name);
        assert_eq!(bad["ok"], false, "{bad}");
        assert_eq!(bad["error_type"], "ProgrammingError", "{bad}");
        let error = bad["error"].as_str().unwrap();
        assert!(error.contains("INVALID_ARGUMENT"), "{error}");
        assert!(
            error.contains(
                "SQL error: ParserError(\"Expected: an SQL statement, found: SELEC at Line: 1, Column: 1\")"
            ),
            "{error}"
        );
    }
    let no_table = case("no_table");
    assert_eq!(no_table["ok"], false, "{no_table}");
    let error = no_table["error"].as_str().unwrap();
    assert!(
        error.contains("table 'datafusion.public.no_such_table' not found"),
        "{error}"
    );
    // Read-only.
    let ddl = case("ddl");
    assert_eq!(ddl["ok"], false, "{ddl}");
    let error = ddl["error"].as_str().unwrap();
    assert!(error.contains("DDL not supported"), "{error}");

    // Metadata as tools browse it.
    let info = case("info");
    assert_eq!(info["rows"][0]["vendor_name"], "Strata", "{info}");
    let tables = case("tables");
    for table in ["functions", "locations", "mappings", "samples", "stacks"] {
        assert!(
            tables["rows"].as_array().unwrap().contains(&json!(table)),
            "{tables}"
        );
    }
    let schema = case("samples_schema");
    let columns = schema["columns"].as_array().unwrap();
    for column in ["profile_type", "time", "stack_id", "value", "job"] {
        assert!(columns.contains(&json!(column)), "{schema}");
    }

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
