"""What every benchmark shares: one case per process (`run_case`), the machine
and the CPU flags that decide the results, number formatting."""

import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from danet_tf.files import write_text

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_case(name, timeout=1800, cache=None, **kwargs):
    """Runs `benchmarks/cases.py name kwargs` in a fresh process; its result dict.

    With `cache` (a JSON path) a result already there for the same case and
    arguments is reused, and a new one is written there: a long benchmark
    rerun with the same `--workdir` only runs what is missing.
    """
    if cache and os.path.exists(cache):
        with open(cache) as f:
            saved = json.load(f)
        if saved.get("case") == [name, kwargs] and "error" not in saved["result"]:
            return saved["result"]
    start = time.time()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cases", name, json.dumps(kwargs)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    line = next((stdout_line for stdout_line in proc.stdout.splitlines()
                 if stdout_line.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        result = {"error": (proc.stderr or proc.stdout)[-500:], "wall_s": time.time() - start}
    else:
        result = json.loads(line[len("RESULT "):])
    print(f"{name} {kwargs}: {result}"[:400], file=sys.stderr, flush=True)  # progress
    if cache:
        write_text(cache, json.dumps({"case": [name, kwargs], "result": result}))
    return result


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """`{flag: present}` for the flags that decide float32, bfloat16 and int8 speed."""
    from danet_tf.models.precision import CPU_FLAGS
    from danet_tf.models.precision import cpu_flags as present

    flags = present(cpuinfo)
    return {flag: flag in flags for flag in CPU_FLAGS}


def machine():
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "numpy": np.__version__}
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            info["memory_kb"] = int(next(line.split()[1] for line in f
                                         if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        pass
    info["flags"] = cpu_flags()
    return info


def fmt(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def describe_machine(info):
    """One line: the CPU model and the flags that decide the results."""
    return (f"CPU: {info.get('cpu', '?')}, {info.get('cpus')} cores; "
            + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["flags"].items()))
