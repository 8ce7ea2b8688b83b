"""Metric functions against cases computed by hand (see the comments)."""

import numpy as np
import pytest

from trendcast_training import metrics as M


def test_naive_scales_from_first_sale():
    # history NaN before the first sale: [nan, 2, 0, 4] -> diffs (0-2, 4-0) = (-2, 4)
    # mean squared = (4 + 16) / 2 = 10; mean abs = (2 + 4) / 2 = 3
    h = np.array([[np.nan, 2, 0, 4]], np.float32)
    sq, ab = M.naive_scales(h)
    assert sq[0] == pytest.approx(10.0)
    assert ab[0] == pytest.approx(3.0)


def test_rmsse_mase_wrmsse():
    y = np.array([[1.0, 3.0], [0.0, 0.0]])
    f = np.array([[2.0, 1.0], [1.0, 1.0]])
    # pair 0: errors (-1, 2): mse = (1 + 4) / 2 = 2.5; scale_sq 10 -> rmsse sqrt(0.25) = 0.5
    # pair 1: errors (-1, -1): mse 1; scale_sq 4 -> rmsse 0.5
    r = M.rmsse(y, f, np.array([10.0, 4.0]))
    assert r == pytest.approx([0.5, 0.5])
    # mase pair 0: mae 1.5 / scale_abs 3 = 0.5
    assert M.mase(y, f, np.array([3.0, 1.0]))[0] == pytest.approx(0.5)
    # weights 3 and 1 but rmsse pair 1 changed via scale 1 -> rmsse 1: (3*0.5 + 1*1) / 4 = 0.625
    assert M.wrmsse(y, f, np.array([10.0, 1.0]), np.array([3.0, 1.0])) == pytest.approx(0.625)


def test_pinball_and_wql():
    # tau 0.1, y 10, q 8: e = 2 -> max(0.2, -1.8) = 0.2 ; q 12: e = -2 -> max(-0.2, 1.8) = 1.8
    assert M.pinball(np.array([10.0, 10.0]), np.array([8.0, 12.0]), 0.1) == pytest.approx([0.2, 1.8])
    # one point y = 10, quantiles (8, 10, 13):
    # tau .1: e=2 -> .2 ; tau .5: 0 ; tau .9: e=-3 -> max(-2.7, 0.3) = 0.3
    # WQL = mean_tau(2 * loss / 10) = (0.04 + 0 + 0.06) / 3 = 0.0333...
    y = np.array([[10.0]])
    q = np.array([[[8.0, 10.0, 13.0]]])
    assert M.wql(y, q) == pytest.approx(0.1 / 3)


def test_wql_median_only_is_wape():
    y = np.array([[1.0, 3.0]])
    q = np.array([[[2.0], [1.0]]])
    # |e| = 1, 2; sum |y| = 4 -> 2 * 0.5 * 3 / 4 = 0.75 = sum|e| / sum|y|
    assert M.wql(y, q, levels=(0.5,)) == pytest.approx(0.75)


def test_coverage_bias():
    y = np.array([[1.0, 5.0, 0.0, 2.0]])
    q = np.array([[[0, 1, 2], [0, 1, 2], [0, 0, 0], [2, 2, 3]]], np.float32)
    # inside: 1 in [0,2] yes; 5 no; 0 in [0,0] yes; 2 in [2,3] yes -> 3/4
    assert M.coverage(y, q) == pytest.approx(0.75)
    # bias: medians (1,1,0,2) sum 4 vs actual 8 -> (4 - 8) / 8 = -0.5
    assert M.bias(y, q[..., 1]) == pytest.approx(-0.5)


