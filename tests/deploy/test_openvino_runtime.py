"""One OpenVINO Core per process, so that Ctrl-C still interrupts after
OpenVINO models come and go. Each case runs in a child process: the state it
checks (the thread's alternate signal stack) outlives the models, and a
failure is a SIGSEGV."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow

READ_SIGNAL_STACK = """
import ctypes, gc, signal

class StackT(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

def signal_stack():
    stack = StackT()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
    return stack.sp
"""


@pytest.fixture(scope="module")
def xml(tmp_path_factory):
    """A one-ReLU IR with a dynamic `(B, H, W, 3)` input."""
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([-1, -1, -1, 3], np.float32)
    path = str(tmp_path_factory.mktemp("ov") / "relu.xml")
    ov.save_model(ov.Model([ops.relu(image)], [image]), path)
    return path


def run_child(code, xml):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", READ_SIGNAL_STACK + textwrap.dedent(code), xml],
                          capture_output=True, text=True, timeout=300, env=env)


def test_two_cores_dropped_in_the_order_they_were_made_leave_the_first_ones_stack(xml):
    """The cause, pinned to OpenVINO's CPU plugin: each Core's plugin installs
    its own alternate signal stack and, when destroyed, unmaps it and puts
    back the one it found, so the second Core restores the first one's
    already unmapped stack."""
    child = run_child("""
        import sys
        import openvino as ov
        first = ov.Core().compile_model(sys.argv[1], "CPU")
        first_stack = signal_stack()
        second = ov.Core().compile_model(sys.argv[1], "CPU")
        assert signal_stack() != first_stack
        del first; gc.collect()
        del second; gc.collect()
        print("left on the first stack:", signal_stack() == first_stack)
        """, xml)
    assert child.returncode == 0, child.stderr[-3000:]
    assert "left on the first stack: True" in child.stdout


def test_ctrl_c_after_openvino_models_come_and_go_raises_keyboard_interrupt(xml):
    """Models compiled by `compile_openvino` and `OpenVinoLogits`, dropped in
    the order they were made; then a Ctrl-C is Python's KeyboardInterrupt,
    not a SIGSEGV on a freed signal stack."""
    child = run_child("""
        import sys
        import numpy as np
        from danet_tf.deploy import export, openvino_runtime
        first = export.compile_openvino(sys.argv[1])
        second = openvino_runtime.OpenVinoLogits(sys.argv[1])
        assert second(np.ones((1, 8, 8, 3), np.float32)).shape == (1, 8, 8, 3)
        third = openvino_runtime.OpenVinoLogits(sys.argv[1], precision="bfloat16")
        del first; gc.collect()
        del second; gc.collect()
        del third; gc.collect()
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        """, xml)
    assert child.returncode == 0, (child.returncode, child.stderr[-3000:])
    assert child.stdout.strip().splitlines()[-1] == "KeyboardInterrupt"


def test_every_model_is_compiled_by_one_core(xml):
    from danet_tf.deploy import openvino_runtime

    logits = openvino_runtime.OpenVinoLogits(xml)
    assert logits.core is openvino_runtime.shared_core()
    assert openvino_runtime.OpenVinoLogits(xml).core is logits.core
