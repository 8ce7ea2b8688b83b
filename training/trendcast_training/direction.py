"""Direction calls (docs/TRENDS.md): the trend definition, its training target, a calibrated
classifier exported into every shipped model, and the call metrics.

Definition (the engine's `crates/engine/src/scoring/trend.rs` implements the same):

* recent level r = mean of max(0, units) over the last min(H, W) buckets of the window;
* future level f = mean of the H horizon buckets' units (realised), or of the model's `mean`
  output (forecast);
* strength = (f - r) / max(r, floor);
* rising if strength > band, falling if strength < -band, else flat.

`p_up` is P(rising) for exactly that event. The classifier is a LightGBM multiclass booster
(falling / flat / rising) on the window's row features plus momentum features, all computed
in-graph; its margins are calibrated by vector scaling (softmax(a * z + b), fitted on the
validation origins only) and the call is argmax_k(w_k p_k) with weights w chosen on the
validation origins for the best macro-F1.
"""

from __future__ import annotations

import time

import numpy as np
import onnx
from onnx import TensorProto, helper

from . import features as F
from .data import Export, train_rows
from .features import OPSET, G

CLASSES = ("falling", "flat", "rising")
FALLING, FLAT, RISING = 0, 1, 2
BAND = 0.2
FLOOR = 1.0

DEFAULTS = dict(num_leaves=31, learning_rate=0.05, max_trees=400, min_data_in_leaf=200, feature_fraction=0.8,
                bagging_fraction=0.8, lambda_l2=1.0, rows=300_000, early_stop_days=21, patience=30,
                synthetic_share=0.25, synthetic_seed=11, student=True)


# ---------------------------------------------------------------- the definition

def recent_level(windows: np.ndarray, H: int) -> np.ndarray:
    """[N, W, F] windows -> [N] mean of max(0, units) over the last min(H, W) buckets."""
    k = min(H, windows.shape[1])
    return np.maximum(np.asarray(windows[:, -k:, 0], np.float64), 0.0).mean(1)


