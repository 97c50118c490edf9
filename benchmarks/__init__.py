"""The benchmark suite: `python -m benchmarks.run` (or `python benchmarks/run.py`)."""
