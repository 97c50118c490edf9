"""Ctrl-C stops a fit even where Keras swallows the KeyboardInterrupt."""

import signal

import keras
import numpy as np
import pytest
from keras.src.utils import python_utils

from danet_tf.train.interrupt import InterruptGuard


@pytest.fixture(autouse=True)
def python_default_sigint():
    """Python's own SIGINT handler, as a command run from a shell has."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class SigintOnFloat:
    """A log value whose conversion to float delivers a SIGINT: a Ctrl-C that
    arrives while Keras converts a batch's logs."""

    def __float__(self):
        signal.raise_signal(signal.SIGINT)
        return 0.0


class CtrlCWhileKerasReadsTheLogs(keras.callbacks.Callback):
    def __init__(self, at_batch):
        super().__init__()
        self.at_batch = at_batch
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if batch == self.at_batch:
            python_utils.pythonify_logs({"value": SigintOnFloat()})


def _fit(callbacks):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((40, 3), "float32"), np.ones((40, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=1, callbacks=callbacks, verbose=0)


def test_keras_swallows_a_ctrl_c_raised_while_it_reads_the_logs():
    """The cause: `pythonify_logs` returns as if nothing happened (the value
    stays unconverted)."""
    logs = python_utils.pythonify_logs({"value": SigintOnFloat()})
    assert isinstance(logs["value"], SigintOnFloat)


def test_without_the_guard_the_fit_runs_to_its_end():
    ctrl_c = CtrlCWhileKerasReadsTheLogs(at_batch=2)
    _fit([ctrl_c])
    assert ctrl_c.batches == 20


def test_the_guard_stops_the_fit_at_the_batch_of_the_ctrl_c():
    ctrl_c = CtrlCWhileKerasReadsTheLogs(at_batch=2)
    with pytest.raises(KeyboardInterrupt), InterruptGuard() as guard:
        _fit([ctrl_c, guard])
    assert ctrl_c.batches == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_swallowed_after_the_last_boundary_is_raised_when_the_block_ends():
    with pytest.raises(KeyboardInterrupt), InterruptGuard():
        python_utils.pythonify_logs({"value": SigintOnFloat()})
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_block_without_ctrl_c_ends_normally_and_restores_the_handler():
    with InterruptGuard() as guard:
        _fit([guard])
    assert not guard.received
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored():
    """A run started with SIGINT ignored (a background job) is not made
    interruptible by the guard."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with InterruptGuard():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
