"""Compute precisions: the choices, the check, and what this CPU has.

`"auto"` (the inference commands' default) becomes a concrete choice in
`danet_tf.deploy.loading.choose_precision`; here are the facts it reads.
"""

import contextlib

import keras

PRECISIONS = ("float32", "bfloat16")
CHOICES = ("auto", *PRECISIONS)

# The CPU features that decide which precision is fastest, in the order the
# benchmarks print them.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
             "amx_int8")


def check_precision(precision, choices=PRECISIONS):
    """Refuses a precision outside `choices` in one line."""
    if precision not in choices:
        raise ValueError(f"--precision must be one of {choices}. Received: {precision!r}")
    return precision


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The `CPU_FLAGS` this CPU has (empty where `/proc/cpuinfo` is not readable)."""
    try:
        with open(cpuinfo) as f:
            flags = set(f.read().split())
    except OSError:
        return ()
    return tuple(flag for flag in CPU_FLAGS if flag in flags)


def cpu_has_native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU has bfloat16 matrix units (AMX-BF16), where bfloat16
    inference is faster than float32.

    AVX512-BF16 alone is not enough: without `amx_bf16`, bfloat16 ran slower
    than float32 in Keras, OpenVINO and PyTorch (docs/performance.md,
    "Design choices measured").
    """
    return "amx_bf16" in cpu_flags(cpuinfo)


def int8_class(flags):
    """The CPU's int8 class, as the speed floors name them: `"AMX-INT8"`,
    `"AVX-512 VNNI"`, `"AVX-VNNI"`, `"AVX2"` or `"other"`."""
    for flag, name in (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX-512 VNNI"),
                       ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2")):
        if flag in flags:
            return name
    return "other"


@contextlib.contextmanager
def global_dtype_policy(policy):
    """Builds layers under `policy` (sublayers read the global policy)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
