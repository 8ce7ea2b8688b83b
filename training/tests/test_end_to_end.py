"""Smoke test: the first 120,000 Online Retail events (Dec 2010 - mid Mar 2011) through the binary, tiny models, ONNX checks."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trendcast_training import features as F
from trendcast_training import gbdt, neural
from trendcast_training.data import BINARY, build_daily, export_windows, load_export
from trendcast_training.onnx_out import mean_np, postprocess_np, run, session

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "online-retail" / "online_retail.csv.gz"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    # never skipped: a missing binary or data set is a failure with instructions
    assert BINARY.exists(), f"{BINARY} missing: cargo build --release --bin trendcast (scripts/test.sh does)"
    assert DATA.exists(), f"{DATA} missing: the Online Retail log is committed under data/"
    d = tmp_path_factory.mktemp("small")
    src = d / "or120k.csv"
    with gzip.open(DATA, "rt", encoding="utf-8", errors="replace") as f, open(src, "w") as g:
        for i, line in enumerate(f):
            if i > 120_000:
                break
            g.write(line)
    exp = export_windows(src, "online-retail", 7, 28, out=d / "export")
    return d, load_export(exp)


def with_clicks(windows: np.ndarray) -> np.ndarray:
    """The same windows with views, add-to-carts and wishlists on every sale day."""
    w = np.array(windows, np.float32)
    sold = w[..., 0] > 0
    w[..., 3], w[..., 4], w[..., 5] = 5.0 * sold, 2.0 * sold, 1.0 * sold
    return w


def test_export_loads(small):
    _, ex = small
    assert ex.windows.shape[1:] == (28, 6) and ex.targets.shape[1] == 7
    daily = build_daily(ex)
    # the rebuilt daily series agree with the export's targets (max(0, units) of the next 7 days)
    r = int(np.nonzero(ex.complete)[0][len(ex.complete) // 2])
    s = list(daily.skus).index(ex.sku[r])
    c = daily.col(ex.origin[r])
    assert np.allclose(daily.units()[s, c:c + 7], ex.targets[r])


def test_gbdt_and_mlp_train_export_score(small):
    d, ex = small
    cutoff = int(ex.origin.max()) - 7
    p = dict(gbdt.DEFAULTS, n_trees=5, rows=3000, steps_per_row=2, num_leaves=7, min_data_in_leaf=20)
    X, Y, wt = gbdt.training_matrix(ex, cutoff, p["rows"], p["steps_per_row"], weight="sqrt_rev")
    boosters = gbdt.train(X, Y, p, weights=wt, log=lambda *a: None)
    onx = gbdt.export(boosters, 28, 7, 1.0, 1.2, "smoke-gbdt", (0.2, 0.5, 0.3))
    sess = session(onx)
    w, o = np.asarray(ex.windows[:500]), ex.origin[:500]
    out = run(sess, w, o)
    q = out.q
    assert q.shape == (500, 7, 3) and out.p_up is None
    assert (q >= 0).all() and (np.diff(q, axis=-1) >= 0).all()
    s, fh, _ = F.compute(w, o, 28, 7)
    ref = postprocess_np(gbdt.predict_scaled(boosters, fh, 7), s, 1.0, 1.2)
    assert np.abs(q - ref).max() <= 1e-3 * max(1.0, np.abs(ref).max())
    # the mean output is the weighted sum of the graph's own quantiles
    assert out.mean.shape == (500, 7)
    assert np.abs(out.mean - (0.2 * q[..., 0] + 0.5 * q[..., 1] + 0.3 * q[..., 2])).max() <= 1e-4 * max(1.0, q.max())

    mp = dict(neural.DEFAULTS, rows=3000, epochs=2, hidden=16, valid_days=7)
    x, y, up, org, _ = neural.make_data(ex, cutoff, mp["rows"])
    net = neural.train(x, y, up, org, cutoff, 7, mp, log=lambda *a: None)
    onx = neural.export(net, 28, 7, 1.0, 1.0, "smoke-mlp", (0.1, 0.6, 0.3))
    sess = session(onx)
    w, o = np.asarray(ex.windows[:1000]), ex.origin[:1000]
    out = run(sess, w, o)
    q, p_up = out.q, out.p_up
    assert q.shape == (1000, 7, 3) and p_up.shape == (1000,)
    assert (np.diff(q, axis=-1) >= 0).all(), "quantiles never cross, not even by an ulp"
    assert np.abs(out.mean - mean_np(q, (0.1, 0.6, 0.3))).max() <= 1e-4 * max(1.0, q.max())
    assert ((p_up >= 0) & (p_up <= 1)).all()
    s, _, fr = F.compute(w, o, 28, 7)
    qs, pu = net.predict_scaled(fr)
    # ONNX vs the numpy training forward on 1,000 rows
    assert np.abs(q - postprocess_np(qs, s, 1.0, 1.0)).max() <= 1e-4
    assert np.abs(p_up - pu).max() <= 1e-4
    # Online Retail has no clicks: features that never varied in training do not move the forecast
    clicked = with_clicks(w)
    assert np.abs(run(sess, clicked, o).q - q).max() <= 1e-4 * max(1.0, q.max())


SMALL_STUDENT = {"extra_real": 3000, "extra_synthetic": 1000, "epochs": 3, "hidden": 8}


@pytest.mark.parametrize("student", [False, SMALL_STUDENT], ids=["trees", "distilled-student"])
def test_direction_classifier_trains_calibrates_and_exports(small, student):
    """A tiny direction classifier (the trees, or a student distilled from them): calibrated
    probabilities sum to one, the ONNX `direction` output of a GBDT export matches the numpy /
    LightGBM probabilities, and the manifest names it."""
    from trendcast_training import direction as D
    from trendcast_training.onnx_out import manifest

    _, ex = small
    cutoff = int(ex.origin.max()) - 7
    p = dict(D.DEFAULTS, rows=3000, max_trees=20, num_leaves=7, min_data_in_leaf=20, early_stop_days=7,
             patience=5, student=student)
    model = D.train(ex, cutoff, p, log=lambda *a: None)
    assert (model.student is not None) == bool(student)
    if student:
        assert model.student.size() == (model.student.mu.size + 1) * 8 + (8 + 1) * 3
        assert "distilled" in model.describe()
    idx = np.nonzero(ex.complete)[0][:800]
    w, o = np.asarray(ex.windows[idx]), ex.origin[idx]
    feats = D.compute(w, o, 28, 7)
    D.calibrate(model, feats, D.realised(np.asarray(ex.targets[idx]), D.recent_level(w, 7)))
    probs = model.probs(feats)
    assert np.allclose(probs.sum(1), 1.0) and (probs >= 0).all()
    gp = dict(gbdt.DEFAULTS, n_trees=3, rows=2000, steps_per_row=1, num_leaves=7, min_data_in_leaf=20)
    X, Y, wt = gbdt.training_matrix(ex, cutoff, gp["rows"], gp["steps_per_row"])
    onx = gbdt.export(gbdt.train(X, Y, gp, log=lambda *a: None), 28, 7, 1.0, 1.0, "smoke-dir", (0.2, 0.5, 0.3), model)
    out = run(session(onx), w, o)
    assert out.direction.shape == (800, 3)
    assert np.abs(out.direction - probs).max() <= 1e-4
    # trained without clicks, the calls ignore them (the trees never split on them; the student's
    # inputs that never varied read as 0)
    assert np.abs(run(session(onx), with_clicks(w), o).direction - probs).max() <= 1e-4
    assert np.allclose(out.p_up, out.direction[:, 2])
    entry = D.manifest_entry(model)
    man = manifest("m", "gbdt", "", 28, 7, "model.onnx", p_up=False, normalisation="", direction=entry)
    assert man["direction_output"]["classes"] == ["falling", "flat", "rising"]
    assert man["direction_output"]["flat_band"] == D.BAND and "p_up_output" not in man


def test_synthetic_trends_carry_on_past_the_origin():
    """The synthetic prior's ramps keep going: most windows that ramped up are labelled rising."""
    from trendcast_training import direction as D

    win, fut, _ = D.synthetic_windows(4000, 28, 14, np.array([15000]), seed=3)
    assert win.shape == (4000, 28, 6) and fut.shape == (4000, 14)
    assert (win >= 0).all() and (win[..., 3:] == 0).all()
    u = win[..., 0]
    up = u[:, -7:].mean(1) > 2 * u[:, :7].mean(1) + 2
    labels = D.realised(fut, D.recent_level(win, 14))
    assert up.sum() > 100
    assert (labels[up] == D.RISING).mean() > 0.8


