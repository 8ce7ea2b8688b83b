//! Dead letters: a rejected message is copied, bytes intact, to the dead-letter topic.
//!
//! The copy keeps the original key and value and adds headers saying why and where from:
//! `trendcast-reason` (a [`RejectReason`](super::RejectReason) code), `trendcast-detail`,
//! `trendcast-source-topic`, `trendcast-source-partition`, `trendcast-source-offset`.

use rdkafka::message::{Headers, Message};

use super::event::Rejection;
use crate::publish::{headers, MessageKind, PublishError, Publisher};

/// Header carrying the reason code.
pub const REASON_HEADER: &str = "trendcast-reason";
/// Header carrying the human-readable detail.
pub const DETAIL_HEADER: &str = "trendcast-detail";
/// Header carrying the source topic.
pub const SOURCE_TOPIC_HEADER: &str = "trendcast-source-topic";
/// Header carrying the source partition.
pub const SOURCE_PARTITION_HEADER: &str = "trendcast-source-partition";
/// Header carrying the source offset.
pub const SOURCE_OFFSET_HEADER: &str = "trendcast-source-offset";

/// Copies `msg` to `topic` with the rejection in its headers.
pub fn send<M: Message>(
    publisher: &Publisher,
    topic: &str,
    msg: &M,
    rejection: &Rejection,
) -> Result<(), PublishError> {
    let partition = msg.partition().to_string();
    let offset = msg.offset().to_string();
    let mut detail = rejection.detail.clone();
    if detail.len() > 1024 {
        let mut cut = 1024;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    let mut h = headers(&[
        (REASON_HEADER, rejection.reason.as_str().as_bytes()),
        (DETAIL_HEADER, detail.as_bytes()),
        (SOURCE_TOPIC_HEADER, msg.topic().as_bytes()),
        (SOURCE_PARTITION_HEADER, partition.as_bytes()),
        (SOURCE_OFFSET_HEADER, offset.as_bytes()),
    ]);
    if let Some(original) = msg.headers() {
        for header in original.iter() {
            h = h.insert(header);
        }
    }
    publisher.send(
        MessageKind::DeadLetter,
        topic,
        msg.key(),
        msg.payload(),
        Some(h),
    )
}
