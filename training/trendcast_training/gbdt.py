"""Model family A: global LightGBM, one booster per quantile (0.1/0.5/0.9), horizon step as a feature.

Rows = (window, horizon step) pairs from the feature graph; targets = units / scale. The three
boosters become one ai.onnx.ml TreeEnsembleRegressor with 3 targets behind the feature graph.
"""

from __future__ import annotations

import numpy as np

from . import QUANTILES
from . import features as F
from .data import Export, train_rows
from .features import G
from .onnx_out import assemble, mean_tail, quantile_tail

DEFAULTS = dict(num_leaves=63, learning_rate=0.05, n_trees=150, min_data_in_leaf=200, feature_fraction=0.8,
                bagging_fraction=0.8, lambda_l2=1.0, mid_objective="quantile", weight="rev", rows=80_000, steps_per_row=4, min_nz28=0.0)


def training_matrix(ex: Export, cutoff: int, rows: int, steps_per_row: int, seed: int = 0,
                    min_nz28: float = 0.0, min_origin=None, weight: str = "none"):
    """Sample rows with origin + H <= cutoff and `steps_per_row` random horizon steps from each."""
    rng = np.random.default_rng(seed)
    idx = train_rows(ex, cutoff, min_origin)
    idx = np.sort(rng.choice(idx, size=min(rows, len(idx)), replace=False))
    W, H = ex.window_len, ex.horizon
    win = np.asarray(ex.windows[idx])
    scale, fh, fr = F.compute(win, ex.origin[idx], W, H)
    y = np.asarray(ex.targets[idx]) / scale  # [n, H]
    keep = fr[:, W + F.feature_names(W, H)[0].index("nz28")] >= min_nz28 if min_nz28 > 0 else np.ones(len(idx), bool)
    steps = np.stack([rng.choice(H, size=steps_per_row, replace=False) for _ in range(len(idx))])
    steps = steps[keep]
    rows_k = np.nonzero(keep)[0]
    sel = (rows_k[:, None] * H + steps).ravel()
    X = fh[sel]
    Y = y[rows_k[:, None], steps].ravel().astype(np.float32)
    wt = row_weights(win[rows_k], weight)
    return X, Y, np.repeat(wt, steps_per_row)


def row_weights(win: np.ndarray, weight: str) -> np.ndarray:
    """Sample weights per window: none, or the window's last-28-day revenue (WRMSSE's weight), as is
    ('rev') or square-rooted ('sqrt_rev'); normalised to mean 1."""
    if weight == "none":
        return np.ones(len(win), np.float32)
    rev = np.maximum(win[:, -28:, 1].sum(1), 0.0) + 1.0
    w = np.sqrt(rev) if weight == "sqrt_rev" else rev
    return (w / w.mean()).astype(np.float32)


def booster_params(params: dict, objective: str, **extra) -> dict:
    """LightGBM parameters of one booster from the family's params (DEFAULTS + overrides)."""
    return {"objective": objective, "num_leaves": params["num_leaves"], "learning_rate": params["learning_rate"],
            "min_data_in_leaf": params["min_data_in_leaf"], "feature_fraction": params["feature_fraction"],
            "bagging_fraction": params["bagging_fraction"], "bagging_freq": 1, "lambda_l2": params["lambda_l2"],
            "num_threads": 2, "verbose": -1, "seed": 1, "max_bin": 255, **extra}


def train(X, Y, params: dict, weights=None, log=print):
    import lightgbm as lgb

    boosters = []
    for q in QUANTILES:
        obj = params.get("mid_objective", "quantile") if q == 0.5 else "quantile"
        p = booster_params(params, obj, alpha=q)
        ds = lgb.Dataset(X, Y, weight=weights, free_raw_data=False)
        b = lgb.train(p, ds, num_boost_round=params["n_trees"])
        boosters.append(b)
        log(f"  gbdt q{q}: {b.num_trees()} trees")
    return boosters


