//! The relay ceiling: what any engine that publishes one message per message it reads can reach
//! on this broker and these cores.
//!
//! The bare consumer (a) only reads. trendcast publishes a trend update per SKU-day with sales
//! (about one per two Online Retail lines), so the broker has to take a second, larger stream
//! while it serves the first. On a 2-core machine shared with the broker, that write path costs
//! CPU the bare consumer never pays. The relay measures it with no engine work at all: it reads
//! the input topic as (a) does and publishes as many messages as the engine published, spread
//! evenly over the input, each one of the engine's own trend updates (read back from the output
//! topic of the engine run, cycled in order), through the engine's `Publisher`, until every
//! message is acknowledged. Engine over relay is then the share of the reachable rate the engine
//! gets; relay over bare is the broker's part of the gap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::message::Message;

use super::bare_consumer;
use trendcast_engine::kafka::KafkaSettings;
use trendcast_engine::publish::{MessageKind, Publisher};
use trendcast_engine::telemetry::EngineStats;

/// Up to `limit` payloads of `topic`, in order, read from its start (the engine's updates).
pub fn sample_payloads(kafka: &KafkaSettings, topic: &str, limit: usize) -> Result<Vec<Vec<u8>>> {
    let consumer = bare_consumer(kafka, &format!("{topic}-sample"), topic)?;
    let mut payloads = Vec::with_capacity(limit);
    let deadline = Instant::now() + Duration::from_secs(60);
    while payloads.len() < limit && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if let Some(p) = m.payload() {
                payloads.push(p.to_vec());
            }
        }
    }
    if payloads.is_empty() {
        bail!("no payloads on {topic} to relay");
    }
    Ok(payloads)
}

/// What the relay reads and writes.
pub struct RelayPlan<'a> {
    pub input: &'a str,
    pub output: &'a str,
    /// Messages to read from `input`.
    pub read: u64,
    /// Messages to publish to `output`, spread evenly over the ones read.
    pub publish: u64,
    pub payloads: &'a [Vec<u8>],
}

/// Events per second of the relay (messages read per second, until every publish is acknowledged).
pub fn relay_rate(kafka: &KafkaSettings, plan: &RelayPlan<'_>) -> Result<f64> {
    let RelayPlan {
        input,
        output,
        read: n,
        publish,
        payloads,
    } = *plan;
    let consumer = bare_consumer(kafka, &format!("{input}-relay"), input)?;
    // the engine's own producer path: its settings, its retries, its wait on a full queue
    let stats = Arc::new(EngineStats::default());
    let publisher = Publisher::new(kafka, stats.clone()).context("relay producer")?;
    let (mut seen, mut sent) = (0_u64, 0_u64);
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < n {
        if Instant::now() > deadline {
            bail!("relay read {seen} of {n} messages in 10 minutes");
        }
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        started.get_or_insert_with(Instant::now);
        seen += 1;
        // the sent count follows publish/read of the messages read so far
        if sent < seen * publish / n {
            let payload = &payloads[(sent % payloads.len() as u64) as usize];
            let update = MessageKind::TrendUpdate { trigger_ms: None };
            publisher
                .send(update, output, m.key(), Some(payload), None)
                .context("relay send")?;
            sent += 1;
        }
    }
    publisher
        .flush(Duration::from_secs(120))
        .context("relay flush")?;
    let acked = stats.updates_published.get();
    if acked != sent {
        bail!("relay: {acked} of {sent} messages acknowledged");
    }
    let secs = started
        .map(|s| s.elapsed().as_secs_f64())
        .unwrap_or(f64::NAN);
    Ok(n as f64 / secs)
}
