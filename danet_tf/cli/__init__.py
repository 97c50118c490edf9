"""Command-line entry points (`danet-train`, ...); `training/*.py` call them.

Every command's `main` is wrapped by `command`: the project's own errors —
a bad file, a bad config key or value, a model/checkpoint mismatch, a
missing optional dependency, a download that cannot connect — end the
command with one line on stderr that names the file or field, and exit
status 2. `--debug` (or `DANET_DEBUG=1`)
shows the full traceback instead.
"""

import functools
import os
import sys

from danet_tf.errors import one_line

# What users can cause and fix: files, configs, checkpoints, dependencies.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError,
               PermissionError, ImportError, ConnectionError)


def debug_requested(argv):
    return "--debug" in argv or os.environ.get("DANET_DEBUG", "") not in ("", "0")


def _user_error_types():
    types = USER_ERRORS
    if "tensorflow" in sys.modules:  # data errors raised inside tf.data
        import tensorflow as tf

        types = types + (tf.errors.InvalidArgumentError, tf.errors.UnknownError)
    return types


def command(main):
    """Wraps a `main(argv=None)` with the one-line error contract above."""

    @functools.wraps(main)
    def wrapper(argv=None):
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = debug_requested(argv)
        argv = [a for a in argv if a != "--debug"]
        previous = os.environ.get("DANET_DEBUG")
        if debug:
            os.environ["DANET_DEBUG"] = "1"  # for the processes this command starts
        try:
            return main(argv)
        except _user_error_types() as error:
            if debug:
                raise
            name = os.path.basename(sys.argv[0]) or "danet"
            print(f"{name}: error: {one_line(error)} (--debug shows the traceback)",
                  file=sys.stderr)
            sys.exit(2)
        finally:
            if previous is None:
                os.environ.pop("DANET_DEBUG", None)
            else:
                os.environ["DANET_DEBUG"] = previous

    return wrapper
