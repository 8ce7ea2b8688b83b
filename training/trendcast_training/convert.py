"""Convert the public logs to the engine's JSONL event schema (schemas/sales_event.schema.json,
schemas/click_event.schema.json), with the same rules as the engine's own readers
(crates/tools/src/datasets/online_retail.rs, retailrocket.rs). The engine reads both logs directly
(`--format online-retail|retailrocket`); this is for feeding other tools / Kafka producers.

    python -m trendcast_training.convert online-retail IN.csv[.gz] OUT.jsonl [--limit N]
    python -m trendcast_training.convert retailrocket IN.csv[.gz] OUT.jsonl [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
from datetime import datetime, timezone


def _open(path: str):
    raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def online_retail(rows):
    """Product lines only (5 leading digits), zero quantities dropped, InvoiceDate taken as UTC,
    cancellations keep their negative quantity; order_id = InvoiceNo."""
    for r in rows:
        code = r["StockCode"]
        if not (len(code) >= 5 and code[:5].isdigit() and code[:5].isascii()):
            continue
        try:
            qty = float(r["Quantity"].strip())
            price = float(r["UnitPrice"].strip())
            t = datetime.strptime(r["InvoiceDate"].strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        if qty == 0.0:
            continue
        yield {"sku": code, "ts": int(t.timestamp() * 1000), "qty": qty, "unit_price": price,
               "order_id": r["InvoiceNo"]}


def retailrocket(rows):
    """SKU RR-<item_idx>; view / addtocart -> clicks (session u<user_idx>); transaction -> 1 unit, no price."""
    kinds = {"view": "view", "addtocart": "add_to_cart"}
    for r in rows:
        try:
            ts = int(r["timestamp"].strip()) * 1000
        except ValueError:
            continue
        sku = f"RR-{r['item_idx'].strip()}"
        ev = r["event"].strip()
        if ev in kinds:
            yield {"sku": sku, "ts": ts, "kind": kinds[ev], "session_id": f"u{r['user_idx'].strip()}"}
        elif ev == "transaction":
            yield {"sku": sku, "ts": ts, "qty": 1.0, "unit_price": None, "order_id": None}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("format", choices=["online-retail", "retailrocket"])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--limit", type=int, default=None, help="read at most this many data rows")
    a = ap.parse_args(argv)
    conv = online_retail if a.format == "online-retail" else retailrocket
    n = 0
    with _open(a.src) as f, open(a.dst, "w") as out:
        rows = csv.DictReader(f)
        if a.limit is not None:
            rows = (r for i, r in enumerate(rows) if i < a.limit)
        for ev in conv(rows):
            out.write(json.dumps(ev) + "\n")
            n += 1
    print(f"{n} events -> {a.dst}")


if __name__ == "__main__":
    main()