def strength(future_level: np.ndarray, recent: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    return (np.asarray(future_level, np.float64) - recent) / np.maximum(recent, floor)


def classify(s: np.ndarray, band: float = BAND) -> np.ndarray:
    """strength -> 0 falling / 1 flat / 2 rising."""
    return np.where(s > band, RISING, np.where(s < -band, FALLING, FLAT))


def realised(actuals: np.ndarray, recent: np.ndarray, band: float = BAND, floor: float = FLOOR) -> np.ndarray:
    return classify(strength(np.asarray(actuals, np.float64).mean(1), recent, floor), band)


# ---------------------------------------------------------------- features

def momentum_coefficients(W: int) -> np.ndarray:
    """[W, 6] weights on the scaled daily units: least-squares slope over the last 14 and 28 days,
    mean of the last 7 minus the 7 before, mean of the last 3 minus the last 14, last 7 minus 28,
    last 14 minus 28 (the moving-average rule's level gap)."""
    c = np.zeros((W, 6), np.float32)
    for j, n in enumerate((14, 28)):
        t = np.arange(n, dtype=np.float64)
        c[W - n:, j] = (t - t.mean()) / ((t - t.mean()) ** 2).sum()
    c[W - 7:, 2] = 1 / 7
    c[W - 14:W - 7, 2] = -1 / 7
    for j, (a, b) in enumerate(((3, 14), (7, 28), (14, 28)), start=3):
        c[W - a:, j] += 1 / a
        c[W - b:, j] -= 1 / b
    return c


def build(g: G, feat_row: str, W: int) -> str:
    """feat_row [N, F_R] -> direction features [N, F_R + 9]: the row features, momentum (linear
    in the scaled units), how concentrated the last 14 and 7 days are in their biggest day, and
    the share of sale days in the last 14."""
    i64 = np.int64

    def sl(x, a, b):
        return g.op("Slice", [x, g.const([a], i64), g.const([b], i64), g.const([1], i64)])

    def red(op, x):
        return g.op(op, [x, g.const([1], i64)], keepdims=1)

    un = sl(feat_row, 0, W)
    mom = g.op("MatMul", [un, g.const(momentum_coefficients(W))])
    eps = g.const(np.float32(1e-6))
    shares = [g.op("Div", [red("ReduceMax", sl(un, W - k, W)), g.op("Add", [red("ReduceSum", sl(un, W - k, W)), eps])])
              for k in (14, 7)]
    sold14 = red("ReduceMean", g.op("Cast", [g.op("Greater", [sl(un, W - 14, W), g.const(np.float32(0))])],
                                    to=TensorProto.FLOAT))
    return g.op("Concat", [feat_row, mom, *shares, sold14], axis=1, out="feat_dir")


_SESS = {}


def compute(windows: np.ndarray, origin_day: np.ndarray, W: int, H: int, batch: int = 65536) -> np.ndarray:
    """Run the direction feature graph with onnxruntime: [N, F_R + 5]."""
    import onnxruntime as ort

    if (W, H) not in _SESS:
        g = G()
        _, _, fr = F.build_features(g, "window", "origin_day", W, H)
        build(g, fr, W)
        out = helper.make_tensor_value_info("feat_dir", TensorProto.FLOAT, ["batch", None])
        m = helper.make_model(helper.make_graph(g.nodes, "direction_features", F.io(W, H), [out], g.inits),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="trendcast")
        m.ir_version = 8
        so = ort.SessionOptions()
        so.log_severity_level = 3
        _SESS[(W, H)] = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    sess = _SESS[(W, H)]
    parts = [sess.run(None, {"window": np.ascontiguousarray(windows[a:a + batch], np.float32),
                             "origin_day": np.asarray(origin_day[a:a + batch], np.float32)})[0]
             for a in range(0, len(windows), batch)]
    return np.concatenate(parts)


# ---------------------------------------------------------------- the classifier

class Direction:
    """A trained direction classifier: booster (the teacher), optionally a neural student distilled
    from it (then the student is what is calibrated and exported), calibration (a, b) and call
    weights."""

    def __init__(self, booster, band: float, floor: float, student=None):
        self.booster = booster
        self.student = student
        self.band, self.floor = band, floor
        self.a = np.ones(3)
        self.b = np.zeros(3)
        self.call_weights = np.ones(3)

    def teacher_margins(self, feats: np.ndarray) -> np.ndarray:
        return self.booster.predict(feats, raw_score=True, num_threads=2).reshape(-1, 3)

    def margins(self, feats: np.ndarray) -> np.ndarray:
        if self.student is not None:
            return self.student.margins(feats)
        return self.teacher_margins(feats)

    def describe(self) -> str:
        trees = f"LightGBM multiclass falling/flat/rising ({self.booster.num_trees()} trees)"
        if self.student is None:
            return trees
        return (f"an MLP ({self.student.hidden} hidden ReLU units, {self.student.size()} weights) distilled from "
                f"{trees}")

    def probs(self, feats: np.ndarray) -> np.ndarray:
        return softmax(self.a * self.margins(feats) + self.b)

    def calls(self, probs: np.ndarray) -> np.ndarray:
        return np.argmax(probs * self.call_weights, axis=1)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def training_set(ex: Export, cutoff: int, rows: int, band: float, floor: float, seed: int = 0):
    """Sampled windows with origin + H <= cutoff that saw a sale: (features, classes, origins)."""
    rng = np.random.default_rng(seed)
    idx = train_rows(ex, cutoff)
    win_units = np.asarray(ex.windows[idx, -28:, 0])
    idx = idx[(win_units > 0).any(1)]
    idx = np.sort(rng.choice(idx, size=min(rows, len(idx)), replace=False))
    win = np.asarray(ex.windows[idx])
    feats = compute(win, ex.origin[idx], ex.window_len, ex.horizon)
    y = realised(np.asarray(ex.targets[idx]), recent_level(win, ex.horizon), band, floor)
    return feats, y, ex.origin[idx]


def synthetic_windows(n: int, W: int, H: int, origins: np.ndarray, seed: int):
    """`n` synthetic (window, future) pairs from a local-trend prior, so that the classifier also
    sees what a real retail log rarely shows: demand that moves smoothly and keeps moving.

    Level: exp(U(log 0.1, log 40)) units/day; 40 % stay level, 60 % start a linear trend 7-28
    days before the origin that multiplies the level by exp(U(-2.5, 1.5)) by the origin and goes on
    past it with a damping factor U(0.8, 1) per day. Half get a weekly profile (amplitude up to
    +-40 %). Counts: negative binomial with shape U(0.5, 30) around the level (lumpy to
    Poisson-like). Price U(1, 10); orders = units / U(1, 8) rounded up on sale days; no clicks (as
    in the logs trained on). The label is the realised class of the synthetic future, never
    asserted."""
    rng = np.random.default_rng(seed)
    T = W + H
    t = np.arange(T, dtype=np.float64)
    level = np.exp(rng.uniform(np.log(0.1), np.log(40), n))[:, None] * np.ones((1, T))
    trending = rng.random(n) < 0.6
    start = W - rng.integers(7, 29, n)
    mult = np.exp(rng.uniform(-2.5, 1.5, n))
    damp = rng.uniform(0.8, 1.0, n)
    for i in np.nonzero(trending)[0]:
        base = level[i, 0]
        slope = base * (mult[i] - 1) / (W - start[i])
        path = base + slope * np.clip(t - start[i], 0, W - start[i])
        k = np.arange(1, H + 1)
        path[W:] = path[W - 1] + slope * np.cumsum(damp[i] ** k)
        level[i] = np.maximum(path, 0.02 * base)
    weekly = rng.random(n) < 0.5
    phase = rng.integers(0, 7, n)
    amp = rng.uniform(0, 0.4, n)
    prof = 1 + amp[:, None] * np.sin(2 * np.pi * (t[None, :] + phase[:, None]) / 7)
    level = np.where(weekly[:, None], level * prof, level)
    shape = rng.uniform(0.5, 30, n)[:, None]
    units = rng.negative_binomial(shape, shape / (shape + level)).astype(np.float32)
    price = rng.uniform(1, 10, n)[:, None]
    per_order = rng.uniform(1, 8, n)[:, None]
    win = np.zeros((n, W, 6), np.float32)
    win[..., 0] = units[:, :W]
    win[..., 1] = units[:, :W] * price
    win[..., 2] = np.ceil(units[:, :W] / per_order)
    return win, units[:, W:], rng.choice(origins, n)


def train(ex: Export, cutoff: int, params: dict, band: float = BAND, floor: float = FLOOR, log=print) -> Direction:
    """Multiclass booster on real windows plus a share of synthetic ones; early stopping on the
    real windows whose targets end in the last `early_stop_days` before the cutoff (a time split,
    as the neural families do)."""
    import lightgbm as lgb

    from .gbdt import booster_params

    X, y, org = training_set(ex, cutoff, params["rows"], band, floor)
    n_syn = int(len(y) * params["synthetic_share"] / (1 - params["synthetic_share"]))
    if n_syn:
        win, fut, sorg = synthetic_windows(n_syn, ex.window_len, ex.horizon, org, params["synthetic_seed"])
        X = np.concatenate([X, compute(win, sorg, ex.window_len, ex.horizon)])
        y = np.concatenate([y, realised(fut, recent_level(win, ex.horizon), band, floor)])
        org = np.concatenate([org, np.full(n_syn, -1)])  # never in the early-stopping split
    split = org + ex.horizon > cutoff - params["early_stop_days"]
    log(f"direction: {len(y)} windows (class shares {np.bincount(y, minlength=3) / len(y)}), "
        f"{split.sum()} for early stopping")
    p = booster_params(params, "multiclass", num_class=3)
    dtr = lgb.Dataset(X[~split], y[~split], free_raw_data=False)
    dva = lgb.Dataset(X[split], y[split], reference=dtr, free_raw_data=False)
    b = lgb.train(p, dtr, num_boost_round=params["max_trees"], valid_sets=[dva],
                  callbacks=[lgb.early_stopping(params["patience"], verbose=False)])
    log(f"direction: best iteration {b.best_iteration} (multi_logloss {b.best_score['valid_0']['multi_logloss']:.4f})")
    b = lgb.train(p, lgb.Dataset(X, y), num_boost_round=max(b.best_iteration, 1))
    model = Direction(b, band, floor)
    if params.get("student"):
        model.student = distil(model, ex, cutoff, (X, y, split), params, log)
    return model


def distil(teacher: Direction, ex: Export, cutoff: int, teacher_set, params: dict, log=print):
    """The student (`student.py`) on the teacher's windows plus `extra_real` more real windows that
    saw a sale and `extra_synthetic` more synthetic ones, all labelled by the teacher."""
    from . import student as S

    sp = dict(S.DEFAULTS, **(params["student"] if isinstance(params["student"], dict) else {}))
    X, y, split = teacher_set
    W, H = ex.window_len, ex.horizon
    rng = np.random.default_rng(sp["seed"] + 1)
    idx = train_rows(ex, cutoff)
    idx = idx[(np.asarray(ex.windows[idx, -28:, 0]) > 0).any(1)]
    idx = np.sort(rng.choice(idx, size=min(sp["extra_real"], len(idx)), replace=False))
    win = np.asarray(ex.windows[idx])
    real_y = realised(np.asarray(ex.targets[idx]), recent_level(win, H), teacher.band, teacher.floor)
    real_split = ex.origin[idx] + H > cutoff - params["early_stop_days"]
    swin, sfut, sorg = synthetic_windows(sp["extra_synthetic"], W, H, ex.origin[idx], params["synthetic_seed"] + 1)
    XS = np.concatenate([X, compute(win, ex.origin[idx], W, H), compute(swin, sorg, W, H)])
    hard = np.concatenate([y, real_y, realised(sfut, recent_level(swin, H), teacher.band, teacher.floor)])
    split_s = np.concatenate([split, real_split, np.zeros(len(sorg), bool)])
    t0 = time.time()
    soft = softmax(teacher.teacher_margins(XS))
    log(f"direction student: {len(XS)} windows labelled by the teacher in {time.time() - t0:.0f}s, "
        f"{split_s.sum()} for early stopping")
    return S.fit(XS, S.targets(soft, hard, sp["hard_weight"]), hard, split_s, sp, log=log)


def calibrate(model: Direction, feats: np.ndarray, y: np.ndarray) -> None:
    """Vector scaling on validation pairs: a, b minimising the log loss of softmax(a z + b); then
    call weights on a grid for the best macro-F1 of argmax(w p)."""
    from scipy.optimize import minimize

    z = model.margins(feats)
    onehot = np.eye(3)[y]

    def nll(theta):
        p = softmax(theta[:3] * z + theta[3:])
        return -np.mean(np.log(np.clip((p * onehot).sum(1), 1e-12, None)))

    res = minimize(nll, np.r_[np.ones(3), np.zeros(3)], method="L-BFGS-B")
    model.a, model.b = res.x[:3], res.x[3:]
    probs = softmax(model.a * z + model.b)
    grid = np.round(np.arange(0.5, 3.01, 0.1), 2)
    best = None
    for wf in grid:
        for wr in grid:
            w = np.array([wf, 1.0, wr])
            f1 = macro_f1(y, np.argmax(probs * w, 1))
            if best is None or f1 > best[0] + 1e-12:
                best = (f1, w)
    model.call_weights = best[1]


def graph(g: G, model: Direction | None, feat_row: str, W: int) -> list:
    """Append the classifier (when given): output `direction` [N, 3], the calibrated probabilities
    of falling, flat, rising. Returns the output names added."""
    from .gbdt import tree_ensemble

    if model is None:
        return []
    feats = build(g, feat_row, W)
    if model.student is not None:
        z = model.student.graph(g, feats)
    else:
        z = tree_ensemble(g, [model.booster], feats, n_targets=3)
    zc = g.op("Add", [g.op("Mul", [z, g.const(model.a.astype(np.float32))]), g.const(model.b.astype(np.float32))])
    g.op("Softmax", [zc], axis=1, out="direction")
    return ["direction"]


def manifest_entry(model: Direction) -> dict:
    return {"name": "direction", "shape": [-1, 3], "classes": list(CLASSES), "flat_band": model.band,
            "level_floor": model.floor, "call_weights": [round(float(w), 2) for w in model.call_weights]}


# ---------------------------------------------------------------- metrics of the calls

def per_class(truth: np.ndarray, pred: np.ndarray) -> dict:
    out = {}
    for k, name in enumerate(CLASSES):
        tp = np.sum((truth == k) & (pred == k))
        prec = tp / max(np.sum(pred == k), 1)
        rec = tp / max(np.sum(truth == k), 1)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        out[name] = (float(prec), float(rec), float(f1))
    return out


def macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([v[2] for v in per_class(truth, pred).values()]))


