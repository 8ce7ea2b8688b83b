//! Experiment (issue #14): how evenly does a consumer see the partitions of a topic in event
//! time, reading the main queue versus one queue per partition read furthest-behind first?
//!
//! `cargo run --release --example partition_skew -- BROKERS TOPIC PARTITIONS N main|split`
//!
//! The topic is the load run's input: a 4-partition `sales` topic filled with
//! `trendcast --config config/bench.toml replay --input data/online-retail/online_retail.csv.gz
//! --clones 4` (2,155,656 events). It prints the read rate and the share of messages that
//! arrived more than a day ahead of the event-time frontier (docs/PERFORMANCE.md, "Where the
//! default run waits").

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const DAY_MS: i64 = 86_400_000;

fn event_ms(payload: Option<&[u8]>) -> i64 {
    let Some(p) = payload else { return 0 };
    let v: serde_json::Value = serde_json::from_slice(p).unwrap_or_default();
    let ts = v.get("ts");
    if let Some(ms) = ts.and_then(|t| t.as_i64()) {
        return ms;
    }
    ts.and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

struct Track {
    latest: Vec<Option<i64>>,
    counts: Vec<u64>,
    ahead: u64,
    seen: u64,
}

impl Track {
    fn see(&mut self, p: usize, ts: i64) {
        self.latest[p] = Some(self.latest[p].map_or(ts, |l| l.max(ts)));
        self.counts[p] += 1;
        self.seen += 1;
        let frontier = self
            .latest
            .iter()
            .map(|l| l.unwrap_or(i64::MIN))
            .min()
            .unwrap_or(0);
        if ts > frontier.saturating_add(DAY_MS) {
            self.ahead += 1;
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (brokers, topic, parts, n, mode) = (
        &a[1],
        &a[2],
        a[3].parse::<usize>().unwrap(),
        a[4].parse::<u64>().unwrap(),
        a[5].as_str(),
    );
    let consumer: Arc<BaseConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("skew-{mode}-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap(),
    );
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut t = Track {
        latest: vec![None; parts],
        counts: vec![0; parts],
        ahead: 0,
        seen: 0,
    };
    let start = Instant::now();
    let mut waited = Duration::ZERO;
    let mut report = Instant::now();
    if mode == "main" {
        while t.seen < n {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                t.see(m.partition() as usize, event_ms(m.payload()));
            }
            if report.elapsed() > Duration::from_secs(1) {
                eprintln!("{:?} counts {:?}", start.elapsed(), t.counts);
                report = Instant::now();
            }
        }
    } else {
        let queues: Vec<_> = (0..parts)
            .map(|p| consumer.split_partition_queue(topic, p as i32).unwrap())
            .collect();
        let mut done = vec![false; parts];
        while t.seen < n {
            let _ = consumer.poll(Duration::ZERO);
            // the partition furthest behind in event time (never delivered = furthest)
            let p = (0..parts)
                .filter(|&p| !done[p])
                .min_by_key(|&p| t.latest[p].unwrap_or(i64::MIN))
                .unwrap();
            let w = Instant::now();
            match queues[p].poll(Duration::from_millis(50)) {
                Some(Ok(m)) => t.see(p, event_ms(m.payload())),
                Some(Err(e)) => eprintln!("error {e}"),
                None => {
                    waited += w.elapsed();
                    // an empty queue after a long wait: take it as read to the end
                    if let Ok((_, high)) =
                        consumer.fetch_watermarks(topic, p as i32, Duration::from_secs(1))
                    {
                        if t.counts[p] as i64 >= high {
                            done[p] = true;
                        }
                    }
                }
            }
            if report.elapsed() > Duration::from_secs(1) {
                eprintln!("{:?} counts {:?}", start.elapsed(), t.counts);
                report = Instant::now();
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "mode {mode}: {} msgs in {secs:.2} s = {:.0}/s; delivered >1 day ahead of the frontier: {} ({:.1}%); waited on an empty queue {:.2} s; counts {:?}",
        t.seen,
        t.seen as f64 / secs,
        t.ahead,
        100.0 * t.ahead as f64 / t.seen as f64,
        waited.as_secs_f64(),
        t.counts
    );
}
