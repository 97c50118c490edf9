"""Atomic writes: a file or directory appears whole or not at all.

Everything the project writes for later use (checkpoints, best weights,
exports, predictions, reports) goes through `atomic_path`: the writer fills a
temporary path next to the target, which is renamed onto the target only
when the writer succeeded, so a crash or `kill -9` never leaves a
half-written file in place of a good one.
"""

import contextlib
import os
import shutil


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_path(path, overwrite=True):
    """Yields a temporary path next to `path`; renames it onto `path` on success.

    The temporary name keeps `path`'s extension (`x.weights.h5` ->
    `.x.tmp-<pid>.weights.h5`), for writers that check it (Keras). A
    directory target is replaced whole.

    Args:
        path: str. The file or directory to write.
        overwrite: bool. `False` refuses an existing `path` (before and
            after writing) with `FileExistsError`.
    """
    directory, base = os.path.split(os.path.abspath(path))
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it.")
    os.makedirs(directory, exist_ok=True)
    stem, dot, extension = base.partition(".")
    tmp = os.path.join(directory, f".{stem}.tmp-{os.getpid()}{dot}{extension}")
    _remove(tmp)
    try:
        yield tmp
        if os.path.isdir(path) and not os.path.islink(path):
            if not overwrite:
                raise FileExistsError(f"{path} exists; pass --overwrite to replace it.")
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_bytes(path, data):
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    return write_bytes(path, text.encode())
