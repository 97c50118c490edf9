"""Independent references shared by the tests and the benchmarks (they need
PyTorch): `torch_danet`, a PyTorch DANet written from the official code's
module names and formulas, and `official_eval`, the official multi-scale
sliding-window evaluation (`MultiEvalModule`)."""
