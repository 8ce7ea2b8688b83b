#!/usr/bin/env python3
"""Reproduces a Tansu 0.6.0 gap: a fetch that starts inside a record batch returns no records.

Produces 100 messages in one batch, then reads from offsets 0, 50 and 99. Seen on 2026-11-28:
"start 0 got 100", "start 50 got 0", "start 99 got 0" (real Kafka returns the batch from 50 on).
Usage (needs confluent-kafka, e.g. the bench venv): tansu_mid_batch_fetch.py HOST:PORT
"""
import sys
import time

from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
b=sys.argv[1]
a=AdminClient({"bootstrap.servers":b}); [f.result() for f in a.create_topics([NewTopic("mb",1,1)]).values()]
time.sleep(1)
p=Producer({"bootstrap.servers":b,"linger.ms":500})
for i in range(100): p.produce("mb", key=b"k", value=str(i).encode())
p.flush()
for start in [0, 50, 99]:
    c=Consumer({"bootstrap.servers":b,"group.id":f"g{start}","enable.auto.commit":False,"fetch.wait.max.ms":100})
    c.assign([TopicPartition("mb",0,start)])
    got=[]; t=time.time()
    while time.time()-t<3:
        m=c.poll(0.2)
        if m and not m.error(): got.append(int(m.value()))
    print("start",start,"got",len(got), got[:3]); c.close()
