"""Model family B, sequence variant: a temporal convolutional network (TCN) over the window's days
in front of the MLP head of `neural.py`, trained in numpy with hand-written backprop.

Per window day t (t = 0..W-1, oldest first) the encoder sees 5 channels, all derived from the
feature graph's `feat_row` (so serving computes them from the same in-graph features):

    s_t = min(u_t, 20), log(1 + u_t), [u_t > 0], sin(2 pi dow_t / 7), cos(2 pi dow_t / 7)

with u_t = units_t / scale and dow_t = origin_dow + t - W (weekday phase; Online Retail does not
trade on Saturdays). Four causal dilated convolutions (kernel 3, dilations 1, 2, 4, 8: receptive
field 31 >= 28 days), ReLU, residual connections from layer 2 on:

    c_l[t] = relu(sum_j x_l[t - j d_l] K_l[j] + b_l)   (zero before the window's first day)

The encoding [c_4 at the last day, mean over days of c_4] is concatenated with the normalised
`feat_row` and goes through the MLP head (2 hidden layers, dropout, the same quantile / direction
heads and loss as `neural.MLP`). The ONNX export builds the same convolutions from Pad/Slice/
Concat/MatMul, in the same tap order as the numpy code.
"""

from __future__ import annotations

import numpy as np

from . import features as F
from .features import G
from . import neural
from .neural import MLP
from .onnx_out import assemble

# neural.DEFAULTS with the encoder; the head and the training loop are neural.py's
DEFAULTS = dict(neural.DEFAULTS, arch="tcn", channels=32, rows=150_000)  # all rows: ~25 min per fit
CHANNELS_IN = 5
KERNEL = 3
DILATIONS = (1, 2, 4, 8)
UNITS_CAP = 20.0


def sequence_inputs(fr: np.ndarray, W: int, odow_col: int) -> np.ndarray:
    """[N, W, 5] encoder channels from feat_row (see the module doc)."""
    u = fr[:, :W]
    t = np.arange(W, dtype=np.float32)[None, :] - W
    phase = np.float32(2 * np.pi / 7) * (fr[:, odow_col:odow_col + 1] + t)
    ch = [np.minimum(u, UNITS_CAP), np.log1p(np.maximum(u, 0)), (u > 0).astype(np.float32), np.sin(phase),
          np.cos(phase)]
    return np.stack(ch, -1).astype(np.float32)


def shift(x: np.ndarray, s: int) -> np.ndarray:
    """out[:, t] = x[:, t - s], zero for t < s."""
    if s == 0:
        return x
    out = np.zeros_like(x)
    out[:, s:] = x[:, :-s]
    return out


def unshift(g: np.ndarray, s: int) -> np.ndarray:
    """Adjoint of shift: out[:, t] = g[:, t + s], zero for t >= T - s."""
    if s == 0:
        return g
    out = np.zeros_like(g)
    out[:, :-s] = g[:, s:]
    return out


