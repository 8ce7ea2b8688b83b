"""Model family B: an MLP over the whole window (feat_row of the feature graph), trained in numpy.

    x  = clip((feat_row - mu) / sd, -10, 10)
    h1 = dropout(relu(x W1 + b1)),  h2 = dropout(relu(h1 W2 + b2)),  o = h2 W3 + b3   ([3H + 1])
    scaled quantiles: m - softplus(o_lo), m, m + softplus(o_hi) with m = o[:H]  (non-crossing)
    p_up = sigmoid(o[3H])
Loss: mean pinball loss of the 3 quantiles on units/scale + bce_weight * BCE(p_up, up), where
up = mean of the H target days > mean units of the last 14 window days (the report's definition).
AdamW (decoupled L2 weight decay), dropout, early stopping on a time-split validation set
(the latest origins before the cutoff). Hand-written backprop; the ONNX graph is the same forward.
"""

from __future__ import annotations

import time

import numpy as np

from . import features as F
from .data import Export, train_rows
from .features import G
from .onnx_out import assemble, mean_tail, quantile_tail

TAUS = np.array([0.1, 0.5, 0.9], np.float32)
DEFAULTS = dict(hidden=256, dropout=0.2, weight_decay=1e-4, lr=3e-4, batch=512, epochs=20, patience=4,
                rows=1_000_000, bce_weight=0.2, valid_days=21, seed=0, weight="none", weight_cap=50.0)