def brier(p_up: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean((p_up - (truth == RISING)) ** 2))


def reliability(p_up: np.ndarray, truth: np.ndarray, bins: int = 10) -> list:
    """[(bin low, bin high, pairs, mean p_up, observed share rising)] for the reliability plot."""
    out = []
    edges = np.linspace(0, 1, bins + 1)
    k = np.clip(np.digitize(p_up, edges[1:-1]), 0, bins - 1)
    for i in range(bins):
        m = k == i
        if m.any():
            out.append((float(edges[i]), float(edges[i + 1]), int(m.sum()), float(p_up[m].mean()),
                        float((truth[m] == RISING).mean())))
    return out


def hot_precision(score: np.ndarray, eligible: np.ndarray, realised_strength: np.ndarray, origin: np.ndarray,
                  top: int = 20, decile: float = 0.1) -> float:
    """Mean over origins of the share of the ranking's top `top` (eligible pairs by score) that are
    in that origin's top `decile` of realised strength (the SKUs that actually grew most)."""
    shares = []
    for o in np.unique(origin):
        m = origin == o
        s, e, r = score[m], eligible[m], realised_strength[m]
        cut = np.quantile(r, 1 - decile)
        cand = np.nonzero(e)[0]
        if len(cand) == 0:
            shares.append(0.0)
            continue
        pick = cand[np.argsort(-s[cand], kind="stable")[:top]]
        shares.append(float(np.sum(r[pick] >= cut)) / top)
    return float(np.mean(shares))


