//! The engine's one Kafka producer, shared by the scorer (trend updates) and ingest (dead letters).
//!
//! librdkafka batches, retries and delivers on its own threads; `ThreadedProducer` polls it. Each
//! message carries a small tag so the delivery callback can count it under the right metric and
//! time its acknowledgement. `send` blocks (briefly, in a retry loop) only when librdkafka's
//! local queue is full: that is the engine's backpressure towards the broker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::kafka::KafkaSettings;
use crate::telemetry::EngineStats;

/// What a produced message was, for the delivery callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A trend update; `trigger_ms` is the producer create time of the input event whose arrival
    /// closed the bucket it is for, if known.
    TrendUpdate {
        /// Epoch ms.
        trigger_ms: Option<i64>,
    },
    /// A dead-lettered input message.
    DeadLetter,
    /// A checkpoint record on the changelog topic.
    Changelog,
}

/// Per-message delivery tag.
#[derive(Debug)]
pub struct DeliveryTag {
    kind: MessageKind,
    sent_at: Instant,
}

/// Producer context: counts acknowledgements and failures.
pub struct PublishContext {
    stats: Arc<EngineStats>,
    failed: AtomicU64,
}

impl ClientContext for PublishContext {}

impl ProducerContext for PublishContext {
    type DeliveryOpaque = Box<DeliveryTag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Self::DeliveryOpaque) {
        match result {
            Ok(_) => match tag.kind {
                MessageKind::TrendUpdate { trigger_ms } => {
                    self.stats.published(tag.sent_at.elapsed());
                    if let Some(t) = trigger_ms {
                        self.stats
                            .event_to_update(chrono::Utc::now().timestamp_millis() - t);
                    }
                }
                MessageKind::DeadLetter => self.stats.dead_letters.add(1),
                MessageKind::Changelog => {}
            },
            Err((err, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.stats.publish_errors.add(1);
                tracing::error!(error = %err, kind = ?tag.kind, "message could not be delivered");
            }
        }
    }
}

/// Errors from the publisher.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer could not be created.
    #[error("could not create the Kafka producer")]
    Create(#[source] KafkaError),
    /// A message was refused by librdkafka (not a full queue).
    #[error("could not enqueue a message for topic {topic}")]
    Enqueue {
        /// Destination topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Messages were still unacknowledged when the flush timed out.
    #[error("flush timed out with {0} messages in flight")]
    FlushTimeout(i32),
}

/// One shared producer; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    producer: ThreadedProducer<PublishContext>,
}

impl Publisher {
    /// Creates the producer from the shared Kafka settings.
    pub fn new(kafka: &KafkaSettings, stats: Arc<EngineStats>) -> Result<Self, PublishError> {
        let mut config = kafka.producer_config();
        // Dead letters carry the original bytes, which may be larger than accepted input.
        if !kafka.properties.contains_key("message.max.bytes") {
            config.set("message.max.bytes", "4194304");
        }
        let context = PublishContext {
            stats,
            failed: AtomicU64::new(0),
        };
        let producer = config
            .create_with_context(context)
            .map_err(PublishError::Create)?;
        Ok(Self { producer })
    }

    /// Enqueues one message (partitioned by key); waits while librdkafka's queue is full.
    pub fn send(
        &self,
        kind: MessageKind,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), PublishError> {
        self.send_to(kind, topic, None, key, payload, headers)
    }

    /// Enqueues one message to `partition` (or by key when `None`); waits while librdkafka's
    /// queue is full.
    pub fn send_to(
        &self,
        kind: MessageKind,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), PublishError> {
        let tag = Box::new(DeliveryTag {
            kind,
            sent_at: Instant::now(),
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<DeliveryTag>> =
            BaseRecord::with_opaque_to(topic, tag);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = payload {
            record = record.payload(p);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((source, _)) => {
                    return Err(PublishError::Enqueue {
                        topic: topic.to_string(),
                        source,
                    })
                }
            }
        }
    }

    /// Messages not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Messages whose delivery failed after librdkafka's retries.
    pub fn failed(&self) -> u64 {
        self.producer.context().failed.load(Ordering::Relaxed)
    }

    /// Waits until every enqueued message is acknowledged or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        self.producer
            .flush(timeout)
            .map_err(|_| PublishError::FlushTimeout(self.producer.in_flight_count()))
    }
}

/// Builds a header list from name/value pairs.
pub fn headers(pairs: &[(&str, &[u8])]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new(), |h, (name, value)| {
        h.insert(Header {
            key: name,
            value: Some(*value),
        })
    })
}
