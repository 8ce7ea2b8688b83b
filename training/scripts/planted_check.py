"""Planted series through a model's ONNX graph, without a broker: a quick look at what a model
calls on clean ramps, flat, weekly and intermittent series (tests/planted_trends.rs is the test).

    python scripts/planted_check.py MODEL_DIR        (from training/, in the training venv)
"""
import json, sys, numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from trendcast_training.onnx_out import run, session

rng = np.random.default_rng(7)
DAYS, W = 70, 28
def series(kind):
    t = np.arange(DAYS)
    lam0 = rng.uniform(4, 20)
    if kind == "rising":
        f = np.where(t < DAYS - 21, 1.0, 1.0 + (rng.uniform(2.0, 3.0) - 1.0) * (t - (DAYS - 22)) / 21)
        lam = lam0 * f
    elif kind == "falling":
        end = rng.uniform(0.05, 0.1)
        f = np.where(t < DAYS - 21, 1.0, 1.0 + (end - 1.0) * (t - (DAYS - 22)) / 21)
        lam = lam0 * f
    elif kind == "flat":
        lam = np.full(DAYS, rng.uniform(4, 10))
    elif kind == "weekly":
        prof = np.array([1.3, 1.2, 1.1, 1.0, 1.2, 0.6, 0.6]); prof /= prof.mean()
        lam = rng.uniform(4, 10) * prof[(t + rng.integers(7)) % 7]
    else:  # intermittent
        lam = np.full(DAYS, rng.uniform(0.15, 0.5))
    u = rng.poisson(lam).astype(np.float32)
    return u

kinds = ["rising", "falling", "flat", "weekly", "intermittent"]
man = json.load(open(sys.argv[1] + "/manifest.json"))
sess = session(sys.argv[1] + "/model.onnx")
w = man.get("direction_output", {}).get("call_weights", [1, 1, 1])
origin = 15200  # some day number (2011-08)
for k in kinds:
    wins = []
    for _ in range(100):
        u = series(k)[-W:]
        price = rng.uniform(1.5, 5)
        orders = np.minimum(u, rng.poisson(np.maximum(u / 3, 0.1)) + (u > 0))
        views = np.ceil(orders / 3)  # a view per 3 orders, as tests/planted_trends.rs sends
        win = np.stack([u, u * price, orders, views, np.zeros(W), np.zeros(W)], 1)
        wins.append(win)
    wins = np.array(wins, np.float32)
    out = run(sess, wins, np.full(100, origin))
    recent = wins[:, -14:, 0].mean(1)
    lvl = out.mean.mean(1)
    calls = np.argmax(out.direction * np.array(w), 1) if out.direction is not None else None
    print(f"{k:12s} calls f/fl/r {np.bincount(calls, minlength=3)}  mean p_up {out.p_up.mean():.2f}  "
          f"strength(mean) median {np.median((lvl - recent) / np.maximum(recent, 1)):+.2f}")