def rules(windows: np.ndarray, H: int, floor: float = FLOOR) -> dict:
    """Merchandisers' rules as (strength, expected units per day): the last 7 days against the 7
    before, and a 28-day moving average (as the expected level) against the last H days."""
    u = np.maximum(np.asarray(windows[..., 0], np.float64), 0.0)
    last7, prev7, ma28 = u[:, -7:].mean(1), u[:, -14:-7].mean(1), u[:, -28:].mean(1)
    return {"rule: last 7 vs 7 before": (strength(last7, prev7, floor), last7),
            "rule: MA28 vs last 14": (strength(ma28, recent_level(windows, H), floor), ma28)}


def expected_level(q: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
    """Expected units per day over the horizon: the mean output, else Swanson's 0.3/0.4/0.3 mix
    of q0.1/q0.5/q0.9 (never the median alone)."""
    if mean is not None:
        return np.maximum(np.asarray(mean, np.float64), 0).mean(1)
    return (np.maximum(np.asarray(q, np.float64), 0) @ np.array([0.3, 0.4, 0.3])).mean(1)


def normal_p_up(q: np.ndarray, diff: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """P(horizon mean - recent > margin) under a normal with the per-day spread of the outer
    quantiles, days independent (the engine's fallback for a model without a classifier)."""
    from scipy.stats import norm

    H = q.shape[1]
    sigma = np.maximum(q[..., 2] - q[..., 0], 0).mean(1) / (norm.ppf(0.9) - norm.ppf(0.1)) / np.sqrt(H)
    excess = diff - margin
    with np.errstate(divide="ignore", invalid="ignore"):
        p = norm.cdf(excess / sigma)
    return np.where(sigma > 1e-9, p, (excess > 0).astype(float))


def forecaster_calls(q, mean, recent, probs=None, weights=None, band: float = BAND, floor: float = FLOOR):
    """A forecaster's calls as the engine makes them: (class, p_up, strength, expected units)."""
    level = expected_level(q, mean)
    s = strength(level, recent, floor)
    s = np.where(np.abs(level - recent) <= 1e-5 * np.maximum(recent, 1.0), 0.0, s)
    if probs is not None:
        pred = np.argmax(probs * (np.ones(3) if weights is None else np.asarray(weights)), 1)
        p_up = probs[:, RISING]
    else:
        pred = classify(s, band)
        p_up = normal_p_up(q, level - recent, band * np.maximum(recent, floor))
    return pred, p_up, s, level * q.shape[1]


def scored_calls(y, q, mean, recent, origin, probs=None, weights=None, min_volume: float = 5.0) -> dict:
    """Call metrics of one forecaster on the pairs (docs/TRENDS.md)."""
    pred, p_up, s, units = forecaster_calls(q, mean, recent, probs, weights)
    truth = realised(y, recent)
    rs = strength(np.asarray(y, np.float64).mean(1), recent)
    # the engine's hot ranking: SKUs called rising with enough expected volume, by p_up
    return call_metrics(truth, pred, p_up, p_up, (pred == RISING) & (units >= min_volume), rs, origin)


def call_metrics(truth: np.ndarray, pred: np.ndarray, p_up: np.ndarray | None, score: np.ndarray,
                 eligible: np.ndarray, realised_strength: np.ndarray, origin: np.ndarray) -> dict:
    pc = per_class(truth, pred)
    m = {f"{name}_{k}": v[i] for name, v in pc.items() for i, k in enumerate(("precision", "recall", "f1"))}
    m["macro_f1"] = float(np.mean([v[2] for v in pc.values()]))
    m["brier"] = brier(p_up, truth) if p_up is not None else float("nan")
    m["hot_p20"] = hot_precision(score, eligible, realised_strength, origin)
    return m


def rule_report(es_eval, es_val) -> dict:
    """The yardsticks of the calls on the eval pairs: the merchandisers' rules and climatology
    (always the share rising on the validation origins)."""
    recent = es_eval.recent
    truth = realised(es_eval.actuals, recent)
    rs = strength(np.asarray(es_eval.actuals, np.float64).mean(1), recent)
    H = es_eval.actuals.shape[1]
    out = {}
    for name, (s, level) in rules(es_eval.windows, H).items():
        call = classify(s)
        out[name] = call_metrics(truth, call, None, s, (call == RISING) & (level * H >= 5.0), rs, es_eval.origin)
    base = float((realised(es_val.actuals, es_val.recent) == RISING).mean())
    return {"rules": out, "base_rate_valid": base, "climatology_brier": brier(np.full(len(truth), base), truth)}
