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


def test_coverage_bias_direction():
    y = np.array([[1.0, 5.0, 0.0, 2.0]])
    q = np.array([[[0, 1, 2], [0, 1, 2], [0, 0, 0], [2, 2, 3]]], np.float32)
    # inside: 1 in [0,2] yes; 5 no; 0 in [0,0] yes; 2 in [2,3] yes -> 3/4
    assert M.coverage(y, q) == pytest.approx(0.75)
    # bias: medians (1,1,0,2) sum 4 vs actual 8 -> (4 - 8) / 8 = -0.5
    assert M.bias(y, q[..., 1]) == pytest.approx(-0.5)
    # direction: truth up where mean(y) > last14
    yy = np.array([[2.0, 2.0], [0.0, 0.0], [5.0, 5.0], [1.0, 1.0]])
    last = np.array([1.0, 1.0, 1.0, 3.0])
    truth = M.direction_truth(yy, last)  # T F T F
    pred = np.array([True, True, False, False])
    # tp = 1; precision 1/2; recall 1/2
    assert M.precision_recall(truth, pred) == pytest.approx((0.5, 0.5))
    assert list(M.direction_pred(yy, last, p_up=np.array([0.9, 0.1, 0.6, 0.2]))) == [True, False, True, False]
