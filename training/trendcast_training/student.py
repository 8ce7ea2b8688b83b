"""The direction student: a small MLP distilled from the tree classifier of `direction.py`, so that
every shipped graph can carry its trend calls at stream speed (issue #14).

Why: the tree classifier (over a thousand LightGBM trees) alone scored about 26,000 windows/s in
onnxruntime on one core, a quarter of the 100,000 windows/s the whole graph must reach. A small
softmax MLP costs a few microseconds per window, but trained on the realised classes alone it lost
0.027 macro-F1 to the trees on the validation origins (training/README.md). Distillation closes
most of that gap: the teacher's probabilities are far less noisy targets than the realised classes,
and they exist for every window, so the student learns from many more windows than the teacher
was fitted on (the teacher's rows, more real windows and more synthetic local-trend windows).

Loss: cross-entropy against the target distribution (1 - hard_weight) * teacher + hard_weight *
one-hot(realised class). Adam with decoupled
weight decay, early stopping on the log loss of the realised classes of the time-split windows
(the same split the teacher early-stops on). The student's margins are what `direction.calibrate`
scales and what the ONNX graph exports.
"""

from __future__ import annotations

import time

import numpy as np

from .features import G, input_spread

DEFAULTS = dict(hidden=64, lr=1e-3, batch=1024, epochs=40, patience=4, weight_decay=1e-4, extra_real=500_000,
                extra_synthetic=200_000, hard_weight=0.3, seed=0)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


class Student:
    """x -> clip((x - mu) / sd, -10, 10) -> ReLU(x W1 + b1) -> W2 + b2: three class margins."""

    def __init__(self, n_in: int, hidden: int, seed: int):
        r = np.random.default_rng(seed)
        self.hidden = hidden
        self.p = {"W1": (r.standard_normal((n_in, hidden)) * np.sqrt(2 / n_in)).astype(np.float32),
                  "b1": np.zeros(hidden, np.float32),
                  "W2": (r.standard_normal((hidden, 3)) * 0.1).astype(np.float32),
                  "b2": np.zeros(3, np.float32)}
        self.mu = np.zeros(n_in, np.float32)
        self.sd = np.ones(n_in, np.float32)

    def size(self) -> int:
        return int(sum(v.size for v in self.p.values()))

    def norm(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mu) / self.sd, -10, 10).astype(np.float32)

    def margins(self, x: np.ndarray, batch: int = 262_144) -> np.ndarray:
        out = []
        for a in range(0, len(x), batch):
            h = np.maximum(self.norm(x[a:a + batch]) @ self.p["W1"] + self.p["b1"], 0)
            out.append(h @ self.p["W2"] + self.p["b2"])
        return np.concatenate(out).astype(np.float64)

    def graph(self, g: G, feats: str) -> str:
        """In-graph twin of `margins` on the direction features: returns the margins' name."""
        f32 = np.float32
        xn = g.op("Clip", [g.op("Div", [g.op("Sub", [feats, g.const(self.mu)]), g.const(self.sd)]),
                           g.const(f32(-10)), g.const(f32(10))])
        h = g.op("Relu", [g.op("Add", [g.op("MatMul", [xn, g.const(self.p["W1"])]), g.const(self.p["b1"])])])
        return g.op("Add", [g.op("MatMul", [h, g.const(self.p["W2"])]), g.const(self.p["b2"])])


def targets(teacher_probs: np.ndarray, hard: np.ndarray, hard_weight: float) -> np.ndarray:
    """The training distribution per row: the teacher's probabilities mixed with the one-hot
    realised class."""
    t = np.asarray(teacher_probs, np.float32)
    return (1 - hard_weight) * t + hard_weight * np.eye(3, dtype=np.float32)[hard]


def fit(X: np.ndarray, target: np.ndarray, hard: np.ndarray, split: np.ndarray, params: dict, log=print) -> Student:
    """Train on rows ~split, early-stop on the realised classes of rows `split` (all of which must
    have one)."""
    rng = np.random.default_rng(params["seed"])
    net = Student(X.shape[1], params["hidden"], params["seed"])
    tr = ~split
    net.mu = X[tr].mean(0).astype(np.float32)
    net.sd = input_spread(X[tr])
    xt, tt = net.norm(X[tr]), target[tr]
    xv, yv = X[split], hard[split]
    m = {k: np.zeros_like(v) for k, v in net.p.items()}
    v = {k: np.zeros_like(v) for k, v in net.p.items()}
    step, best, best_p, bad = 0, np.inf, None, 0
    for ep in range(params["epochs"]):
        t0 = time.time()
        perm = rng.permutation(len(xt))
        for a in range(0, len(perm), params["batch"]):
            bi = perm[a:a + params["batch"]]
            z1 = xt[bi] @ net.p["W1"] + net.p["b1"]
            h = np.maximum(z1, 0)
            do = (softmax(h @ net.p["W2"] + net.p["b2"]) - tt[bi]) / len(bi)
            g = {"W2": h.T @ do, "b2": do.sum(0)}
            dz1 = (do @ net.p["W2"].T) * (z1 > 0)
            g["W1"], g["b1"] = xt[bi].T @ dz1, dz1.sum(0)
            step += 1
            for k in net.p:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k]
                upd = (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
                if k[0] == "W":
                    upd = upd + params["weight_decay"] * net.p[k]
                net.p[k] = (net.p[k] - params["lr"] * upd).astype(np.float32)
        p = softmax(net.margins(xv))
        vl = float(-np.mean(np.log(np.clip(p[np.arange(len(yv)), yv], 1e-12, None))))
        log(f"  direction student epoch {ep + 1}: early-stopping log loss {vl:.4f} ({time.time() - t0:.1f}s)")
        if vl < best - 1e-4:
            best, best_p, bad = vl, {k: w.copy() for k, w in net.p.items()}, 0
        else:
            bad += 1
            if bad >= params["patience"]:
                break
    net.p = best_p if best_p is not None else net.p
    return net
