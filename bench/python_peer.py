#!/usr/bin/env python3
"""The load test's peer: the same job as trendcast, written the way a Python user would.

Consumes sales events (JSON, key = SKU) with confluent-kafka, keeps per-SKU daily net units in
dicts, and whenever a UTC day closes (the largest event time passes midnight) forecasts the next
7 days for every SKU that changed, with statsforecast's SimpleExponentialSmoothing (alpha 0.3, the
same model as trendcast's baseline) over its last 28 days. Prints one JSON line with its rate.

Usage: python_peer.py --brokers HOST:PORT --topic TOPIC --events N
"""

import argparse
import json
import time
import uuid
from collections import defaultdict

import numpy as np
import pandas as pd
from confluent_kafka import Consumer
from statsforecast import StatsForecast
from statsforecast.models import SimpleExponentialSmoothing

DAY = 86_400_000
WINDOW = 28
HORIZON = 7


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--events", type=int, required=True)
    args = ap.parse_args()

    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": f"python-peer-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    units = defaultdict(lambda: defaultdict(float))  # sku -> day -> net units
    changed = set()
    closed_day = None
    seen = 0
    forecasts = 0
    started = None
    sf = StatsForecast(models=[SimpleExponentialSmoothing(alpha=0.3)], freq="D", n_jobs=1)

    def forecast(day: int) -> int:
        rows = []
        for sku in changed:
            series = units[sku]
            for d in range(day - WINDOW + 1, day + 1):
                rows.append((sku, pd.Timestamp(d * DAY, unit="ms"), max(0.0, series.get(d, 0.0))))
        changed.clear()
        if not rows:
            return 0
        df = pd.DataFrame(rows, columns=["unique_id", "ds", "y"])
        out = sf.forecast(df=df, h=HORIZON)
        return len(out) // HORIZON

    while seen < args.events:
        batch = consumer.consume(num_messages=1000, timeout=1.0)
        for msg in batch:
            if msg.error():
                continue
            if started is None:
                started = time.perf_counter()
            seen += 1
            try:
                e = json.loads(msg.value())
                ts = int(e["ts"]) if not isinstance(e["ts"], str) else int(pd.Timestamp(e["ts"]).value // 1_000_000)
                qty = float(e["qty"])
            except (ValueError, KeyError, TypeError):
                continue
            if not np.isfinite(qty):
                continue
            day = ts // DAY
            units[e["sku"]][day] += qty
            changed.add(e["sku"])
            # a day closes when the event time passes it
            if closed_day is None:
                closed_day = day - 1
            if day - 1 > closed_day:
                forecasts += forecast(day - 1)
                closed_day = day - 1
    forecasts += forecast(closed_day + 1)
    elapsed = time.perf_counter() - started
    consumer.close()
    print(json.dumps({"events": seen, "forecasts": forecasts, "elapsed_s": round(elapsed, 2), "rate_events_per_s": round(seen / elapsed)}))


if __name__ == "__main__":
    main()
