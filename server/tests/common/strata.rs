//! The `strata` binary as a test runs it: [`Strata`] starts `strata server` on an ephemeral
//! port and kills it when dropped; [`wait_for`] polls a condition.

use std::io::BufRead;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `strata server`; killed when dropped.
pub struct Strata {
    pub child: Child,
    pub addr: std::net::SocketAddr,
}

impl Strata {
    /// Starts `strata server --no-collector` on `data` (with `config` if given) and waits for
    /// the address it logs.
    pub fn start(data: &std::path::Path, config: Option<&std::path::Path>) -> Strata {
        Self::start_with(data, config, false)
    }

    /// [`Strata::start`], with the in-process eBPF collector when `collector`.
    pub fn start_with(
        data: &std::path::Path,
        config: Option<&std::path::Path>,
        collector: bool,
    ) -> Strata {
        let mut extra = Vec::new();
        if !collector {
            extra.push("--no-collector");
        }
        Self::start_args("127.0.0.1:0", &extra, data, config)
    }

    /// `strata server --target <target> --no-collector <extra…>` on `listen` (a cluster
    /// member).
    pub fn start_target(
        listen: &str,
        target: &str,
        extra: &[&str],
        data: &std::path::Path,
        config: &std::path::Path,
    ) -> Strata {
        let mut args = vec!["--no-collector", "--target", target];
        args.extend(extra);
        Self::start_args(listen, &args, data, Some(config))
    }

    /// `strata server --listen <listen> <extra…> --data-dir <data> [--config <config>]`.
    pub fn start_args(
        listen: &str,
        extra: &[&str],
        data: &std::path::Path,
        config: Option<&std::path::Path>,
    ) -> Strata {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.args(["server", "--listen", listen]);
        cmd.args(extra);
        cmd.arg("--data-dir")
            .arg(data)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd.spawn().unwrap();
        // Logs go to stderr.
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("strata printed its address").unwrap();
            if let Some(rest) = line.split("listen=").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe (and show it with
        // STRATA_TEST_LOG=1).
        let show = std::env::var("STRATA_TEST_LOG").is_ok_and(|v| v == "1");
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if show {
                    eprintln!("[strata {addr}] {line}");
                }
            }
        });
        Strata { child, addr }
    }

    /// Sends a signal (`-HUP`, `-TERM`) with `kill`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM, then waits (up to 30 s) for the exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "strata did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 250 ms until it holds; fails the test after 60 s.
pub async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
