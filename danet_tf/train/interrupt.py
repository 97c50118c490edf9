"""Ctrl-C that always stops a `fit`.

Keras converts each log value to a float inside a bare `try: ... except:
pass` (`keras.src.utils.python_utils.pythonify_logs`, called at every batch
and epoch boundary on every backend). A SIGINT whose `KeyboardInterrupt` is
raised there is swallowed and training goes on to its last epoch.
`InterruptGuard` notes every SIGINT and raises `KeyboardInterrupt` again at
the next batch or epoch boundary, and when its `with` block ends.
"""

import signal
import threading

import keras


class InterruptGuard(keras.callbacks.Callback):
    """A callback and context manager: `with InterruptGuard() as guard:
    model.fit(..., callbacks=[..., guard])`.

    Inside the block a SIGINT raises `KeyboardInterrupt` as Python's default
    handler does, and is remembered: if something catches that exception,
    the guard raises it again at the next batch end, epoch end or block end.
    It does nothing where Python's own SIGINT handler is not the one in
    place: outside the main thread, where SIGINT is ignored (a background
    job, `nohup`), or where the caller installed a handler of its own.
    """

    def __init__(self):
        super().__init__()
        self.received = False
        self._previous = None

    def __enter__(self):
        self.received = False
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, kind, value, traceback):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if kind is None:
            self.raise_if_received()
        return False

    def _on_sigint(self, signum, frame):
        self.received = True
        raise KeyboardInterrupt

    def raise_if_received(self, *args, **kwargs):
        if self.received:
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_end = raise_if_received
