"""Running an OpenVINO IR (float32 or int8) as a logits function.

OpenVINO compiles a dynamic-shape model into kernels that work for any
shape, and a model reshaped to one static shape into kernels specialised
for it (on DANet-101 at 512x512, bf16: 1.11 s against 1.23-1.45 s
dynamic). `OpenVinoLogits` compiles one model per input shape it sees and
keeps the last few: `Segmenter` calls it on windows of one size, so a whole
sliding-window prediction reuses one compiled model.

Every model is compiled by the one `openvino.Core` of the process
(`shared_core`): each Core loads its own CPU plugin, and each CPU plugin
installs an alternate signal stack on the thread that uses it and, when it
is destroyed, puts back the stack that was there before it
(`ov::intel_cpu::SigAltStackSetup`). Two Cores destroyed in the order they
were made leave the thread on the first one's freed stack; Python runs its
signal handlers there, so the next Ctrl-C ends the process with SIGSEGV
instead of `KeyboardInterrupt`.
"""

import collections
import functools
import threading

import numpy as np

# What `--precision` asks of the CPU plugin. An int8 IR holds its precision in
# its FakeQuantize nodes; the hint sets the precision of what is left in float.
HINTS = {"float32": "f32", "bfloat16": "bf16"}


@functools.cache
def shared_core():
    """The process's one `openvino.Core` (see the module docstring)."""
    import openvino as ov

    return ov.Core()


def compile_for_shape(core, model, precision, shape=None):
    """`model` compiled for the CPU at `precision`: for `shape` (a static
    `(B, H, W, 3)`) on a reshaped copy, or as it is (dynamic) when `None`.
    `model` is an `openvino.Model`, or an `.xml` path when `shape` is `None`."""
    if shape is not None:
        model = model.clone()
        model.reshape([int(d) for d in shape])
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": HINTS[precision]})


class OpenVinoLogits:
    """A callable normalised `(B, H, W, 3)` float32 -> logits `(B, H, W, C)`
    float32, for an OpenVINO `.xml` (float32 or int8).

    Args:
        path: str. The `.xml` (its `.bin` beside it).
        precision: `"float32"` or `"bfloat16"`, the inference precision hint.
        static_shapes: bool. `True` compiles once per input shape (a model
            reshaped to it); `False` compiles the dynamic model once.
        cache_size: int. Compiled shapes kept (least recently used dropped).

    Calls are serialised by a lock, so that threads sharing the function
    (Beam's shared model) neither compile a shape twice nor share an infer
    request; the CPU plugin spreads one call over all cores.
    """

    def __init__(self, path, precision="float32", static_shapes=True, cache_size=4):
        if precision not in HINTS:
            raise ValueError(f"precision must be one of {tuple(HINTS)}. Received: {precision!r}")
        self.core = shared_core()
        self.model = self.core.read_model(path)
        self.precision = precision
        self.static_shapes = static_shapes
        self.cache_size = max(int(cache_size), 1)
        self._compiled = collections.OrderedDict()
        self._lock = threading.Lock()
        self.num_classes = int(self.model.output(0).get_partial_shape()[-1].get_length())

    def compiled_for(self, shape):
        """The compiled model for inputs of `shape` (compiled on first use)."""
        key = tuple(int(d) for d in shape) if self.static_shapes else None
        if key in self._compiled:
            self._compiled.move_to_end(key)
            return self._compiled[key]
        compiled = compile_for_shape(self.core, self.model, self.precision, key)
        self._compiled[key] = compiled
        while len(self._compiled) > self.cache_size:
            self._compiled.popitem(last=False)
        return compiled

    def __call__(self, images):
        images = np.ascontiguousarray(images, np.float32)
        with self._lock:
            compiled = self.compiled_for(images.shape)
            result = compiled(images)
            return np.asarray(result[compiled.output(0)], np.float32)
