"""Imported first by every `training/*.py` script, before TensorFlow starts.

TensorFlow 2.21 prints C++ start-up lines (oneDNN notes, "Could not find cuda
drivers", and on every machine without a GPU an `E... failed call to cuInit:
UNKNOWN ERROR (303)`) before its logging is configured, whatever
`TF_CPP_MIN_LOG_LEVEL` says; to a newcomer they read like failures. Unless
`--debug` is given (or `DANET_DEBUG=1`), stderr is passed through a filter
that drops exactly those lines; everything else reaches the terminal.
"""

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]"
    rb"|E\d{4} [^\]]*\] failed call to cuInit)"
)


def filter_stderr():
    """Routes file descriptor 2 through a thread that drops `NOISE` lines."""
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(original, "wb", buffering=0) as out:
            for line in pipe:
                if not NOISE.match(line):
                    out.write(line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def restore():
        sys.stderr.flush()
        os.dup2(os.dup(original), 2)  # closes the pipe's last write end: the thread ends
        thread.join(timeout=5)

    atexit.register(restore)


if "--debug" not in sys.argv and os.environ.get("DANET_DEBUG", "") in ("", "0"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    filter_stderr()
