"""The TCN family: hand-written backprop against finite differences, ONNX export against numpy."""

import numpy as np
import pytest

from trendcast_training import features as F
from trendcast_training import sequence
from trendcast_training.onnx_out import postprocess_np, run, session

W, H = 28, 3


def inputs(n, seed=0):
    r = np.random.default_rng(seed)
    units = np.where(r.random((n, W)) < 0.4, r.gamma(1.5, 4.0, (n, W)), 0.0)
    win = np.zeros((n, W, 6), np.float32)
    win[..., 0] = units
    win[..., 1] = units * 2.5
    win[..., 2] = (units > 0) * 1.0
    origin = 15_000 + r.integers(0, 300, n)
    return win, origin.astype(np.int64)


def test_causal_shift_and_its_adjoint():
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 3)
    assert (sequence.shift(x, 1)[0, 0] == 0).all() and (sequence.shift(x, 1)[0, 1:] == x[0, :3]).all()
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    # <shift(x), g> == <x, unshift(g)>
    assert np.sum(sequence.shift(x, 2) * g) == pytest.approx(np.sum(x * sequence.unshift(g, 2)), rel=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_backprop_matches_finite_differences(weighted):
    """Also with per-row pinball weights (`neural.row_weights`), whose gradient is scaled by hand."""
    win, origin = inputs(64)
    _, _, fr = F.compute(win, origin, W, H)
    net = sequence.make(fr.shape[1], H, {"hidden": 16, "seed": 3, "channels": 6}, W)
    net.mu, net.sd = fr.mean(0), np.maximum(fr.std(0), 1e-3)
    for k in net.p:
        net.p[k] = net.p[k].astype(np.float64)
    r = np.random.default_rng(2)
    y = r.gamma(1.0, 1.0, (64, H))
    up = (r.random(64) < 0.5).astype(np.float64)
    w = r.gamma(0.5, 2.0, 64) if weighted else None

    def loss():
        o, _ = net.forward(fr)
        return net.loss_grad(o, y, up, 0.2, w)[0]

    o, cache = net.forward(fr)
    g = net.backward(cache, net.loss_grad(o, y, up, 0.2, w)[1])
    checked = 0
    for k in ("K0", "K3", "c1", "W1", "W3"):
        flat = np.argsort(-np.abs(g[k]).ravel())[:3]  # the largest entries of each gradient
        for f in flat:
            idx = np.unravel_index(f, g[k].shape)
            keep = net.p[k][idx]
            eps = 1e-5 * max(1.0, abs(keep))  # small: a larger step can cross a ReLU kink
            net.p[k][idx] = keep + eps
            hi = loss()
            net.p[k][idx] = keep - eps
            lo = loss()
            net.p[k][idx] = keep
            num = (hi - lo) / (2 * eps)
            assert g[k][idx] == pytest.approx(num, rel=2e-2, abs=1e-6), (k, idx)
            checked += 1
    assert checked == 15


def test_onnx_export_matches_the_numpy_forward():
    win, origin = inputs(300, seed=4)
    s, _, fr = F.compute(win, origin, W, H)
    net = sequence.make(fr.shape[1], H, {"hidden": 16, "seed": 5, "channels": 8}, W)
    net.mu, net.sd = fr.mean(0).astype(np.float32), np.maximum(fr.std(0), 1e-3).astype(np.float32)
    out = run(session(sequence.export(net, W, H, 1.0, 1.0, "tcn-test", (0.2, 0.5, 0.3))), win, origin)
    qs, pu = net.predict_scaled(fr)
    ref = postprocess_np(qs, s, 1.0, 1.0)
    assert out.q.shape == (300, H, 3) and out.mean.shape == (300, H)
    assert np.abs(out.q - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
    assert np.abs(out.p_up - pu).max() <= 1e-5


def test_row_weights_follow_the_scale_and_are_capped():
    from trendcast_training import neural

    scale = np.array([1.0, 1.0, 4.0, 1000.0], np.float32)
    win = np.zeros((4, W, 6), np.float32)
    assert np.all(neural.row_weights(scale, win, "none", 50.0) == 1)
    w = neural.row_weights(scale, win, "scale", 2.0)
    assert abs(w.mean() - 1) < 1e-6
    assert w[0] == w[1] < w[2] < w[3]  # the largest capped, still the largest
    ws = neural.row_weights(scale, win, "sqrt_scale", 50.0)
    assert np.isclose(ws[2] / ws[0], 2.0)
