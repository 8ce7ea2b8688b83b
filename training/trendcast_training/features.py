"""Feature extraction as an ONNX graph: the same graph makes the training matrices (run through
onnxruntime) and is the front half of every exported model, so training and serving features are
bit-identical. Inputs: `window` [N, W, 6] raw engine features, `origin_day` [N] (days since
1970-01-01 of the first forecast day).

Outputs
* `scale` [N, 1]: per-SKU scale s = max(mean_t max(0, units_t), 1/W); every unit feature and the
  model's targets are divided by s, forecasts multiplied back.
* `feat_h` [N*H, F_H]: one row per (window, horizon step) for the GBDT (horizon, target weekday,
  holiday and same-weekday lags are per step).
* `feat_row` [N, F_R]: one row per window for the neural model.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .calendar import holiday_table

OPSET = 18


def input_spread(x: np.ndarray) -> np.ndarray:
    """Per-column divisor that standardises a neural model's inputs: the training std, floored at
    1e-3. A column that never varied in training (std < 1e-6: the click features of a sales-only
    log, a holiday flag no training day had) gets 1e30 instead, so it reads as 0 whatever serving
    sends, exactly as in training. Without that, a window with clicks put (clicks - 0) / 1e-3,
    clipped to 10, into inputs the network had only ever seen at 0, and a model trained on Online
    Retail called every planted flat series falling (tests/planted_trends.rs)."""
    sd = x.std(0)
    return np.where(sd < 1e-6, np.float32(1e30), np.maximum(sd, 1e-3)).astype(np.float32)


class G:
    """Tiny helper to append nodes / constants with unique names."""

    def __init__(self, prefix: str = "fx"):
        self.nodes, self.inits, self.n, self.p = [], [], 0, prefix

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{self.p}_{hint}_{self.n}"

    def const(self, value, dtype=np.float32, hint="c") -> str:
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def op(self, op_type: str, inputs, hint=None, out=None, **attrs) -> str:
        out = out or self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _feature_names(W: int, H: int):
    common = ([f"un_lag{k}" for k in range(1, 15)] + ["un_lag21", "un_lag28", "mean7", "mean14", "mean28",
              "std28", "max28", "nz7", "nz28", "days_since_sale", "log_scale", "log_price", "orders28",
              "log_units_per_order", "log_views7", "log_views28", "log_atc28", "log_wish28", "origin_dow"])
    per_h = ["h", "target_dow", "target_holiday", "snaive", "same_dow_mean"]
    row = ([f"un_{t}" for t in range(W)] + common + [f"dow_{k}" for k in range(7)]
           + [f"hol_{h}" for h in range(H)])
    return common, per_h, row


def feature_names(W: int, H: int):
    common, per_h, row = _feature_names(W, H)
    return common + per_h, row


def build_features(g: G, window: str, origin_day: str, W: int, H: int):
    """Append the feature nodes to `g`; returns (scale, feat_h, feat_row) tensor names."""
    assert W >= 28, "features use lags up to 28 days"
    f32 = np.float32
    i64 = np.int64

    def col(k):
        x = g.op("Gather", [window, g.const([k], i64)], axis=2)
        return g.op("Squeeze", [x, g.const([2], i64)])  # [N, W]

    def sl(x, a, b):  # x[:, a:b]
        return g.op("Slice", [x, g.const([a], i64), g.const([b], i64), g.const([1], i64)])

    def mean(x):
        return g.op("ReduceMean", [x, g.const([1], i64)], keepdims=1)

    def sum_(x):
        return g.op("ReduceSum", [x, g.const([1], i64)], keepdims=1)

    units = g.op("Relu", [col(0)])
    rev, orders, views, atc, wish = (col(k) for k in range(1, 6))
    scale = g.op("Max", [mean(units), g.const(1.0 / W)], out="scale")
    un = g.op("Div", [units, scale])  # [N, W]

    lags = sl(un, W - 14, W)  # positions W-14..W-1 = lag 14..1
    lags = g.op("Gather", [lags, g.const(np.arange(13, -1, -1), i64)], axis=1)  # lag1..lag14
    lag21, lag28 = sl(un, W - 21, W - 20), sl(un, W - 28, W - 27)
    un7, un14, un28 = sl(un, W - 7, W), sl(un, W - 14, W), sl(un, W - 28, W)
    m28 = mean(un28)
    d28 = g.op("Sub", [un28, m28])
    std28 = g.op("Sqrt", [mean(g.op("Mul", [d28, d28]))])
    max28 = g.op("ReduceMax", [un28, g.const([1], i64)], keepdims=1)
    pos = g.op("Cast", [g.op("Greater", [units, g.const(0.0)])], to=TensorProto.FLOAT)
    nz7, nz28 = mean(sl(pos, W - 7, W)), mean(sl(pos, W - 28, W))
    age = g.const((W - 1 - np.arange(W)).reshape(1, W), f32)
    since = g.op("ReduceMin", [g.op("Where", [g.op("Greater", [units, g.const(0.0)]), age, g.const(float(W))]),
                              g.const([1], i64)], keepdims=1)
    su = sum_(units)
    one = g.const(1.0)

    def log1p(x):
        return g.op("Log", [g.op("Add", [g.op("Relu", [x]), one])])

    log_scale = g.op("Log", [scale])
    log_price = log1p(g.op("Div", [sum_(rev), g.op("Max", [su, one])]))
    so = sum_(orders)
    orders28 = mean(sl(orders, W - 28, W))
    log_upo = log1p(g.op("Div", [su, g.op("Max", [so, one])]))
    lv7, lv28 = log1p(sum_(sl(views, W - 7, W))), log1p(sum_(sl(views, W - 28, W)))
    la28, lw28 = log1p(sum_(sl(atc, W - 28, W))), log1p(sum_(sl(wish, W - 28, W)))
    d = g.op("Unsqueeze", [origin_day, g.const([1], i64)])  # [N, 1]
    odow = g.op("Mod", [g.op("Add", [d, g.const(3.0)]), g.const(7.0)], fmod=1)
    common = g.op("Concat", [lags, lag21, lag28, mean(un7), mean(un14), m28, std28, max28, nz7, nz28, since,
                             log_scale, log_price, orders28, log_upo, lv7, lv28, la28, lw28, odow], axis=1)

    # per horizon step h (target day = origin + h)
    hs = np.arange(H, dtype=f32).reshape(1, H)
    tday = g.op("Add", [d, g.const(hs)])  # [N, H]
    tdow = g.op("Mod", [g.op("Add", [tday, g.const(3.0)]), g.const(7.0)], fmod=1)
    hday0, hflags = holiday_table()
    hidx = g.op("Cast", [g.op("Sub", [tday, g.const(float(hday0))])], to=TensorProto.INT64)
    hidx = g.op("Clip", [hidx, g.const(0, i64), g.const(len(hflags) - 1, i64)])
    thol = g.op("Gather", [g.const(hflags), hidx], axis=0)  # [N, H]
    # same-weekday positions for step h: W-7+(h%7) - 7k, k=0..3 (the last one is the seasonal naive)
    same = np.array([[W - 7 + (h % 7) - 7 * k for k in range(4)] for h in range(H)], i64)  # [H, 4]
    sd = g.op("Gather", [un, g.const(same, i64)], axis=1)  # [N, H, 4]
    snaive = g.op("Gather", [sd, g.const([0], i64)], axis=2)  # [N, H, 1]
    sdmean = g.op("ReduceMean", [sd, g.const([2], i64)], keepdims=1)
    zeros_n = g.op("Mul", [g.op("Unsqueeze", [d, g.const([2], i64)]), g.const(0.0)])  # [N, 1, 1]
    hcol = g.op("Add", [zeros_n, g.const(hs.reshape(1, H, 1))])
    u3 = lambda x: g.op("Unsqueeze", [x, g.const([2], i64)])  # noqa: E731
    ones_h = g.const(np.ones((1, H, 1), f32))
    common3 = g.op("Mul", [g.op("Unsqueeze", [common, g.const([1], i64)]), ones_h])  # [N, H, Fc]
    fh = g.op("Concat", [common3, hcol, u3(tdow), u3(thol), snaive, sdmean], axis=2)
    n_h = len(feature_names(W, H)[0])
    feat_h = g.op("Reshape", [fh, g.const([-1, n_h], i64)], out="feat_h")

    onehot = g.op("Cast", [g.op("Equal", [g.op("Cast", [odow], to=TensorProto.INT64),
                                          g.const(np.arange(7).reshape(1, 7), i64)])], to=TensorProto.FLOAT)
    feat_row = g.op("Concat", [un, common, onehot, thol], axis=1, out="feat_row")
    return scale, feat_h, feat_row


def io(W: int, H: int):
    inputs = [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", W, 6]),
              helper.make_tensor_value_info("origin_day", TensorProto.FLOAT, ["batch"])]
    return inputs


def feature_model(W: int, H: int) -> onnx.ModelProto:
    g = G()
    scale, fh, fr = build_features(g, "window", "origin_day", W, H)
    nh, nr = len(feature_names(W, H)[0]), len(feature_names(W, H)[1])
    outs = [helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("feat_h", TensorProto.FLOAT, ["rows", nh]),
            helper.make_tensor_value_info("feat_row", TensorProto.FLOAT, ["batch", nr])]
    graph = helper.make_graph(g.nodes, "features", io(W, H), outs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="trendcast")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


_SESS = {}


def compute(windows: np.ndarray, origin_day: np.ndarray, W: int, H: int, batch: int = 65536):
    """Run the feature graph with onnxruntime: (scale [N,1], feat_h [N*H,F_H], feat_row [N,F_R])."""
    import onnxruntime as ort

    key = (W, H)
    if key not in _SESS:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        _SESS[key] = ort.InferenceSession(feature_model(W, H).SerializeToString(), so,
                                          providers=["CPUExecutionProvider"])
    sess = _SESS[key]
    outs = [[], [], []]
    for a in range(0, len(windows), batch):
        r = sess.run(None, {"window": np.ascontiguousarray(windows[a:a + batch], np.float32),
                            "origin_day": np.asarray(origin_day[a:a + batch], np.float32)})
        for i in range(3):
            outs[i].append(r[i])
    return tuple(np.concatenate(o) for o in outs)