def predict_scaled(boosters, fh: np.ndarray, H: int) -> np.ndarray:
    """[N*H, F] features -> [N, H, 3] scaled quantiles (raw, before sorting/widening)."""
    cols = [b.predict(fh, num_threads=2) for b in boosters]
    return np.stack(cols, -1).reshape(-1, H, len(boosters)).astype(np.float32)


def _f32_floor(x: float) -> np.float32:
    """Largest float32 <= x: for float32 features, (v <= x) == (v <= _f32_floor(x)) exactly."""
    f = np.float32(x)
    if float(f) > x:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


def tree_ensemble(g: G, boosters, x: str, n_targets: int | None = None) -> str:
    """LightGBM boosters (numerical splits, no missing values) -> one TreeEnsembleRegressor of raw
    scores: one target per booster, or with `n_targets` one multiclass booster whose tree i feeds
    class i mod n_targets (LightGBM's order)."""
    attrs = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                             "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                             "nodes_hitrates", "target_treeids", "target_nodeids", "target_ids", "target_weights"]}
    tree_id = 0
    for booster_no, b in enumerate(boosters):
        for tree_no, info in enumerate(b.dump_model()["tree_info"]):
            target = tree_no % n_targets if n_targets else booster_no
            counter = [0]

            def visit(node, tid):
                nid = counter[0]
                counter[0] += 1
                attrs["nodes_treeids"].append(tid)
                attrs["nodes_nodeids"].append(nid)
                attrs["nodes_hitrates"].append(1.0)
                if "leaf_value" in node or "split_index" not in node:
                    attrs["nodes_featureids"].append(0)
                    attrs["nodes_values"].append(0.0)
                    attrs["nodes_modes"].append("LEAF")
                    attrs["nodes_truenodeids"].append(0)
                    attrs["nodes_falsenodeids"].append(0)
                    attrs["nodes_missing_value_tracks_true"].append(0)
                    attrs["target_treeids"].append(tid)
                    attrs["target_nodeids"].append(nid)
                    attrs["target_ids"].append(target)
                    attrs["target_weights"].append(float(node.get("leaf_value", 0.0)))
                    return nid
                assert node["decision_type"] == "<=", node["decision_type"]
                pos = len(attrs["nodes_modes"])
                attrs["nodes_featureids"].append(int(node["split_feature"]))
                attrs["nodes_values"].append(float(_f32_floor(float(node["threshold"]))))
                attrs["nodes_modes"].append("BRANCH_LEQ")
                attrs["nodes_truenodeids"].append(-1)
                attrs["nodes_falsenodeids"].append(-1)
                attrs["nodes_missing_value_tracks_true"].append(int(bool(node.get("default_left", True))))
                left = visit(node["left_child"], tid)
                right = visit(node["right_child"], tid)
                attrs["nodes_truenodeids"][pos] = left
                attrs["nodes_falsenodeids"][pos] = right
                return nid

            visit(info["tree_structure"], tree_id)
            tree_id += 1
    out = g.name("trees")
    g.nodes.append(__import__("onnx").helper.make_node(
        "TreeEnsembleRegressor", [x], [out], domain="ai.onnx.ml", n_targets=n_targets or len(boosters),
        aggregate_function="SUM", post_transform="NONE", base_values=[0.0] * (n_targets or len(boosters)), **attrs))
    return out


def export(boosters, W: int, H: int, widen_lo: float, widen_hi: float, name: str, mean_w=(0.0, 1.0, 0.0),
           direction=None):
    from . import direction as D

    g = G()
    scale, fh, fr = F.build_features(g, "window", "origin_day", W, H)
    t = tree_ensemble(g, boosters, fh)  # [N*H, 3]
    qs = g.op("Reshape", [t, g.const([-1, H, len(boosters)], np.int64)])
    mean_tail(g, quantile_tail(g, qs, scale, H, widen_lo, widen_hi), mean_w)
    extra = D.graph(g, direction, fr, W)
    return assemble(g, W, H, ["quantiles", "mean", *extra], name, opsets_extra=[("ai.onnx.ml", 3)])