class TCN(MLP):
    """TCN encoder + the MLP head; `forward`/`backward` follow MLP's interface so `neural.train`
    (AdamW, dropout, early stopping) trains it unchanged."""

    def __init__(self, n_in: int, H: int, hidden: int, seed: int = 0, W: int = 28, channels: int = 32,
                 odow_col: int | None = None):
        super().__init__(n_in + 2 * channels, H, hidden, seed)
        r = np.random.default_rng(seed + 1)
        self.W, self.C, self.n_in = W, channels, n_in
        self.odow_col = odow_col if odow_col is not None else odow_column(W, H)
        cin = CHANNELS_IN
        for i, _ in enumerate(DILATIONS):
            fan = KERNEL * cin
            self.p[f"K{i}"] = (r.standard_normal((fan, channels)) * np.sqrt(2.0 / fan)).astype(np.float32)
            self.p[f"c{i}"] = np.zeros(channels, np.float32)
            cin = channels
        self.mu = np.zeros(n_in, np.float32)
        self.sd = np.ones(n_in, np.float32)

    def encode(self, x):
        seq = sequence_inputs(x, self.W, self.odow_col)
        caches, h = [], seq
        for i, d in enumerate(DILATIONS):
            cols = np.concatenate([shift(h, j * d) for j in range(KERNEL)], -1)  # [B, T, 3 Cin]
            z = cols @ self.p[f"K{i}"] + self.p[f"c{i}"]
            a = np.maximum(z, 0)
            out = a + h if i > 0 else a
            caches.append((cols, z, h.shape[-1]))
            h = out
        enc = np.concatenate([h[:, -1, :], h.mean(1)], -1)
        return enc, caches

    def forward(self, x, drop=0.0, rng=None):
        enc, ccache = self.encode(x)
        o, head = self.head_forward(np.concatenate([enc, self.norm(x)], -1).astype(np.float32), drop, rng)
        return o, (head, ccache)

    def backward(self, cache, do):
        head, ccache = cache
        g, dz_in = self.head_backward(head, do)
        C, T = self.C, self.W
        d_enc = dz_in[:, :2 * C]
        dh = np.zeros((len(do), T, C), np.float32)
        dh[:, -1, :] += d_enc[:, :C]
        dh += d_enc[:, None, C:] / T
        for i in range(len(DILATIONS) - 1, -1, -1):
            cols, z, cin = ccache[i]
            dz = dh * (z > 0)
            g[f"K{i}"] = cols.reshape(-1, cols.shape[-1]).T @ dz.reshape(-1, C)
            g[f"c{i}"] = dz.sum((0, 1))
            dcols = dz @ self.p[f"K{i}"].T  # [B, T, 3 Cin]
            dx = sum(unshift(dcols[..., j * cin:(j + 1) * cin], j * DILATIONS[i]) for j in range(KERNEL))
            dh = dx + dh if i > 0 else dx  # the residual path from layer 2 on
        return g


def odow_column(W: int, H: int) -> int:
    """Index of `origin_dow` in feat_row."""
    return F.feature_names(W, H)[1].index("origin_dow")


def make(n_in: int, H: int, params: dict, W: int) -> TCN:
    return TCN(n_in, H, params["hidden"], params["seed"], W=W, channels=params.get("channels", 32),
               odow_col=odow_column(W, H))


def export(net: TCN, W: int, H: int, widen_lo: float, widen_hi: float, name: str, mean_w=(0.0, 1.0, 0.0),
           direction=None):
    from . import direction as D

    g = G()
    i64, f32 = np.int64, np.float32
    scale, _, fr = F.build_features(g, "window", "origin_day", W, H)

    def sl(x, a, b, axis=1):
        return g.op("Slice", [x, g.const([a], i64), g.const([b], i64), g.const([axis], i64)])

    u = sl(fr, 0, W)  # [N, W]
    odow = sl(fr, net.odow_col, net.odow_col + 1)  # [N, 1]
    phase = g.op("Mul", [g.op("Add", [odow, g.const((np.arange(W, dtype=f32) - W).reshape(1, W))]),
                         g.const(f32(2 * np.pi / 7))])
    ch = [g.op("Min", [u, g.const(f32(UNITS_CAP))]), g.op("Log", [g.op("Add", [g.op("Relu", [u]), g.const(f32(1))])]),
          g.op("Cast", [g.op("Greater", [u, g.const(f32(0))])], to=1), g.op("Sin", [phase]), g.op("Cos", [phase])]
    h = g.op("Concat", [g.op("Unsqueeze", [c, g.const([2], i64)]) for c in ch], axis=2)  # [N, W, 5]
    for i, d in enumerate(DILATIONS):
        taps = [h] + [sl(g.op("Pad", [h, g.const([0, j * d, 0, 0, 0, 0], i64)]), 0, W) for j in range(1, KERNEL)]
        cols = g.op("Concat", taps, axis=2)
        a = g.op("Relu", [g.op("Add", [g.op("MatMul", [cols, g.const(net.p[f"K{i}"])]), g.const(net.p[f"c{i}"])])])
        h = g.op("Add", [a, h]) if i > 0 else a
    last = g.op("Squeeze", [sl(h, W - 1, W), g.const([1], i64)])
    avg = g.op("ReduceMean", [h, g.const([1], i64)], keepdims=0)
    z = g.op("Concat", [last, avg, neural.normalised_input(g, net, fr)], axis=1)
    neural.head_graph(g, net, z, scale, H, widen_lo, widen_hi, mean_w)
    extra = D.graph(g, direction, fr, W)
    return assemble(g, W, H, ["quantiles", "mean", *(extra or ["p_up"])], name, opsets_extra=[("ai.onnx.ml", 3)])
