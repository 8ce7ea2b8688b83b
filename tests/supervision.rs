//! `trendcast run` never outlives its engine: when a thread stops on an error, the process exits
//! non-zero with that error, so an orchestrator restarts it instead of keeping an idle process.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Builds the failing model (`tests/python/make_failing_model.py`) into `dir`.
fn failing_model(dir: &std::path::Path) -> PathBuf {
    let python = std::env::var_os("TRENDCAST_PYTHON").unwrap_or_else(|| {
        panic!("TRENDCAST_PYTHON is not set: run the tests with scripts/test.sh")
    });
    let status = Command::new(python)
        .arg(root().join("tests/python/make_failing_model.py"))
        .arg(dir)
        .status()
        .expect("model builder runs");
    assert!(status.success(), "make_failing_model.py failed");
    dir.join("manifest.json")
}

fn sale(sku: &str, day: i64, qty: u32) -> Msg {
    let ts = 1_294_000_000_000 + day * 86_400_000;
    let v = format!(r#"{{"sku":"{sku}","ts":{ts},"qty":{qty}}}"#);
    (Some(sku.as_bytes().to_vec()), Some(v.into_bytes()))
}

#[test]
fn a_model_that_fails_at_run_time_makes_run_exit_non_zero() {
    let brokers = brokers();
    let topics = Topics::create("supervision", 1);
    let models = tempfile::tempdir().expect("model dir");
    let manifest = failing_model(models.path());
    let state = tempfile::tempdir().expect("state dir");
    let mut child = trendcast_run(&topics, &unique("supervision-group"), state.path())
        .env("TRENDCAST_SCORING__MANIFEST", &manifest)
        .env("TRENDCAST_SCORING__MIN_RESCORE_INTERVAL", "50ms")
        .env("TRENDCAST_SIGNALS__ENABLED", "false")
        .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", "")
        .spawn()
        .expect("spawn trendcast run");

    // healthy input first: the engine scores and publishes, and stays up
    let healthy: Vec<Msg> = (0..5).map(|d| sale("S1", d, 3)).collect();
    produce(&brokers, &topics.sales, &healthy);
    let out = read_all(&brokers, &topics.output, 1, Duration::from_secs(60));
    assert!(!out.is_empty(), "no trend update from healthy input");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "trendcast run exited on healthy input"
    );

    // one window the model cannot score: the scorer stops, and so must the process
    produce(
        &brokers,
        &topics.sales,
        &[sale("S2", 5, 1000), sale("S2", 7, 1)],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("trendcast run still up 60 s after its scorer failed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("scorer"),
        "the report names the thread; stderr:\n{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("gather") || stderr.contains("model"),
        "the report carries the model's error; stderr:\n{stderr}"
    );
}

/// Waits up to `limit` for `child` to exit; returns its status and stderr.
fn wait_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("trendcast run still up after {limit:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (status, stderr)
}

/// Runs `command` (a `trendcast run`) until it exits, at most 60 s; asserts that it failed and
/// that its stderr names every one of `naming`. Returns the stderr.
fn run_until_failure(command: &mut Command, naming: &[&str]) -> String {
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn trendcast run");
    let (status, stderr) = wait_exit(&mut child, Duration::from_secs(60));
    eprintln!("exited after {:.1?}", started.elapsed());
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    for name in naming {
        assert!(
            stderr.contains(name),
            "the report does not name {name:?}; stderr:\n{stderr}"
        );
    }
    stderr
}

/// The broker refuses every write to the output topic (an ACL denial, as librdkafka's mock
/// cluster reports it in the topic's metadata): the engine must not sit up publishing nothing
/// and committing nothing, but exit non-zero, naming the refusal, without committing offsets
/// past the refused updates.
#[test]
fn a_broker_that_refuses_the_output_topic_makes_run_exit_non_zero() {
    use rdkafka::types::RDKafkaRespErr;
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let topics = Topics::new("refused");
    let group = unique("refused-group");
    for (topic, partitions) in [
        (topics.sales.as_str(), 1),
        (topics.clicks.as_str(), 1),
        (topics.output.as_str(), 1),
        (topics.dead_letter.as_str(), 1),
        (format!("{group}-changelog").as_str(), 1),
    ] {
        cluster
            .create_topic(topic, partitions, 1)
            .expect("mock topic");
    }
    cluster
        .topic_error(
            &topics.output,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .expect("topic error");
    let input: Vec<Msg> = (0..10).map(|d| sale("S1", d, 3)).collect();
    produce(&brokers, &topics.sales, &input);

    let state = tempfile::tempdir().expect("state dir");
    let stderr = run_until_failure(
        trendcast_run(&topics, &group, state.path())
            .env("TRENDCAST_KAFKA__BROKERS", &brokers)
            .env("TRENDCAST_SCORING__MIN_RESCORE_INTERVAL", "50ms")
            .env("TRENDCAST_SIGNALS__ENABLED", "false")
            .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", ""),
        &["refused", "scorer"],
    );
    assert!(
        stderr.contains("Authorization") || stderr.contains("authoriz"),
        "the log carries the broker's reason; stderr:\n{stderr}"
    );
    let committed = committed_offsets(&brokers, &group, &topics.sales, 1);
    assert!(
        committed[0] < input.len() as i64,
        "offsets committed past refused updates: {committed:?}"
    );
}

/// A window checkpoint that cannot be read (the partition's log is a directory, as a broken
/// volume might leave it) stops ingest: `trendcast run` exits non-zero naming the thread and the
/// file, instead of consuming without the state it had.
#[test]
fn an_unreadable_window_checkpoint_makes_run_exit_non_zero() {
    let topics = Topics::create("unreadable", 1);
    let group = unique("unreadable-group");
    let state = tempfile::tempdir().expect("state dir");
    let folder = state
        .path()
        .join(trendcast::checkpoint::checkpointer::folder_name(&group));
    std::fs::create_dir_all(folder.join("p0.log")).expect("a directory where the log should be");
    run_until_failure(
        trendcast_run(&topics, &group, state.path())
            .env("TRENDCAST_SIGNALS__ENABLED", "false")
            .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", ""),
        &["ingest", "p0.log"],
    );
}

/// A damaged signal state file stops the signals thread, and with it the process: the restock
/// triggers and rankings it held must not silently restart empty.
#[test]
fn a_damaged_signal_state_file_makes_run_exit_non_zero() {
    let brokers = brokers();
    let topics = Topics::create("damaged", 1);
    let hot = format!("{}-hot", topics.sales);
    create_topics(&brokers, &[(&hot, 1)]);
    let group = unique("damaged-group");
    let state = tempfile::tempdir().expect("state dir");
    let signals_group = format!("{group}-signals");
    let folder = state
        .path()
        .join(trendcast::checkpoint::checkpointer::folder_name(
            &signals_group,
        ));
    std::fs::create_dir_all(&folder).expect("signals state folder");
    std::fs::write(folder.join("partition-0.bin"), b"TCS\x02 not a state").expect("damaged file");
    run_until_failure(
        trendcast_run(&topics, &group, state.path())
            .env("TRENDCAST_SIGNALS__ENABLED", "true")
            .env("TRENDCAST_SIGNALS__HOT_PRODUCTS_TOPIC", &hot)
            .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", ""),
        &["signals", "partition-0.bin"],
    );
}
