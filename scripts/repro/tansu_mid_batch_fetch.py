#!/usr/bin/env python3
"""Reproduces a Tansu 0.6.0 gap: a fetch that starts inside a record batch.

Produces two batches of 1,000 messages to a new one-partition topic, prints the high watermark
the broker reports, then reads from offsets 0, 500, 1000 and 1500 with a fresh consumer each.
Apache Kafka gives 2000, 1500, 1000 and 500 messages and a high watermark of 2000. Tansu 0.6.0
(2026-11-30): 2000, 1000 (offsets 1000-1999: the rest of the first batch skipped), 1000 and 0,
high watermark 1001 (the last batch's first offset + 1). The engine's offset guard
(crates/engine/src/ingest/offset_guard.rs) works around it.
Usage (needs confluent-kafka, e.g. the bench venv): tansu_mid_batch_fetch.py HOST:PORT
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

brokers = sys.argv[1]
topic = f"mid-batch-{uuid.uuid4().hex[:8]}"
admin = AdminClient({"bootstrap.servers": brokers})
for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
    f.result()
time.sleep(1)
producer = Producer({"bootstrap.servers": brokers, "linger.ms": 500, "batch.num.messages": 1000})
for batch in range(2):
    for i in range(1000):
        producer.produce(topic, key=b"k", value=str(batch * 1000 + i).encode())
    producer.flush()
probe = Consumer({"bootstrap.servers": brokers, "group.id": f"{topic}-probe"})
low, high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
probe.close()
print(f"watermarks low {low} high {high}")
for start in [0, 500, 1000, 1500]:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"{topic}-{start}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(topic, 0, start)])
    got = []
    t = time.time()
    while time.time() - t < 3:
        m = consumer.poll(0.2)
        if m is not None and not m.error():
            got.append(int(m.value()))
    print(f"start {start}: got {len(got)}", f"offsets {got[0]}-{got[-1]}" if got else "")
    consumer.close()
