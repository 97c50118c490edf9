"""Peak memory and wall time of the test suite, counting every process it starts.

    python -m benchmarks.test_suite_footprint [pytest arguments]
    python -m benchmarks.test_suite_footprint -- COMMAND...   (e.g. -- bash .ci/run)

(default: the README's `-q -n 2 --dist loadscope tests`)

Samples the memory of pytest and all its descendants (from /proc, every
0.5 s) while the suite runs, and prints the peak, the largest single process,
the wall time and the processes that made the peak, and the CPU time of the
whole tree (on 2 cores the suite is CPU-bound: wall time ~ CPU time / 2). The sum is of PSS
(proportional set size: a page shared by n processes counts 1/n in each):
summed RSS counts a just-forked child's copy-on-write pages twice, which made
single-sample peaks of 8.6 GB out of a 2.8 GB parent and its children before
they exec. `/usr/bin/time -v` reports only the largest process's RSS.
"""

import os
import resource
import subprocess
import sys
import time


def _pss_mb(pid):
    """Proportional set size of `pid` in MB (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def tree_memory_mb(root_pid):
    """`(PSS sum, largest RSS, [(PSS MB, pid)])` of `root_pid` and its descendants."""
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
    stack, pids = [root_pid], []
    while stack:
        pids.append(stack.pop())
        stack.extend(children.get(pids[-1], []))
    values = [(_pss_mb(pid), pid) for pid in pids]
    return sum(v for v, _ in values), max(rss.get(pid, 0.0) for pid in pids), values


def command_line(pid, limit=160):
    """The command line of `pid` (shortened), or "?" once it has exited."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:limit]
    except OSError:
        return "?"


def measured_command(argv):
    """`-- COMMAND...` as given, else pytest with `argv` (default: the README's)."""
    if argv[:1] == ["--"]:
        return argv[1:]
    return [sys.executable, "-m", "pytest",
            *(argv or ["-q", "-n", "2", "--dist", "loadscope", "tests"])]


def main():
    start = time.time()
    process = subprocess.Popen(measured_command(sys.argv[1:]))
    peak_sum = peak_one = 0.0
    at_peak = []
    while process.poll() is None:
        total, largest, values = tree_memory_mb(process.pid)
        if total > peak_sum:
            at_peak = [(mb, command_line(pid)) for mb, pid in sorted(values, reverse=True)
                       if mb > 100]
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
        time.sleep(0.5)
    print("| measure | value |\n|---|---|")
    print(f"| wall time | {time.time() - start:.0f} s |")
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the tree, once it has exited
    print(f"| CPU time, process tree (user + system) | {used.ru_utime + used.ru_stime:.0f} s |")
    print(f"| peak PSS, process tree (sum) | {peak_sum / 1024:.2f} GB |")
    print(f"| peak RSS, largest process | {peak_one / 1024:.2f} GB |")
    print(f"| exit status | {process.returncode} |")
    print("\nProcesses at the tree's peak (PSS over 100 MB):")
    for mb, command in at_peak:
        print(f"  {mb / 1024:.2f} GB  {command}")
    sys.exit(process.returncode)


if __name__ == "__main__":
    main()
