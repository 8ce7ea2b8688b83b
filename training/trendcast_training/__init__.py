"""Training, evaluation and ONNX export for trendcast forecasters (issue #6).

Data always comes from `trendcast export-windows` (the engine's own admission and window code);
nothing here re-implements bucketing or the window features.
"""

FEATURES = ["units", "revenue", "orders", "views", "add_to_carts", "wishlists"]
QUANTILES = [0.1, 0.5, 0.9]
