//! A Tansu broker of a test's own, on durable storage, that the test can stop and start again
//! under the same address (broker restarts: `tests/recovery.rs`, `tests/query_api.rs`).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A Tansu broker of this test's own on durable storage (`sqlite://` in a temporary folder), on a
/// fixed loopback port so that it can be stopped and started again under the same address.
pub struct DurableBroker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    log: std::path::PathBuf,
    /// Length of the log when the running broker started: what it wrote is past this.
    started_at: u64,
}

impl DurableBroker {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("broker dir");
        let log = super::test_log_dir(dir.path()).join(format!("tansu-{port}.log"));
        let mut broker = Self {
            dir,
            port,
            child: None,
            log,
            started_at: 0,
        };
        broker.up();
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts Tansu on the folder's sqlite file and waits until it accepts connections.
    pub fn up(&mut self) {
        let tansu = std::env::var_os("TANSU_BIN").unwrap_or_else(|| {
            panic!("TANSU_BIN is not set: run the tests with scripts/test.sh, which installs Tansu")
        });
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("broker log");
        self.started_at = log.metadata().map_or(0, |m| m.len());
        let child = Command::new(tansu)
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // Tansu resolves the path against its working directory
            .args(["--storage-engine", "sqlite://tansu.db"])
            // not the test's own RUST_LOG: at `info` Tansu logs every request (4 GB in a
            // ten-minute run), which slows it down enough to change what the test sees
            .env(
                "RUST_LOG",
                std::env::var("TRENDCAST_TEST_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Tansu did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Tansu's panic when the running broker's storage died (Tansu 0.6.0 on `sqlite://` can
    /// panic while updating a consumer group on a heartbeat; every later request then fails:
    /// docs/RELIABILITY.md). A run on such a broker cannot pass, whatever the engine does.
    /// Only what the running broker wrote counts: a stopped one panics the same way when a
    /// heartbeat arrives after SIGTERM has shut its storage down.
    pub fn storage_died(&self) -> Option<String> {
        let bytes = std::fs::read(&self.log).ok()?;
        let start = usize::try_from(self.started_at).ok()?.min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        let at = text.find("panicked at")?;
        Some(text[at..].lines().take(2).collect::<Vec<_>>().join(" "))
    }

    /// Stops the broker with SIGTERM (SIGKILL after 10 s) and waits for it to exit.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        self.down();
    }
}