def softplus(x):
    return np.logaddexp(0, x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def row_weights(scale: np.ndarray, win: np.ndarray, weight: str, cap: float) -> np.ndarray:
    """Pinball-loss weight per window, normalised to mean 1 and capped at `cap` times the mean:
    none; the window's scale ('scale': the loss in units, which is what WQL sums, since pinball
    of y/s times s is pinball of y), its square root; or the last-28-day revenue as the GBDT's
    ('rev', 'sqrt_rev')."""
    if weight == "none":
        return np.ones(len(scale), np.float32)
    if weight in ("scale", "sqrt_scale"):
        w = scale.reshape(-1).astype(np.float64)
        w = np.sqrt(w) if weight == "sqrt_scale" else w
    else:
        from .gbdt import row_weights as revenue_weights

        w = revenue_weights(win, weight).astype(np.float64)
    w = np.minimum(w / w.mean(), cap)
    return (w / w.mean()).astype(np.float32)


def make_data(ex: Export, cutoff: int, rows: int, seed: int = 0, min_origin=None, weight: str = "none",
              weight_cap: float = 50.0):
    rng = np.random.default_rng(seed)
    idx = train_rows(ex, cutoff, min_origin)
    idx = np.sort(rng.choice(idx, size=min(rows, len(idx)), replace=False))
    W, H = ex.window_len, ex.horizon
    win = np.asarray(ex.windows[idx])
    scale, _, fr = F.compute(win, ex.origin[idx], W, H)
    tgt = np.asarray(ex.targets[idx])
    y = (tgt / scale).astype(np.float32)
    last14 = np.maximum(win[:, -14:, 0], 0).mean(1)
    up = (tgt.mean(1) > last14).astype(np.float32)
    w = row_weights(scale, win, weight, weight_cap)
    return fr.astype(np.float32), y, up, ex.origin[idx], w


class MLP:
    def __init__(self, n_in: int, H: int, hidden: int, seed: int = 0):
        r = np.random.default_rng(seed)
        he = lambda a, b: (r.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32)  # noqa: E731
        self.H = H
        self.p = {"W1": he(n_in, hidden), "b1": np.zeros(hidden, np.float32),
                  "W2": he(hidden, hidden), "b2": np.zeros(hidden, np.float32),
                  "W3": (he(hidden, 3 * H + 1) * 0.1), "b3": np.zeros(3 * H + 1, np.float32)}
        self.mu = np.zeros(n_in, np.float32)
        self.sd = np.ones(n_in, np.float32)

    def norm(self, x):
        return np.clip((x - self.mu) / self.sd, -10, 10).astype(np.float32)

    def forward(self, x, drop=0.0, rng=None):
        return self.head_forward(self.norm(x), drop, rng)

    def head_forward(self, xn, drop=0.0, rng=None):
        """The two hidden layers and the output layer on an already normalised input."""
        p = self.p
        z1 = xn @ p["W1"] + p["b1"]
        a1 = np.maximum(z1, 0)
        m1 = (rng.random(a1.shape) >= drop).astype(np.float32) / (1 - drop) if drop else None
        d1 = a1 * m1 if drop else a1
        z2 = d1 @ p["W2"] + p["b2"]
        a2 = np.maximum(z2, 0)
        m2 = (rng.random(a2.shape) >= drop).astype(np.float32) / (1 - drop) if drop else None
        d2 = a2 * m2 if drop else a2
        o = d2 @ p["W3"] + p["b3"]
        return o, (xn, z1, d1, m1, z2, d2, m2)

    def heads(self, o):
        H = self.H
        m = o[:, :H]
        q = np.stack([m - softplus(o[:, H:2 * H]), m, m + softplus(o[:, 2 * H:3 * H])], -1)
        return q.astype(np.float32), sigmoid(o[:, 3 * H]).astype(np.float32)

    def loss_grad(self, o, y, up, bce_w, w=None):
        """Pinball loss weighted per row by `w` (mean about 1; None: unweighted) + BCE."""
        H = self.H
        q, pu = self.heads(o)
        e = y[..., None] - q  # [B, H, 3]
        w = np.ones(len(y), np.float32) if w is None else w
        loss = np.mean(w[:, None] * np.sum(np.maximum(TAUS * e, (TAUS - 1) * e), -1))
        pc = np.clip(pu, 1e-7, 1 - 1e-7)
        bce = -np.mean(up * np.log(pc) + (1 - up) * np.log(1 - pc))
        B = len(y)
        dq = ((e < 0).astype(np.float32) - TAUS) * (w[:, None, None] / (B * H))  # d loss / d q
        do = np.zeros_like(o)
        do[:, :H] = dq.sum(-1)
        do[:, H:2 * H] = -dq[..., 0] * sigmoid(o[:, H:2 * H])
        do[:, 2 * H:3 * H] = dq[..., 2] * sigmoid(o[:, 2 * H:3 * H])
        do[:, 3 * H] = bce_w * (pu - up) / B
        return loss + bce_w * bce, do

    def backward(self, cache, do):
        return self.head_backward(cache, do)[0]

    def head_backward(self, cache, do):
        """Gradients of the head's parameters and of its input."""
        p = self.p
        xn, z1, d1, m1, z2, d2, m2 = cache
        g = {"W3": d2.T @ do, "b3": do.sum(0)}
        dd2 = do @ p["W3"].T
        da2 = dd2 * m2 if m2 is not None else dd2
        dz2 = da2 * (z2 > 0)
        g["W2"], g["b2"] = d1.T @ dz2, dz2.sum(0)
        dd1 = dz2 @ p["W2"].T
        da1 = dd1 * m1 if m1 is not None else dd1
        dz1 = da1 * (z1 > 0)
        g["W1"], g["b1"] = xn.T @ dz1, dz1.sum(0)
        return g, dz1 @ p["W1"].T

    def predict_scaled(self, x, batch=65536):
        qs, ps = [], []
        for a in range(0, len(x), batch):
            o, _ = self.forward(x[a:a + batch])
            q, pu = self.heads(o)
            qs.append(q)
            ps.append(pu)
        return np.concatenate(qs), np.concatenate(ps)

    def eval_loss(self, x, y, up, bce_w, w=None):
        o, _ = self.forward(x)
        return self.loss_grad(o, y, up, bce_w, w)[0]


def train(x, y, up, origin, cutoff: int, H: int, params: dict, log=print, w=None) -> MLP:
    """Early stopping on rows whose target ends in the last `valid_days` before the cutoff; `w`
    weighs each row's pinball loss, in training and in the early-stopping loss alike."""
    w = np.ones(len(x), np.float32) if w is None else w
    rng = np.random.default_rng(params["seed"])
    va = origin + H > cutoff - params["valid_days"]
    if va.sum() < 100 or (~va).sum() < 100:  # tiny data: hold out the latest 10% of rows instead
        va = origin >= np.quantile(origin, 0.9)
    tr = ~va
    if params.get("arch", "mlp") == "tcn":
        from . import sequence

        n_common = len(F.feature_names(28, H)[0]) - 5  # feat_row = [units/s (W), common, dow one-hot, holidays (H)]
        net = sequence.make(x.shape[1], H, params, W=x.shape[1] - n_common - 7 - H)
    else:
        net = MLP(x.shape[1], H, params["hidden"], params["seed"])
    net.mu = x[tr].mean(0).astype(np.float32)
    net.sd = F.input_spread(x[tr])
    opt_m = {k: np.zeros_like(v) for k, v in net.p.items()}
    opt_v = {k: np.zeros_like(v) for k, v in net.p.items()}
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    best, best_p, bad = np.inf, None, 0
    xt, yt, ut, wt = x[tr], y[tr], up[tr], w[tr]
    xv, yv, uv, wv = x[va], y[va], up[va], w[va]
    for ep in range(params["epochs"]):
        t0 = time.time()
        perm = rng.permutation(len(xt))
        tl = []
        for a in range(0, len(perm), params["batch"]):
            bi = perm[a:a + params["batch"]]
            o, cache = net.forward(xt[bi], params["dropout"], rng)
            loss, do = net.loss_grad(o, yt[bi], ut[bi], params["bce_weight"], wt[bi])
            g = net.backward(cache, do)
            step += 1
            for k in net.p:
                opt_m[k] = b1 * opt_m[k] + (1 - b1) * g[k]
                opt_v[k] = b2 * opt_v[k] + (1 - b2) * g[k] * g[k]
                mh = opt_m[k] / (1 - b1 ** step)
                vh = opt_v[k] / (1 - b2 ** step)
                upd = mh / (np.sqrt(vh) + eps)
                if k[0] in "WK":  # weight matrices and convolution kernels; not biases
                    upd = upd + params["weight_decay"] * net.p[k]
                net.p[k] = (net.p[k] - params["lr"] * upd).astype(np.float32)
            tl.append(loss)
        vl = net.eval_loss(xv, yv, uv, params["bce_weight"], wv)
        log(f"  {params.get('arch', 'mlp')} epoch {ep + 1:2d}/{params['epochs']}  train {np.mean(tl):.4f}  valid {vl:.4f}  "
            f"({time.time() - t0:.1f}s)")
        if vl < best - 1e-4:
            best, best_p, bad = vl, {k: v.copy() for k, v in net.p.items()}, 0
        else:
            bad += 1
            if bad >= params["patience"]:
                log(f"  early stop at epoch {ep + 1}, best valid {best:.4f}")
                break
    if best_p is not None:
        net.p = best_p
    return net


def normalised_input(g: G, net: MLP, fr: str) -> str:
    """In-graph twin of MLP.norm on feat_row."""
    x = g.op("Div", [g.op("Sub", [fr, g.const(net.mu)]), g.const(net.sd)])
    return g.op("Clip", [x, g.const(np.float32(-10)), g.const(np.float32(10))])


def head_graph(g: G, net: MLP, z: str, scale: str, H: int, widen_lo: float, widen_hi: float, mean_w) -> None:
    """In-graph twin of head_forward + heads on the head input `z`: the `quantiles`, `mean` and
    `p_up` outputs."""
    i64 = np.int64
    p = net.p
    h1 = g.op("Relu", [g.op("Add", [g.op("MatMul", [z, g.const(p["W1"])]), g.const(p["b1"])])])
    h2 = g.op("Relu", [g.op("Add", [g.op("MatMul", [h1, g.const(p["W2"])]), g.const(p["b2"])])])
    o = g.op("Add", [g.op("MatMul", [h2, g.const(p["W3"])]), g.const(p["b3"])])

    def sl(a, b):
        return g.op("Slice", [o, g.const([a], i64), g.const([b], i64), g.const([1], i64)])

    m, lo, hi = sl(0, H), g.op("Softplus", [sl(H, 2 * H)]), g.op("Softplus", [sl(2 * H, 3 * H)])
    u = lambda t: g.op("Unsqueeze", [t, g.const([2], i64)])  # noqa: E731
    q = g.op("Concat", [u(g.op("Sub", [m, lo])), u(m), u(g.op("Add", [m, hi]))], axis=2)
    mean_tail(g, quantile_tail(g, q, scale, H, widen_lo, widen_hi), mean_w)
    g.op("Squeeze", [g.op("Sigmoid", [sl(3 * H, 3 * H + 1)]), g.const([1], i64)], out="p_up")


def export(net: MLP, W: int, H: int, widen_lo: float, widen_hi: float, name: str, mean_w=(0.0, 1.0, 0.0),
           direction=None):
    """With a direction classifier the graph's outputs are quantiles, mean and `direction` (the
    MLP's own p_up head stays a training aid); without one, its p_up head is an output."""
    from . import direction as D

    g = G()
    scale, _, fr = F.build_features(g, "window", "origin_day", W, H)
    head_graph(g, net, normalised_input(g, net, fr), scale, H, widen_lo, widen_hi, mean_w)
    extra = D.graph(g, direction, fr, W)
    return assemble(g, W, H, ["quantiles", "mean", *(extra or ["p_up"])], name, opsets_extra=[("ai.onnx.ml", 3)])