def test_train_sh_on_your_own_log_writes_model_and_manifest(small, tmp_path):
    """`bash training/train.sh --events LOG` as a user runs it on their own log (a slice of Online
    Retail here): origins derived from the log, a holiday calendar by country code, tiny models."""
    from trendcast_training.data import derive_origins

    d, ex = small
    src = d / "or120k.csv"
    out = tmp_path / "model"
    cmd = ["bash", str(ROOT / "training" / "train.sh"), "--events", str(src), "--format", "online-retail",
           "--out", str(out), "--holidays", "GB-ENG",
           "--work", str(tmp_path / "work"), "--horizon", "7", "--min-sale-days", "3", "--baselines", "simple",
           "--families", "gbdt", "mlp", "tcn",
           "--gbdt", json.dumps({"n_trees": 5, "rows": 3000, "num_leaves": 7, "min_data_in_leaf": 20}),
           "--mlp", json.dumps({"rows": 3000, "epochs": 1, "hidden": 16, "valid_days": 7}),
           "--tcn", json.dumps({"rows": 2000, "epochs": 1, "hidden": 16, "channels": 4, "valid_days": 7}),
           "--direction", json.dumps({"rows": 3000, "max_trees": 20, "num_leaves": 7, "min_data_in_leaf": 20,
                                      "early_stop_days": 7, "patience": 5, "student": SMALL_STUDENT}),
           "--strong", json.dumps({"rounds": 10, "train_days": 60})]
    env = dict(os.environ, TRENDCAST_CACHE=str(tmp_path / "cache"), TRENDCAST_TRAIN_REQUIREMENTS="test",
               TRENDCAST_ENGINE_BIN=str(BINARY))
    subprocess.run(cmd, check=True, cwd=tmp_path, stdout=subprocess.DEVNULL, env=env)
    man = json.loads((out / "manifest.json").read_text())
    assert "holidays: GB-ENG" in man["normalisation"]
    assert man["window_len"] == 28 and man["horizon"] == 7 and man["calendar_input"]["name"] == "origin_day"
    sess = ort.InferenceSession(str(out / man["model_file"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["window", "origin_day"]
    assert man["mean_output"] == {"name": "mean", "shape": [-1, 7]}
    feed = {"window": np.zeros((3, 28, 6), np.float32), "origin_day": np.full(3, 15000.0, np.float32)}
    q, mean, probs = sess.run(["quantiles", "mean", "direction"], feed)
    assert q.shape == (3, 7, 3) and mean.shape == (3, 7) and probs.shape == (3, 3)
    assert man["direction_output"]["name"] == "direction" and len(man["direction_output"]["call_weights"]) == 3
    summary = json.loads((tmp_path / "work" / "summary.json").read_text())
    # the origins came from the log: 4 weekly eval origins ending at its last full day, 3 validation ones before
    ev, va = derive_origins(ex)
    assert summary["args"]["eval_origins"] == ev and summary["args"]["valid_origins"] == va
    assert len(ev) == 4 and len(va) == 3 and np.datetime64(ev[-1]) + 6 == np.datetime64(int(ex.origin.max()) - 2, "D")
    best = summary["best"].removeprefix("trendcast-")
    weights = summary["mean_weights"][best]
    assert len(weights) == 3 and min(weights) >= 0 and sum(weights) == pytest.approx(1.0)
    assert "mean output" in (out / "EVALUATION.md").read_text().lower()
    # the engine's own evaluation of the exported model is in the report (a table, or why it failed)
    report = (out / "EVALUATION.md").read_text()
    assert "## Through the serving code" in report
    # its origins (from the log) are the ones given here, so the Rust table is there, model row first
    assert f"| trendcast trendcast-demand-{best}@1 |" in report, report
    # all three families were trained, exported and scored through onnxruntime
    assert set(summary["eval"]) >= {"trendcast-gbdt", "trendcast-mlp", "trendcast-tcn", "LightGBM-M5"}
    # the strong baseline was tuned on the validation origins and its table, mean included, went to the engine
    assert "LightGBM-M5" in summary["valid"]
    assert (tmp_path / "work" / "forecasts-LightGBM-M5.csv").read_text().startswith("sku,origin,date,q0.1,q0.5,q0.9,mean")
    assert "| LightGBM-M5 |" in report.split("## Through the serving code")[1]
    # each family's graph was timed, and the shipped one met the budget (the tiny MLP always does)
    assert set(summary["windows_per_s"]) == {"gbdt", "mlp", "tcn"}
    assert summary["windows_per_s"][best] >= 100_000 and "among the families scoring" in summary["choice"]
    assert "## Scoring speed and the choice of the shipped model" in report
    assert (tmp_path / "work" / "model-tcn" / "model.onnx").exists()
    assert (out / "EVALUATION.md").exists() and (out / "fan_chart.png").exists()


def test_origins_from_the_log_are_the_standard_ones_on_online_retail_and_calendars_check_their_code():
    from types import SimpleNamespace

    from trendcast_training import calendar
    from trendcast_training.data import ONLINE_RETAIL_EVAL, ONLINE_RETAIL_VALID, day_of, derive_origins

    # the full log's latest event is on 2011-12-09: the row holding that day has origin 2011-12-10
    ex = SimpleNamespace(horizon=14, origin=np.array([day_of("2010-12-02"), day_of("2011-12-10")]))
    assert derive_origins(ex) == (ONLINE_RETAIL_EVAL, ONLINE_RETAIL_VALID)
    assert derive_origins(ex, eval_origins=["2011-06-10", "2011-06-03"])[1] == ["2011-05-06", "2011-05-13",
                                                                                "2011-05-20"]
    try:
        assert calendar.use("GB-ENG") == "GB-ENG"
        day0, flags = calendar.holiday_table()
        assert flags[day_of("2011-12-26") - day0] == 1.0 and flags[day_of("2011-12-27") - day0] == 1.0
        assert flags[day_of("2011-07-04") - day0] == 0.0
        with pytest.raises(calendar.UnknownCalendar, match="XX"):
            calendar.use("XX")
        assert calendar.use("none") == "none" and calendar.holiday_table()[1].sum() == 0
    finally:
        calendar.use("none")


def test_jsonl_converter_matches_engine_reader(small, tmp_path):
    """Online Retail -> engine JSONL (Python converter) gives the same windows as the engine's reader."""
    from trendcast_training import convert

    d, ex = small
    jl = tmp_path / "or.jsonl"
    convert.main(["online-retail", str(d / "or120k.csv"), str(jl)])
    exp = export_windows(jl, "jsonl", 7, 28, out=tmp_path / "export-jsonl")
    ex2 = load_export(exp)
    assert len(ex2.origin) == len(ex.origin)
    assert (ex2.sku == ex.sku).all() and (ex2.origin == ex.origin).all()
    assert np.array_equal(np.asarray(ex2.windows), np.asarray(ex.windows))
