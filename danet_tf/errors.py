"""Errors as users read them: one line, whatever raised them."""

import re


def one_line(error):
    """The message a user needs, on one line.

    Errors raised inside tf.data (`tf.numpy_function`) reach Python wrapped in
    a TensorFlow error whose text holds the original `SomeError: message`.
    """
    text = str(error)
    found = re.findall(r"\b(\w*Error): (.+)", text)
    if found and type(error).__module__.startswith("tensorflow"):
        text = found[-1][1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines) if lines else type(error).__name__
