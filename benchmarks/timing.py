"""Timing shared by the benchmark cases (`cases.py`, `official.py`)."""

import time

import numpy as np


def median_time(fn, repeats, warmup=1):
    """`(median seconds, all times)` of `repeats` calls of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), times
