//! The server under test: a `strata server` spawned on a temporary data directory (or one
//! already running, given its URL), and what can be read about it from outside: its HTTP/JSON
//! API (through `strata_server`'s typed [`ApiClient`]), `/metrics`, its resident memory and
//! its data directory's size.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_server::client::ApiClient;

use super::Error;

/// Engine settings of a spawned server: heads flushed after 20 s (wall) or 256 MiB so blocks
/// form during a run, no scraping of itself, so the store holds only the pushed data.
const SERVER_CONFIG: &str = "\
engine:
  head:
    max_age: 20s
scrape_configs: []
";

/// How [`Server::spawn_as`] starts a server.
#[derive(Clone, Copy)]
struct Spawn<'a> {
    /// The config file's text (YAML).
    config_yaml: &'a str,
    /// `--listen`.
    listen: &'a str,
    /// More arguments of `strata server`.
    args: &'a [&'a str],
    /// A `cgroup.procs` file the server puts itself into before it starts.
    cgroup_procs: Option<&'a Path>,
}

/// A server the harness talks to.
pub struct Server {
    /// `http://host:port` (gRPC and HTTP share it).
    pub url: String,
    child: Option<Child>,
    data: Option<tempfile::TempDir>,
    api: ApiClient,
}

impl Server {
    /// Starts `strata server --no-collector` from `binary` on a fresh data directory (under
    /// `parent`, or the system's temporary directory) and waits until it is ready.
    pub async fn spawn(binary: &Path, parent: Option<&Path>) -> Result<Server, Error> {
        Self::spawn_with(binary, parent, SERVER_CONFIG, None).await
    }

    /// [`Server::spawn`] with this config file (YAML) and, if given, inside a cgroup: the
    /// server is started through `sh`, which writes its own pid to `cgroup_procs` (a
    /// `cgroup.procs` file) and then `exec`s the server, so every byte the server allocates
    /// is charged to that cgroup.
    pub async fn spawn_with(
        binary: &Path,
        parent: Option<&Path>,
        config_yaml: &str,
        cgroup_procs: Option<&Path>,
    ) -> Result<Server, Error> {
        let how = Spawn {
            config_yaml,
            listen: "127.0.0.1:0",
            args: &[],
            cgroup_procs,
        };
        Self::spawn_as(binary, parent, &how).await
    }

    /// A cluster member: `strata server --listen <listen> <args…>` (e.g. `--target
    /// ingester`) with this config, on a fresh data directory under `parent`.
    pub async fn spawn_member(
        binary: &Path,
        parent: Option<&Path>,
        config_yaml: &str,
        listen: &str,
        args: &[&str],
    ) -> Result<Server, Error> {
        let how = Spawn {
            config_yaml,
            listen,
            args,
            cgroup_procs: None,
        };
        Self::spawn_as(binary, parent, &how).await
    }

    async fn spawn_as(
        binary: &Path,
        parent: Option<&Path>,
        how: &Spawn<'_>,
    ) -> Result<Server, Error> {
        let Spawn {
            config_yaml,
            listen,
            args,
            cgroup_procs,
        } = *how;
        let data = match parent {
            Some(p) => tempfile::tempdir_in(p),
            None => tempfile::tempdir(),
        }
        .map_err(|e| Error::io("creating the data directory", e))?;
        let config = data.path().join("strata-bench.yaml");
        std::fs::write(&config, config_yaml).map_err(|e| Error::io("writing the config", e))?;
        let store = data.path().join("data");
        let mut command = match cgroup_procs {
            Some(procs) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(r#"echo $$ > "$1" && shift && exec "$@""#)
                    .arg("sh")
                    .arg(procs)
                    .arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["server", "--listen", listen, "--no-collector"])
            .args(args)
            .arg("--data-dir")
            .arg(&store)
            .arg("--config")
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", binary.display()), e))?;
        // It logs `listen=ADDR` once bound; keep draining the log afterwards.
        let mut lines = std::io::BufReader::new(child.stderr.take().expect("piped")).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("listen=").nth(1) {
                        break rest.split_whitespace().next().unwrap_or("").to_owned();
                    }
                }
                _ => {
                    let status = child.wait().ok();
                    return Err(Error::Server(format!(
                        "{} server --listen {listen} {} exited before listening ({status:?})",
                        binary.display(),
                        args.join(" ")
                    )));
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let url = format!("http://{addr}");
        let server = Server {
            api: ApiClient::new(&url),
            url,
            child: Some(child),
            data: Some(data),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// A server already running at `url`.
    pub async fn connect(url: &str) -> Result<Server, Error> {
        let api = ApiClient::new(url);
        let server = Server {
            url: api.base().to_owned(),
            api,
            child: None,
            data: None,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.api.get_bytes("/ready", &[]).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Server(format!("{} not ready after 60 s", self.url)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's process id, if the harness started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether a server the harness started has exited, and how (`None` while it runs, or
    /// for a server it did not start).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The store's directory, if the harness started the server.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data.as_ref().map(|d| d.path().join("data"))
    }

    /// The typed client of its HTTP/JSON API.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// `/metrics` as (name with labels, value) pairs.
    pub async fn metrics(&self) -> Result<Vec<(String, f64)>, Error> {
        let body = self
            .api
            .get_bytes("/metrics", &[])
            .await
            .map_err(|e| Error::Api("/metrics".into(), e))?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect())
    }

    /// Resident memory: `/proc/<pid>/status` of a spawned server, else `/metrics`'
    /// `process_resident_memory_bytes`.
    pub async fn rss_bytes(&self) -> Option<u64> {
        if let Some(pid) = self.pid() {
            return rss_of(pid);
        }
        metric(&self.metrics().await.ok()?, "process_resident_memory_bytes").map(|v| v as u64)
    }

    /// Bytes under the data directory (spawned servers only).
    pub fn disk_bytes(&self) -> Option<u64> {
        self.data_dir().map(|d| dir_size(&d))
    }

    /// SIGTERM, then waits for the exit (the WAL is synced); a server the harness did not
    /// start is left running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // `STRATA_BENCH_KEEP_DATA=1` keeps a spawned server's data directory for inspection.
        if std::env::var_os("STRATA_BENCH_KEEP_DATA").is_some_and(|v| v == "1")
            && let Some(dir) = self.data.take()
        {
            eprintln!("kept the server's data directory {}", dir.keep().display());
        }
    }
}

/// The value of the unlabelled metric `name`.
pub fn metric(metrics: &[(String, f64)], name: &str) -> Option<f64> {
    metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// User and system CPU time of every thread of process `pid`.
pub fn cpu_of(pid: u32) -> Option<(Duration, Duration)> {
    crate::user_system_time_of(&pid.to_string())
}

/// `VmRSS` of process `pid`, in bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

/// `VmHWM` of process `pid` (the kernel's record of its peak resident memory), in bytes.
pub fn hwm_of(pid: u32) -> Option<u64> {
    status_kb(pid, "VmHWM:")
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// The `strata` binary: `explicit`, else `strata` next to the running executable (or its
/// parent directory, for test binaries under `deps/`).
pub fn find_strata(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("locating the executable", e))?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("strata"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Server(format!(
                "no `strata` binary next to {}; build it (cargo build -p strata-server) or pass --strata-bin",
                exe.display()
            ))
        })
}
