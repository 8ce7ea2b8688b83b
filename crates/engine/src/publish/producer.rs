//! The engine's one Kafka producer, shared by the scorer (trend updates) and ingest (dead letters).
//!
//! librdkafka batches, retries and delivers on its own threads; `ThreadedProducer` polls it. Each
//! message carries a small tag so the delivery callback can count it under the right metric and
//! time its acknowledgement. `send` blocks (briefly, in a retry loop) only when librdkafka's
//! local queue is full: that is the engine's backpressure towards the broker.
//!
//! librdkafka reports a message as failed once its own retries are spent, and treats some broker
//! answers as final at once (an `UNKNOWN_SERVER_ERROR` from a struggling broker, a topic that is
//! missing for a while). Dropping such a message would break at-least-once (a trend update or a
//! changelog record would simply be gone), so the delivery callback keeps a copy and the
//! publisher sends it again, to the same partition, on the next `send` or `flush` (at most every
//! [`RESEND_BACKOFF`]); `flush` returns only when the copies are acknowledged too. Only errors
//! that no retry can cure (message too large, invalid record, not authorised) are final: they are
//! counted, logged, and make the next `flush` fail so that no checkpoint commits past them. From
//! then on every `send` fails too, and the scorer checks [`Publisher::check_refused`] on every
//! turn: the engine stops and `trendcast run` exits non-zero, as a Kafka Streams application does
//! with its default production-exception handler. Carrying on would publish nothing and commit
//! nothing while looking alive; a restart resumes from the last commit, so nothing is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use rdkafka::Message;

use super::avro::{self, AvroEncodeError};
use crate::kafka::KafkaSettings;
use crate::telemetry::{EngineStats, LatencySample, LatencySamples};
use crate::vocab::wire;

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
    /// A restock signal or a hot-products ranking.
    Signal,
}

/// Per-message delivery tag.
#[derive(Debug)]
pub struct DeliveryTag {
    kind: MessageKind,
    sent_at: Instant,
}

/// How often [`Publisher::flush`] looks at the count of unacknowledged messages.
const DELIVERY_CHECK: Duration = Duration::from_millis(1);

/// Shortest time between two rounds of sending failed messages again.
pub const RESEND_BACKOFF: Duration = Duration::from_millis(200);

/// A copy of a message whose delivery failed, to be sent again.
struct Resend {
    kind: MessageKind,
    topic: String,
    partition: i32,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
}

/// Producer context: counts acknowledgements and failures, keeps failed messages for a resend.
pub struct PublishContext {
    stats: Arc<EngineStats>,
    /// Messages that failed for good (no retry can cure them), since the start.
    failed: AtomicU64,
    /// Of those, the ones not yet reported by a `flush`.
    unreported: AtomicU64,
    /// Messages sent again after a failed delivery, since the start.
    resent: AtomicU64,
    pending: Mutex<Vec<Resend>>,
    /// `pending.len()`, readable without the lock (checked on every send).
    waiting: AtomicUsize,
    /// Where each update's latency goes once a load test asked for the samples.
    latency_samples: OnceLock<Arc<LatencySamples>>,
}

/// Whether no retry can deliver a message that failed with `code`.
fn is_final(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidRequiredAcks
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::InvalidRecord
    )
}

impl ClientContext for PublishContext {}

