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
}

impl DurableBroker {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut broker = Self {
            dir: tempfile::tempdir().expect("broker dir"),
            port,
            child: None,
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
            .open(self.dir.path().join("tansu.log"))
            .expect("broker log");
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
