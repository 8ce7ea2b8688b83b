//! A SIGKILLed instance restarted with the default configuration takes its partitions back
//! within 10 s: it rejoins its group under the same static identity (`kafka.group_instance_id =
//! "auto"`, see `crates/engine/src/kafka.rs`) instead of waiting out its dead predecessor's 45 s session.
//!
//! Runs on the test broker (Tansu). `TRENDCAST_TEST_GROUP_INSTANCE_ID` overrides the identity
//! setting (`""` shows the dynamic-membership wait this test guards against).

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;

fn sale(sku: &str, day: i64, qty: u32) -> Msg {
    let ts = 1_294_000_000_000 + day * 86_400_000;
    let v = format!(r#"{{"sku":"{sku}","ts":{ts},"qty":{qty}}}"#);
    (Some(sku.as_bytes().to_vec()), Some(v.into_bytes()))
}

fn days(from: i64, to: i64) -> Vec<Msg> {
    let mut out = Vec::new();
    for day in from..to {
        for (i, sku) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
            out.push(sale(sku, day, 2 + i as u32));
        }
    }
    out
}

/// Polls `/readyz` until it says ready with `partitions` owned; the time it took.
fn wait_ready(addr: &str, partitions: u64, child: &mut Child, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Some((200, body)) = http_get(addr, "/readyz") {
            let probe: serde_json::Value = serde_json::from_str(&body).expect("probe JSON");
            if probe["partitions"] == partitions {
                return started.elapsed();
            }
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("trendcast run exited early with {status}");
        }
        if started.elapsed() > limit {
            let last = http_get(addr, "/readyz");
            let _ = child.kill();
            panic!("not ready with {partitions} partitions after {limit:?}; last probe {last:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sigkilled_instance_restarted_with_default_settings_resumes_within_10_s() {
    let brokers = brokers();
    let topics = Topics::create("static", 2);
    let first = days(0, 10);
    produce(&brokers, &topics.sales, &first);
    let state = tempfile::tempdir().expect("state dir");
    let group = unique("static-group");
    let addr = free_addr();
    let start = || {
        let mut command = trendcast_run(&topics, &group, state.path());
        command
            .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", &addr)
            .stderr(std::process::Stdio::null());
        if let Ok(id) = std::env::var("TRENDCAST_TEST_GROUP_INSTANCE_ID") {
            command.env("TRENDCAST_KAFKA__GROUP_INSTANCE_ID", id);
        }
        command.spawn().expect("spawn trendcast run")
    };

    let mut child = start();
    let joined = wait_ready(&addr, 2, &mut child, Duration::from_secs(60));
    eprintln!("first start: ready after {joined:.1?}");
    let before = read_all(&brokers, &topics.output, 6, Duration::from_secs(60)).len();
    assert!(before >= 6, "no updates before the kill: {before}");

    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let mut child = start();
    let resumed = wait_ready(&addr, 2, &mut child, Duration::from_secs(120));
    eprintln!("restart after SIGKILL: both partitions restored and polled after {resumed:.1?}");

    // resumed for real: input produced now is read and scored
    produce(&brokers, &topics.sales, &days(10, 12));
    let after = read_all(
        &brokers,
        &topics.output,
        before + 6,
        Duration::from_secs(60),
    )
    .len();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        resumed <= Duration::from_secs(10),
        "partitions resumed {resumed:.1?} after the restart (limit 10 s)"
    );
    assert!(
        after >= before + 6,
        "new input after the restart was not scored: {before} updates before, {after} after"
    );
}