impl ProducerContext for PublishContext {
    type DeliveryOpaque = Box<DeliveryTag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Self::DeliveryOpaque) {
        match result {
            Ok(_) => match tag.kind {
                MessageKind::TrendUpdate { trigger_ms } => {
                    let send_to_ack = tag.sent_at.elapsed();
                    self.stats.published(send_to_ack);
                    if let Some(t) = trigger_ms {
                        let ms = chrono::Utc::now().timestamp_millis() - t;
                        self.stats.event_to_update(ms);
                        if let Some(samples) = self.latency_samples.get() {
                            samples.record(LatencySample {
                                event_to_ack_ms: ms as f32,
                                send_to_ack_ms: send_to_ack.as_secs_f32() * 1000.0,
                            });
                        }
                    }
                }
                MessageKind::DeadLetter => self.stats.dead_letters.add(1),
                MessageKind::Changelog | MessageKind::Signal => {}
            },
            Err((err, msg)) => {
                self.stats.publish_errors.add(1);
                if err.rdkafka_error_code().is_some_and(is_final) {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    self.unreported.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %err, kind = ?tag.kind, topic = msg.topic(), "message could not be delivered and cannot be retried");
                    return;
                }
                let copy = Resend {
                    kind: tag.kind,
                    topic: msg.topic().to_string(),
                    partition: msg.partition(),
                    key: msg.key().map(<[u8]>::to_vec),
                    payload: msg.payload().map(<[u8]>::to_vec),
                    headers: msg.headers().map(|h| h.detach()),
                };
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                if pending.is_empty() {
                    tracing::warn!(error = %err, kind = ?tag.kind, topic = msg.topic(), "message delivery failed: it will be sent again");
                }
                pending.push(copy);
                self.waiting.store(pending.len(), Ordering::Release);
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
    /// librdkafka refused to flush (it only ever times out, which is waited on).
    #[error("could not flush the Kafka producer")]
    Flush(#[source] KafkaError),
    /// Messages were still unacknowledged when the flush timed out.
    #[error("flush timed out with {0} messages in flight")]
    FlushTimeout(i32),
    /// Messages failed for good since the last flush (see the log for each).
    #[error("{0} messages could not be delivered and cannot be retried")]
    Undeliverable(u64),
    /// The broker has refused messages for good (not authorised, too large, invalid): nothing
    /// more is sent, so that no offset is committed past them.
    #[error(
        "the broker refused {0} messages for good (see the log for each: not authorised, too \
         large or invalid); stopping, so that no offset is committed past them"
    )]
    Refused(u64),
    /// An output value could not be written as Avro (`[schema_registry] output_format`): the
    /// value and its schema under `schemas/avro/` disagree.
    #[error("an output value for topic {topic} could not be written as Avro")]
    Encode {
        /// Destination topic.
        topic: String,
        /// What did not fit.
        #[source]
        source: AvroEncodeError,
    },
}

/// How one output topic's values go out when outputs are framed: with its registered schema
/// id, and as Avro when `avro` holds the schema registered under that id.
#[derive(Debug, Clone)]
pub struct OutputFrame {
    /// The id the registry gave the topic's value schema.
    pub schema_id: u32,
    /// The Avro schema the JSON body is re-encoded with; `None`: the body stays JSON.
    pub avro: Option<Arc<apache_avro::Schema>>,
}

/// An [`OutputFrame`] ready to apply: the Confluent prefix and the Avro schema, if any.
struct Framing {
    prefix: [u8; wire::FRAME_LEN],
    avro: Option<Arc<apache_avro::Schema>>,
}

