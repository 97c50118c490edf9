"""Peak memory and wall time of the test suite, counting every process it starts.

    python benchmarks/test_suite_footprint.py [pytest arguments, default: the README's -q tests]

Samples the summed RSS of pytest and all its descendants (from /proc, every
0.2 s) while the suite runs, and prints the peak, the largest single process
and the wall time. `/usr/bin/time -v` reports only the largest process.
"""

import os
import subprocess
import sys
import time


def tree_rss_mb(root_pid):
    """`(sum, max)` RSS in MB of `root_pid` and its descendants."""
    children = {}
    rss = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parent, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(pid))
        rss[int(pid)] = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    stack, values = [root_pid], []
    while stack:
        pid = stack.pop()
        values.append(rss.get(pid, 0.0))
        stack.extend(children.get(pid, []))
    return sum(values), max(values)


def main():
    args = sys.argv[1:] or ["-q", "tests"]
    start = time.time()
    process = subprocess.Popen([sys.executable, "-m", "pytest", *args])
    peak_sum = peak_one = 0.0
    while process.poll() is None:
        total, largest = tree_rss_mb(process.pid)
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
        time.sleep(0.2)
    print("| measure | value |\n|---|---|")
    print(f"| wall time | {time.time() - start:.0f} s |")
    print(f"| peak RSS, process tree (sum) | {peak_sum / 1024:.2f} GB |")
    print(f"| peak RSS, largest process | {peak_one / 1024:.2f} GB |")
    print(f"| pytest exit status | {process.returncode} |")
    sys.exit(process.returncode)


if __name__ == "__main__":
    main()