def test_trend_definition_by_hand():
    from trendcast_training import direction as D

    # recent level: mean of max(0, units) of the last min(H, W) = 2 days of the window
    win = np.zeros((4, 3, 6), np.float32)
    win[:, :, 0] = [[9, 10, 10], [5, 0.5, 0.5], [9, 10, 10], [0, -4, 0.4]]
    recent = D.recent_level(win, 2)
    assert recent == pytest.approx([10, 0.5, 10, 0.2])
    # future means 12.5, 0, 11, 0.05: strengths +0.25, -0.5 (floor 1), +0.1, -0.15 (floor 1)
    y = np.array([[12.5, 12.5], [0, 0], [11, 11], [0.1, 0]])
    s = D.strength(y.mean(1), recent)
    assert s == pytest.approx([0.25, -0.5, 0.1, -0.15])
    assert list(D.realised(y, recent)) == [D.RISING, D.FALLING, D.FLAT, D.FLAT]
    # per class: truth (R, F, fl, fl), calls (R, fl, fl, R)
    truth, pred = np.array([2, 0, 1, 1]), np.array([2, 1, 1, 2])
    pc = D.per_class(truth, pred)
    assert pc["rising"] == pytest.approx((0.5, 1.0, 2 / 3))
    assert pc["flat"] == pytest.approx((0.5, 0.5, 0.5))
    assert pc["falling"] == (0.0, 0.0, 0.0)
    assert D.macro_f1(truth, pred) == pytest.approx((2 / 3 + 0.5) / 3)
    # Brier against "rising": (0.8-1)^2 + 0.1^2 + 0.3^2 + 0.5^2 over 4
    assert D.brier(np.array([0.8, 0.1, 0.3, 0.5]), truth) == pytest.approx((0.04 + 0.01 + 0.09 + 0.25) / 4)


def test_hot_precision_by_hand():
    from trendcast_training import direction as D

    # one origin, 10 pairs: realised strength 0..9, top decile = the pair with 9 (quantile 8.1)
    rs = np.arange(10.0)
    score = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0.5])
    eligible = np.array([True] * 8 + [True, True])
    # top 20 of 10 eligible pairs holds all of them: one hit of 20
    assert D.hot_precision(score, eligible, rs, np.zeros(10)) == pytest.approx(1 / 20)
    assert D.hot_precision(score, ~eligible, rs, np.zeros(10)) == 0.0


def test_mean_output_scores_squared_metrics_and_median_absolute_ones():
    # one pair, y = (4, 0); quantiles with median 1 both days; mean output 3 both days
    y = np.array([[4.0, 0.0]])
    q = np.array([[[0.0, 1.0, 5.0], [0.0, 1.0, 5.0]]])
    mean = np.array([[3.0, 3.0]])
    hist = np.array([[0.0, 2.0, 0.0]])  # diffs 2, -2: scale_sq 4, scale_abs 2
    w, last, origin = np.array([1.0]), np.array([1.0]), np.array([0])
    with_mean = M.all_metrics(y, q, hist, w, last, origin, mean=mean)
    median = M.all_metrics(y, q, hist, w, last, origin)
    # squared: mean errors (1, -3) -> mse 5 -> RMSSE sqrt(5/4); median errors (3, -1) -> mse 5 too
    assert with_mean["RMSSE"] == pytest.approx(np.sqrt(5 / 4))
    assert with_mean["RMSE"] == pytest.approx(np.sqrt(5))
    # bias of the mean: (6 - 4) / 4 = 0.5; of the median: (2 - 4) / 4 = -0.5
    assert with_mean["bias"] == pytest.approx(0.5) and median["bias"] == pytest.approx(-0.5)
    # absolute metrics keep the median: |3| + |1| -> MAE 2, MASE 1, in both
    assert with_mean["MAE"] == pytest.approx(2.0) == median["MAE"]
    assert with_mean["MASE"] == pytest.approx(1.0) == median["MASE"]


def test_oracles_bound_the_level_forecasts():
    from types import SimpleNamespace

    from trendcast_training import bounds

    # two weeks of a SKU that sells 7 on weekdays Mon-Fri and 0 at weekends; day 4 = Monday 1970-01-05
    days = 4 + np.arange(42)
    units = np.where((days + 3) % 7 < 5, 7.0, 0.0)
    daily = SimpleNamespace(day0=4, col=lambda d: int(d - 4), units=lambda: units[None, :])
    prof = bounds.weekday_profile(daily, 4 + 28)
    assert prof == pytest.approx([1.4] * 5 + [0.0, 0.0])
    es = SimpleNamespace(actuals=units[None, 28:42], origin=np.array([4 + 28]), history=units[None, :28],
                         weights=np.array([1.0]))
    b = bounds.oracles(es, daily)
    # the true mean (5 per day) misses by 2 on weekdays and 5 at weekends; the profile makes it exact
    assert b["oracle_level"] > 0.5 and b["oracle_level_weekday"] == pytest.approx(0.0)