/// One shared producer; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    producer: ThreadedProducer<PublishContext>,
    last_resend: Arc<Mutex<Instant>>,
    /// Output topic → the Confluent frame its values get (empty: plain JSON).
    frames: Arc<HashMap<String, Framing>>,
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
            unreported: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
            latency_samples: OnceLock::new(),
        };
        let producer = config
            .create_with_context(context)
            .map_err(PublishError::Create)?;
        Ok(Self {
            producer,
            last_resend: Arc::new(Mutex::new(Instant::now())),
            frames: Arc::default(),
        })
    }

    /// From now on, keeps each acknowledged update's latency in the returned recorder (the same
    /// one on every call). For load tests; a running engine only feeds the metrics histogram.
    pub fn keep_latency_samples(&self) -> Arc<LatencySamples> {
        self.producer
            .context()
            .latency_samples
            .get_or_init(Arc::default)
            .clone()
    }

    /// Sends the copies of failed messages again, at most every [`RESEND_BACKOFF`].
    fn resend_failed(&self) -> Result<(), PublishError> {
        {
            let mut last = self.last_resend.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < RESEND_BACKOFF {
                return Ok(());
            }
            *last = Instant::now();
        }
        let context = self.producer.context();
        let copies = {
            let mut pending = context.pending.lock().unwrap_or_else(|e| e.into_inner());
            context.waiting.store(0, Ordering::Release);
            std::mem::take(&mut *pending)
        };
        if copies.is_empty() {
            return Ok(());
        }
        context
            .resent
            .fetch_add(copies.len() as u64, Ordering::Relaxed);
        tracing::debug!(messages = copies.len(), "sending failed messages again");
        for m in copies {
            self.enqueue(
                m.kind,
                &m.topic,
                Some(m.partition),
                m.key.as_deref(),
                m.payload.as_deref(),
                m.headers,
            )?;
        }
        Ok(())
    }

    /// Messages waiting to be sent again after a failed delivery.
    pub fn pending_resends(&self) -> usize {
        self.producer.context().waiting.load(Ordering::Acquire)
    }

    /// Messages sent again after a failed delivery, since the start.
    pub fn resent(&self) -> u64 {
        self.producer.context().resent.load(Ordering::Relaxed)
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
        self.check_refused()?;
        if self.pending_resends() > 0 {
            self.resend_failed()?;
        }
        // outputs only: dead letters keep the input's bytes, changelog records are the engine's
        let framed = match (kind, payload) {
            (MessageKind::TrendUpdate { .. } | MessageKind::Signal, Some(body))
                if !self.frames.is_empty() =>
            {
                self.frame(topic, body)?
            }
            _ => None,
        };
        let payload = framed.as_deref().or(payload);
        self.enqueue(kind, topic, partition, key, payload, headers)
    }

    /// The framed value of output `body` for `topic` (`None`: the topic is not framed).
    fn frame(&self, topic: &str, body: &[u8]) -> Result<Option<Vec<u8>>, PublishError> {
        let Some(framing) = self.frames.get(topic) else {
            return Ok(None);
        };
        let encoded;
        let body = match &framing.avro {
            Some(schema) => {
                encoded = avro::encode(schema, body).map_err(|source| PublishError::Encode {
                    topic: topic.to_string(),
                    source,
                })?;
                &encoded[..]
            }
            None => body,
        };
        Ok(Some([&framing.prefix[..], body].concat()))
    }

    /// From now on, frames every output value sent to a topic of `frames` in the Confluent wire
    /// format with that topic's schema id (`crate::vocab::wire`; the ids come from
    /// [`super::SchemaRegistry`]), re-encoding it as Avro where the frame says so. Set before
    /// the publisher is cloned.
    pub fn framed(mut self, frames: &HashMap<String, OutputFrame>) -> Self {
        let frames = frames
            .iter()
            .map(|(topic, frame)| {
                let framing = Framing {
                    prefix: wire::frame(frame.schema_id),
                    avro: frame.avro.clone(),
                };
                (topic.clone(), framing)
            })
            .collect();
        self.frames = Arc::new(frames);
        self
    }

    /// Fails once the broker has refused any message for good (see the module docs).
    pub fn check_refused(&self) -> Result<(), PublishError> {
        match self.failed() {
            0 => Ok(()),
            refused => Err(PublishError::Refused(refused)),
        }
    }

    fn enqueue(
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

    /// Messages not yet acknowledged, copies waiting to be sent again included (what
    /// backpressure bounds).
    pub fn in_flight(&self) -> i32 {
        let pending = i32::try_from(self.pending_resends()).unwrap_or(i32::MAX);
        self.producer.in_flight_count().saturating_add(pending)
    }

    /// Messages whose delivery failed after librdkafka's retries.
    pub fn failed(&self) -> u64 {
        self.producer.context().failed.load(Ordering::Relaxed)
    }

    /// Waits until every enqueued message, and every copy of a failed one, is acknowledged, or
    /// `timeout` passes. Fails when messages failed for good since the last flush.
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.resend_failed()?;
            let flushed = self.wait_delivered(deadline);
            let pending = self.pending_resends();
            if flushed? && pending == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(PublishError::FlushTimeout(
                    self.producer.in_flight_count() + pending as i32,
                ));
            }
            std::thread::sleep(
                RESEND_BACKOFF.min(deadline.saturating_duration_since(Instant::now())),
            );
        }
        match self
            .producer
            .context()
            .unreported
            .swap(0, Ordering::Relaxed)
        {
            0 => Ok(()),
            lost => Err(PublishError::Undeliverable(lost)),
        }
    }

    /// Waits until librdkafka holds no unacknowledged message, or `deadline` passes: true when
    /// none is left.
    ///
    /// Why not rust-rdkafka's `flush`: between its non-blocking `rd_kafka_flush` calls it polls
    /// the delivery-report queue for up to 100 ms, but with a `ThreadedProducer` the polling
    /// thread takes the reports first, so that poll sleeps its full 100 ms even when every
    /// message is acknowledged within milliseconds. A checkpoint flushes twice with ingest
    /// stopped: it stood still about 200 ms every 5 s (debug log of its phases, 2026-12-03),
    /// longer than the broker's p99. Here `rd_kafka_flush` with no wait only tells librdkafka to
    /// send what lingers, and the polling thread brings the in-flight count down as reports come.
    fn wait_delivered(&self, deadline: Instant) -> Result<bool, PublishError> {
        loop {
            match self.producer.flush(Duration::ZERO) {
                Ok(()) => return Ok(true),
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
                Err(e) => return Err(PublishError::Flush(e)),
            }
            if self.producer.in_flight_count() == 0 {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(DELIVERY_CHECK.min(left));
        }
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
