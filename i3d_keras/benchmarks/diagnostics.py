"""Checks that this machine computes I3D's convolutions and poolings right.

TensorFlow's CPU kernels differ by CPU: oneDNN dispatches other kernels on
AVX-512 and AMX CPUs than on AVX2 ones, and some of them are defective (see
`i3d_keras.models.convolution.onednn_backward_defect`). The checks here compare the
package's forward passes and gradients with float64 references computed
independently of those kernels (TensorFlow's float64 convolution, which runs on
its Eigen kernels; NumPy for pooling), each case in a child process, so that a
kernel that crashes the process is reported with its shape instead of ending
the check.

* `model_cases`: every distinct convolution and pooling configuration of I3D
  (stem included), at given clip lengths.
* `sweep_cases`: a grid of temporally strided convolutions and poolings, to map
  a defect's region on a new machine.
* `run_isolated`: runs cases in child processes; a crash or hang is a result.
* `machine_report`: CPU, GPU, TensorFlow/Keras/oneDNN versions and the paths
  the package takes here. `tools/doctor.py` prints it and runs the checks.

Example:

>>> from i3d_keras.benchmarks import diagnostics
>>> cases = diagnostics.model_cases(clip_lengths=(5, 16))
>>> results = diagnostics.run_isolated(cases)
>>> [r.summary() for r in results if not r.ok]
[]
"""

import dataclasses
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from i3d_keras.runtime import hardware

# Relative error (max |got - float64| / max |float64|) allowed per precision:
# float32 rounding of sums over up to ~10^4 terms stays near 1e-6 (3.2e-6 at
# most in `tools/doctor.py --sweep` on the project's AMD EPYC). In bfloat16 and
# float16 the kernels may accumulate in the low precision: TensorFlow's own
# bfloat16 Conv3D gradients came within 7.8e-2 of float64 over the sweep there
# (the 2D formulation's within 2.1e-2), float16 within 2.8e-3. The low
# precisions' bounds catch defects (NaN, errors of 1 and up), not rounding.
TOLERANCES = {"float32": 1e-5, "bfloat16": 0.15, "float16": 0.02}
# End to end through ~60 layers, ReLUs and max pools: a unit within rounding of
# a ReLU's kink or a max pool's tie legitimately changes its gradient, so the
# whole-model check catches defects (NaN, values off by orders of magnitude),
# not rounding.
MODEL_TOLERANCE = 1e-3
CLIP_LENGTHS = (1, 5, 7, 8, 16)
OPS = ("conv", "max", "avg", "two_stream")


@dataclasses.dataclass(frozen=True)
class Case:
    """One configuration to check against its float64 reference.

    Attributes:
        op: `"conv"` (`i3d_keras.models.convolution.conv3d`), `"max"` / `"avg"`
            (`i3d_keras.Pooling3D`) or `"two_stream"` (a small `TwoStreamI3D`
            whose stem sees `input_shape[1]` frames).
        input_shape: `(batch, time, height, width, channels)`.
        window: kernel or pool size `(t, h, w)`.
        strides: `(t, h, w)`.
        padding: `"same"` or `"valid"`.
        filters: output channels of a convolution.
        implementation: `"conv2d"` or `"conv3d"` (see `conv3d`).
        dtype: `"float32"`, `"bfloat16"` or `"float16"`: the compute dtype.
        training: pooling in training mode (its training-only paths).
        adaptive: the logits head's adaptive average pooling.
        unknown_dims: a convolution traced with batch, time and space unknown
            (as in serving signatures), so decided at run time.
        name: the layer it stands for (`"Conv3d_1a_7x7"`), for reports.
    """

    op: str
    input_shape: Tuple[int, ...]
    window: Tuple[int, int, int] = (1, 1, 1)
    strides: Tuple[int, int, int] = (1, 1, 1)
    padding: str = "same"
    filters: int = 0
    implementation: str = "conv2d"
    dtype: str = "float32"
    training: bool = True
    adaptive: bool = False
    unknown_dims: bool = False
    name: str = ""

    def __post_init__(self):
        for field, value, allowed in (("op", self.op, OPS), ("padding", self.padding,
                                      ("same", "valid")), ("dtype", self.dtype, tuple(TOLERANCES)),
                                      ("implementation", self.implementation,
                                       ("conv2d", "conv3d"))):
            if value not in allowed:
                raise ValueError(f"`{field}` must be one of {allowed}. "
                                 f"Received: {field}={value!r}")
        if len(self.input_shape) != 5:
            raise ValueError("`input_shape` must be (batch, time, height, width, channels). "
                             f"Received: input_shape={self.input_shape}")
        if self.op == "conv" and self.filters < 1:
            raise ValueError(f"A convolution needs filters >= 1. Received: filters={self.filters}")

    def describe(self) -> str:
        """`"Conv3d_1a_7x7: conv 7x7x7 stride 2x2x2 same, input 2x5x32x32x3, 8 filters,
        float32, conv2d"`."""
        shape = "x".join(str(d) for d in self.input_shape)
        if self.op == "two_stream":
            what = f"two-stream I3D, input {shape} (rgb) and flow, inference-mode gradients"
        else:
            window = "x".join(str(d) for d in self.window)
            stride = "x".join(str(d) for d in self.strides)
            what = f"{self.op} {window} stride {stride} {self.padding}, input {shape}"
            if self.op == "conv":
                what += f", {self.filters} filters, {self.implementation}"
                if self.unknown_dims:
                    what += ", traced with unknown dimensions"
            elif self.adaptive:
                what += ", adaptive"
            if self.op != "conv" and self.training:
                what += ", training"
        return f"{self.name + ': ' if self.name else ''}{what}, {self.dtype}"

    def to_json(self) -> Dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Dict) -> "Case":
        data = dict(data)
        for key in ("input_shape", "window", "strides"):
            data[key] = tuple(data[key])
        return cls(**data)


@dataclasses.dataclass
class Result:
    """The outcome of one `Case`.

    Attributes:
        case: the case.
        status: `"ok"`, `"wrong"` (an error above tolerance), `"nan"` (a
            non-finite value), `"crashed"` (the process died: `detail` has the
            signal and the last lines it printed), `"timeout"` or `"error"`
            (an exception: `detail`).
        errors: `{"output": e, "input gradient": e, ...}`: relative errors
            against the float64 reference.
        tolerance: the largest relative error accepted.
        detail: what went wrong, for the report.
        seconds: time the case took in its process.
    """

    case: Case
    status: str
    errors: Dict[str, float] = dataclasses.field(default_factory=dict)
    tolerance: float = 0.0
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        """One line: status, case, the largest error or what happened."""
        worst = ""
        if self.errors:
            name, value = max(self.errors.items(), key=lambda kv: _sortable(kv[1]))
            worst = f"; largest error {value:.1e} ({name}, tolerance {self.tolerance:.2g})"
        detail = f"; {self.detail}" if self.detail else ""
        return f"{self.status.upper():7s} {self.case.describe()}{worst}{detail}"

    def to_json(self) -> Dict:
        return {"case": self.case.to_json(), "status": self.status, "errors": self.errors,
                "tolerance": self.tolerance, "detail": self.detail, "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: Dict) -> "Result":
        return cls(Case.from_json(data["case"]), data["status"], data.get("errors", {}),
                   data.get("tolerance", 0.0), data.get("detail", ""), data.get("seconds", 0.0))


def _sortable(value: float) -> float:
    return float("inf") if value != value else value


# ---------------------------------------------------------------------------
# The cases.


def _layer_configurations(model) -> List[Dict]:
    """The distinct convolution / pooling configurations of a built model, in
    layer order, with the first layer's channels and name for each."""
    from i3d_keras.models import layers as i3d_layers  # noqa: PLC0415

    found, seen = [], set()
    for layer in model.layers:
        if isinstance(layer, i3d_layers.Conv3D):
            key = ("conv", tuple(layer.kernel_size), tuple(layer.strides), layer.padding)
            extra = dict(channels=int(layer.input.shape[-1]), filters=int(layer.filters))
        elif isinstance(layer, i3d_layers.Pooling3D):
            key = (layer.mode, tuple(layer.pool_size), tuple(layer.strides), layer.padding,
                   layer.adaptive)
            extra = dict(channels=int(layer.input.shape[-1]), filters=0)
        else:
            continue
        if key in seen:
            continue
        seen.add(key)
        found.append(dict(op=key[0], window=key[1], strides=key[2], padding=key[3],
                          adaptive=bool(key[4]) if len(key) > 4 else False,
                          name=layer.name.split("/")[-1], **extra))
    return found


def i3d_configurations(stream: str = "rgb") -> List[Dict]:
    """Every distinct convolution and pooling configuration of I3D (one stream).

    Returns:
        Dicts with `op`, `window`, `strides`, `padding`, `adaptive`, `name`
        (the first layer with it), `channels` and `filters`: for the RGB
        stream the stem (7x7x7, stride 2), 1x1x1 and 3x3x3 convolutions, the
        max pools (1x3x3 / 1x2x2, 3x3x3 / 2x2x2, 2x2x2 / 2x2x2, the Inception
        branches' 3x3x3 / 1) and the head's adaptive 2x7x7 average pool.
    """
    from i3d_keras.models import i3d as i3d_model  # noqa: PLC0415

    # The layers' configurations do not depend on the input size.
    return _layer_configurations(i3d_model.InceptionI3D(
        num_classes=10, stream=stream, frames=16, image_size=224))


def model_cases(clip_lengths: Sequence[int] = CLIP_LENGTHS,
                dtypes: Sequence[str] = ("float32",),
                implementations: Sequence[str] = ("conv2d",),
                batch: int = 2, max_channels: int = 32,
                two_stream_lengths: Sequence[int] = (5,)) -> List[Case]:
    """Cases for every distinct convolution and pooling of I3D at each clip length.

    The stem keeps its real input channels (3 for RGB, 2 for flow) and sees 32
    pixels square (a defect's region seen on a Xeon did not depend on the
    frame size); the other layers see 8x8 maps and at most `max_channels`
    channels in and out, so that the float64 references stay fast. Each
    layer's input has `clip_length` frames. First, a small `TwoStreamI3D` (16
    pixels) end to end at each of `two_stream_lengths` (its float64
    reference takes ~10 s at 7 frames, ~20 s at 16, on 2 cores).
    """
    configs = i3d_configurations("rgb")
    stem = configs[0]
    configs.insert(1, dict(stem, channels=2, name=f"{stem['name']} (flow)"))
    # The end-to-end checks first: the longest, started early on a worker.
    cases = [Case("two_stream", (1, time_length, 16, 16, 3), dtype=dtype, name="TwoStreamI3D")
             for time_length in two_stream_lengths for dtype in dtypes]
    for time_length in clip_lengths:
        for config in configs:
            is_stem = config is stem or config["name"].startswith(stem["name"])
            size = 32 if is_stem else 8
            channels = config["channels"] if is_stem else min(config["channels"], max_channels)
            # The stem's float64 gradients (Eigen) are slow: 8 filters.
            filters = 8 if is_stem else min(config["filters"], max_channels)
            shape = (batch, time_length, size, size, channels)
            for dtype in dtypes:
                if config["op"] == "conv":
                    for implementation in implementations:
                        cases.append(Case("conv", shape, config["window"], config["strides"],
                                          config["padding"], filters, implementation, dtype,
                                          name=config["name"]))
                else:
                    cases.append(Case(config["op"], shape, config["window"], config["strides"],
                                      config["padding"], dtype=dtype, adaptive=config["adaptive"],
                                      name=config["name"]))
    return cases


def sweep_cases(clip_lengths: Sequence[int] = tuple(range(1, 18)),
                sizes: Sequence[int] = (13, 16, 32), kernels: Sequence[int] = (3, 5, 7),
                strides: Sequence[int] = (1, 2), implementations: Sequence[str] = ("conv2d",),
                dtypes: Sequence[str] = ("float32",), channels: int = 3,
                filters: int = 8) -> List[Case]:
    """A grid of cubic convolutions ("same", batch 2) to map a kernel defect.

    The default grid (17 lengths x 3 frame sizes x 3 kernels x 2 strides) holds
    the shapes where oneDNN's AVX-512 gradients were seen to fail (7x7x7,
    stride 2, 5 and 7 frames) and those around them.
    """
    cases = []
    for k in kernels:
        for s in strides:
            for t in clip_lengths:
                for size in sizes:
                    for implementation in implementations:
                        for dtype in dtypes:
                            cases.append(Case("conv", (2, t, size, size, channels), (k, k, k),
                                              (s, s, s), "same", filters, implementation, dtype))
    return cases


# ---------------------------------------------------------------------------
# Checking one case (in the worker process).


def _rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    """`values` rounded to `dtype` and back to float64 (the reference's inputs)."""
    import ml_dtypes  # noqa: PLC0415 (NumPy's bfloat16; installed with TensorFlow)

    numpy_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    return np.asarray(values).astype(numpy_dtype).astype(np.float64)


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    got = np.asarray(got, np.float64)
    if got.shape != expected.shape:
        raise ValueError(f"Expected shape {expected.shape}. Received: {got.shape}")
    if not np.all(np.isfinite(got)):
        return float("nan")
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return float(np.max(np.abs(got - expected)) / scale) if scale > 0 else float(
        np.max(np.abs(got), initial=0.0))


def _output_gradient(shape) -> np.ndarray:
    # Varies per element and does not depend on the output's rounding.
    return np.sin(np.arange(int(np.prod(shape)), dtype=np.float64)).reshape(shape)


def _check_conv(case: Case, rng: np.random.Generator) -> Dict[str, float]:
    import tensorflow as tf  # noqa: PLC0415

    from i3d_keras.models import convolution  # noqa: PLC0415

    channels = case.input_shape[-1]
    x = _rounded(rng.standard_normal(case.input_shape), case.dtype)
    kernel = _rounded(rng.standard_normal((*case.window, channels, case.filters)), case.dtype)
    strides, padding = [1, *case.strides, 1], case.padding.upper()
    output_shape = tf.nn.conv3d(x, kernel, strides, padding).shape
    dy = _rounded(_output_gradient(output_shape), case.dtype)

    def outputs_and_gradients(x, kernel, dy, conv):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = conv(x, kernel)
        return [y, *tape.gradient(y, [x, kernel], output_gradients=dy)]

    expected = outputs_and_gradients(
        tf.constant(x), tf.constant(kernel), tf.constant(dy),
        lambda a, k: tf.nn.conv3d(a, k, strides, padding))

    def conv(a, k):
        return convolution.conv3d(a, k, case.strides, case.padding, case.implementation)

    shapes = ([None] * 4 + [channels], [None] * 4 + [case.filters]) if case.unknown_dims else (
        x.shape, dy.shape)
    got = tf.function(lambda a, k, g: outputs_and_gradients(a, k, g, conv), autograph=False,
                      input_signature=[tf.TensorSpec(shapes[0], case.dtype),
                                       tf.TensorSpec(kernel.shape, case.dtype),
                                       tf.TensorSpec(shapes[1], case.dtype)])(
        tf.constant(x, case.dtype), tf.constant(kernel, case.dtype), tf.constant(dy, case.dtype))
    return {name: _relative_error(g.numpy(), e.numpy()) for name, g, e in
            zip(("output", "input gradient", "kernel gradient"), got, expected)}


def _reference_pool(x: np.ndarray, dy_fn: Callable, case: Case):
    """float64 pooling and its input gradient in NumPy (TensorFlow semantics:
    "same" pads with values that never win a max and are not counted in a mean)."""
    batch, *dims, channels = x.shape
    window = list(case.window)
    if case.adaptive:
        window = [max(1, min(k, n)) for k, n in zip(window, dims)]
    starts, outs = [], []
    for n, k, s in zip(dims, window, case.strides):
        if case.padding == "same":
            out = -(-n // s)
            before = max((out - 1) * s + k - n, 0) // 2
        else:
            out, before = (n - k) // s + 1, 0
        outs.append(out)
        starts.append([i * s - before for i in range(out)])
    y = np.zeros((batch, *outs, channels))
    windows = {}
    for index in np.ndindex(*outs):
        ranges = [(max(starts[a][i], 0), min(starts[a][i] + window[a], dims[a]))
                  for a, i in enumerate(index)]
        block = x[:, ranges[0][0]:ranges[0][1], ranges[1][0]:ranges[1][1],
                  ranges[2][0]:ranges[2][1]]
        windows[index] = ranges
        y[(slice(None), *index)] = (block.max(axis=(1, 2, 3)) if case.op == "max"
                                    else block.mean(axis=(1, 2, 3)))
    dy = dy_fn(y.shape)
    dx = np.zeros_like(x)
    for index, ranges in windows.items():
        sl = (slice(None), *(slice(a, b) for a, b in ranges))
        block = x[sl]
        g = dy[(slice(None), *index)]  # [batch, channels]
        if case.op == "max":
            flat = block.reshape(batch, -1, channels)
            # TensorFlow routes a tie to the first maximum in the window.
            first = np.argmax(flat, axis=1)
            mask = np.zeros_like(flat)
            np.put_along_axis(mask, first[:, None, :], 1.0, axis=1)
            dx[sl] += (mask * g[:, None, :]).reshape(block.shape)
        else:
            dx[sl] += g[:, None, None, None, :] / block[0, ..., 0].size
    return y, dx


def _check_pool(case: Case, rng: np.random.Generator) -> Dict[str, float]:
    import tensorflow as tf  # noqa: PLC0415

    from i3d_keras.models import layers as i3d_layers  # noqa: PLC0415

    x = _rounded(rng.standard_normal(case.input_shape), case.dtype)
    layer = i3d_layers.Pooling3D(case.window, case.strides, case.padding, mode=case.op,
                                 adaptive=case.adaptive, dtype=case.dtype)

    def dy_fn(shape):
        return _rounded(_output_gradient(shape), case.dtype)

    expected = _reference_pool(x, dy_fn, case)

    @tf.function(autograph=False)
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=case.training)
        dy = tf.constant(dy_fn(y.shape), y.dtype)
        return y, tape.gradient(y, x, output_gradients=dy)

    got = forward_backward(tf.constant(x, case.dtype))
    return {name: _relative_error(g.numpy(), e) for name, g, e in
            zip(("output", "input gradient"), got, expected)}


_TWO_STREAM_MODELS = {}


def _two_stream_model(size: int, policy: str):
    """A `TwoStreamI3D` for any clip length, built once per process and policy."""
    import keras  # noqa: PLC0415

    from i3d_keras.models import i3d as i3d_model  # noqa: PLC0415
    from i3d_keras.runtime import precision  # noqa: PLC0415

    if (size, policy) not in _TWO_STREAM_MODELS:
        with precision.policy_scope(policy):
            keras.utils.set_random_seed(0)
            rgb = i3d_model.InceptionI3D(10, "rgb", frames=None, image_size=size)
            flow = i3d_model.InceptionI3D(10, "flow", frames=None, image_size=size)
            _TWO_STREAM_MODELS[size, policy] = i3d_model.TwoStreamI3D(rgb, flow)
    return _TWO_STREAM_MODELS[size, policy]


def _check_two_stream(case: Case, rng: np.random.Generator) -> Dict[str, float]:
    """A small two-stream I3D against its float64 copy (same weights): logits,
    and the gradients of a loss with respect to every weight and both inputs,
    in inference mode (BatchNorm's moving statistics), so that every
    convolution and pooling of both streams is differentiated."""
    import tensorflow as tf  # noqa: PLC0415

    _, time_length, size, _, _ = case.input_shape
    from i3d_keras.runtime import precision  # noqa: PLC0415

    policy = precision.POLICIES[case.dtype]
    model = _two_stream_model(size, policy)
    reference = _two_stream_model(size, "float64")
    # Keras' (seeded) initial weights: Glorot-scaled kernels, BatchNorm
    # moving statistics 0 and 1, so activations keep their scale.
    reference.set_weights(model.get_weights())
    inputs = {"rgb": _rounded(rng.uniform(-1, 1, (1, time_length, size, size, 3)), case.dtype),
              "flow": _rounded(rng.uniform(-1, 1, (1, time_length, size, size, 2)), case.dtype)}

    def logits_and_gradients(model, dtype):
        feed = {k: tf.constant(v, dtype) for k, v in inputs.items()}
        with tf.GradientTape() as tape:
            tape.watch(list(feed.values()))
            logits = tf.cast(model(feed, training=False)["logits"], tf.float64)
            loss = tf.reduce_sum(logits * tf.sin(tf.range(10, dtype=tf.float64)))
        variables = [w for w in model.trainable_weights]
        grads = tape.gradient(loss, [*feed.values(), *variables])
        return logits, grads, [v.path for v in variables]

    # Eager, both: tracing the gradients of two I3Ds takes longer than the
    # check (the kernels are the ones a traced training step runs).
    got = logits_and_gradients(model, case.dtype)
    expected = logits_and_gradients(reference, "float64")
    errors = {"logits": _relative_error(got[0].numpy(), expected[0].numpy())}
    names = ["rgb input", "flow input", *expected[2]]
    got_grads = [np.asarray(tf.convert_to_tensor(g), np.float64) for g in got[1]]
    expected_grads = [tf.convert_to_tensor(e).numpy() for e in expected[1]]
    for kind, picked in (("input gradients", slice(0, 2)), ("weight gradients", slice(2, None))):
        if case.dtype != "float32":
            # In bfloat16 or float16 the rounded activations flip ReLU gates and
            # max-pool winners, which moves single gradients far more than
            # rounding: the gradients as a whole must point the same way
            # (1 - cosine similarity; garbage gives ~1, NaN gives NaN).
            g = np.concatenate([x.ravel() for x in got_grads[picked]])
            e = np.concatenate([x.ravel() for x in expected_grads[picked]])
            cosine = float(np.dot(g, e) / (np.linalg.norm(g) * np.linalg.norm(e)))
            errors[f"{kind} (1 - cosine)"] = 1.0 - cosine if np.isfinite(cosine) else float("nan")
            continue
        # Relative to the largest gradient of its kind (inputs, weights).
        scale = max(float(np.max(np.abs(e))) for e in expected_grads[picked])
        worst, worst_name = -1.0, ""
        for name, g, e in zip(names[picked], got_grads[picked], expected_grads[picked]):
            error = (float(np.max(np.abs(g - e))) / scale if np.all(np.isfinite(g))
                     else float("inf"))
            if error > worst:
                worst, worst_name = error, name
        errors[f"{kind} ({worst_name})"] = worst if worst != float("inf") else float("nan")
    return errors


def check_case(case: Case, seed: int = 0) -> Result:
    """Checks one case in this process (see `run_isolated` for child processes)."""
    tolerance = (MODEL_TOLERANCE if case.op == "two_stream" and case.dtype == "float32"
                 else TOLERANCES[case.dtype])
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    try:
        check = {"conv": _check_conv, "max": _check_pool, "avg": _check_pool,
                 "two_stream": _check_two_stream}[case.op]
        errors = check(case, rng)
    except Exception as error:  # noqa: BLE001 (a kernel error is a result)
        return Result(case, "error", tolerance=tolerance,
                      detail=f"{type(error).__name__}: {str(error).splitlines()[0][:300]}",
                      seconds=time.perf_counter() - start)
    if any(value != value for value in errors.values()):
        status = "nan"
    elif max(errors.values()) > tolerance:
        status = "wrong"
    else:
        status = "ok"
    return Result(case, status, errors, tolerance, seconds=time.perf_counter() - start)


# ---------------------------------------------------------------------------
# Child processes.


def _worker_main() -> None:
    """Reads cases (JSON lines) on stdin, one at a time; writes a "started"
    line, then the result line, for each."""
    import i3d_keras  # noqa: F401,PLC0415 (TensorFlow settings before TF loads)

    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not mix with the results
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        if not line.strip():
            continue
        case = Case.from_json(json.loads(line))
        out.write(json.dumps({"started": True}) + "\n")
        out.flush()
        out.write(json.dumps(check_case(case).to_json()) + "\n")
        out.flush()


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class _Child:
    """One checking process: sends a case, waits for its result."""

    def __init__(self, env):
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-c",
             "from i3d_keras.benchmarks import diagnostics; diagnostics._worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=env)
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.cases_started = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def check(self, case: Case, timeout: float) -> Result:
        try:
            self.process.stdin.write(json.dumps(case.to_json()) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died: reported below
        try:
            started = self._lines.get(timeout=timeout)
            if started is not None:
                self.cases_started += 1
            line = self._lines.get(timeout=timeout) if started is not None else None
        except queue.Empty:
            self.close()
            return Result(case, "timeout", detail=f"no result within {timeout:.0f} s")
        if line is None:
            self.process.wait()
            return Result(case, "crashed", detail=self._last_words(
                _describe_exit(self.process.returncode)))
        return Result.from_json(json.loads(line))

    def _last_words(self, what: str) -> str:
        self._stderr.seek(0)
        tail = [t for t in self._stderr.read().splitlines() if t.strip()][-3:]
        return (what + (f" ({' | '.join(tail)})" if tail else ""))[:600]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self):
        if self.alive:
            self.process.kill()
        self.process.wait()
        self._stderr.close()


def run_isolated(cases: Sequence[Case], *, timeout: float = 300.0, workers: int = 2,
                 env: Optional[Dict[str, str]] = None,
                 on_result: Optional[Callable[[Result], None]] = None) -> List[Result]:
    """Checks `cases` in child processes: a crash is a result, not the end.

    `workers` child processes take the cases in order, one at a time. If one
    dies (a kernel's heap corruption, a segmentation fault) or a case runs
    past `timeout` seconds, that case gets the status `"crashed"` or
    `"timeout"` with the signal and the last lines the child printed, and a
    new child goes on with the next case. A child that dies before its first
    case (TensorFlow fails to load) fails every case left, with its reason.

    Args:
        cases: the cases.
        timeout: seconds one case may take (the first also loads TensorFlow).
        workers: child processes at once (two use both cores of a 2-core
            machine while one of them traces).
        env: the children's environment (default: this process's; kernel
            library settings such as `TF_ENABLE_ONEDNN_OPTS` follow).
        on_result: called with each result as it arrives (from the calling
            thread's workers, one at a time).

    Returns:
        One `Result` per case, in order.
    """
    results: List[Optional[Result]] = [None] * len(cases)
    todo = list(enumerate(cases))[::-1]
    lock = threading.Lock()
    broken: List[str] = []

    def take():
        with lock:
            return todo.pop() if todo and not broken else None

    def record(index, result):
        with lock:
            results[index] = result
            if on_result:
                on_result(result)

    def work():
        child = None
        try:
            while True:
                item = take()
                if item is None:
                    return
                index, case = item
                if child is None or not child.alive:
                    if child is not None:
                        child.close()
                    child = _Child(env)
                result = child.check(case, timeout)
                if result.status == "crashed" and child.cases_started == 0:
                    with lock:
                        broken.append(f"the check process {result.detail}, before its first "
                                      "case")
                    result = Result(case, "error", detail=broken[0])
                record(index, result)
        finally:
            if child is not None:
                child.close()

    threads = [threading.Thread(target=work, daemon=True)
               for _ in range(max(1, min(workers, len(cases))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, case in enumerate(cases):
        if results[index] is None:  # not started: a child could not load TensorFlow
            record(index, Result(case, "error", detail=broken[0] if broken else "not run"))
    return results


# ---------------------------------------------------------------------------
# The machine.


_ONEDNN_PROBE = """
import i3d_keras, tensorflow as tf
x = tf.ones([1, 4, 8, 8, 3]); k = tf.ones([3, 3, 3, 3, 4])
with tf.GradientTape() as tape:
    tape.watch([x, k]); y = tf.nn.conv3d(x, k, [1, 2, 2, 2, 1], "SAME")
tape.gradient(y, [x, k])
"""


def _start_onednn_probe() -> subprocess.Popen:
    """A child that runs one small 3D convolution gradient with oneDNN's
    verbose log on (read by `_onednn_probe_result`)."""
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    return subprocess.Popen([sys.executable, "-c", _ONEDNN_PROBE], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _onednn_probe_result(probe: subprocess.Popen, timeout: float = 120.0) -> Dict:
    """`parse_onednn_verbose` of the probe's log (`{}` if it hangs)."""
    try:
        out, _ = probe.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        probe.kill()
        probe.communicate()
        return {}
    return parse_onednn_verbose(out)


def parse_onednn_verbose(text: str) -> Dict:
    """oneDNN's version, the instruction set it dispatches and the kernels it
    picked for convolution gradients, from its verbose log (`ONEDNN_VERBOSE=1`).

    Reads both log formats (`onednn_verbose,info,...` and oneDNN 3's
    `onednn_verbose,v1,info,...`). The instruction set's name may hold commas
    ("Intel AVX-512 with float16, Intel DL Boost and bfloat16 support" on
    Xeons with AVX512-FP16).

    Returns:
        `{"version": "v3.7.3", "isa": "...", "kernels": {"backward_data":
        "jit:...", ...}}`, each key only when the log gives it.
    """
    info = {}
    for line in text.splitlines():
        fields = line.strip().split(",")
        if fields[0] != "onednn_verbose":
            continue
        if "info" in fields[1:3]:
            message = ",".join(fields[fields.index("info") + 1:]).strip()
            if message.startswith("oneDNN v"):
                info["version"] = message.split()[1]
            elif message.startswith("cpu,isa:"):
                info["isa"] = message[len("cpu,isa:"):].strip()
        elif len(fields) > 7 and fields[5] == "convolution" and fields[7].startswith("backward"):
            info.setdefault("kernels", {})[fields[7]] = fields[6]
    return info


def machine_report() -> Dict:
    """What the package runs on here and the paths it takes.

    Returns:
        A dict: `cpu` (model, kind, notable flags, cores), `gpus`, `python`,
        `tensorflow`, `keras`, `onednn` (on/off, the setting, version and
        instruction set when on), `paths` (the convolution implementation,
        gradient kernels, precision under "auto" and whether the oneDNN
        defect routing applies).
    """
    probe = _start_onednn_probe()  # loads TensorFlow while this process does
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from i3d_keras.models import convolution  # noqa: PLC0415
    from i3d_keras.runtime import precision  # noqa: PLC0415

    cpu = hardware.cpu_info()
    onednn = convolution.onednn_enabled()
    report = {
        "cpu": {"model": cpu.model, "kind": cpu.kind, "cores": cpu.cores,
                "flags": cpu.notable_flags()},
        "gpus": [{"name": name, "compute_capability": cc} for name, cc in hardware.gpus()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": {"enabled": onednn,
                   "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset)")},
    }
    if onednn:
        report["onednn"].update(_onednn_probe_result(probe))
    else:
        probe.kill()
        probe.communicate()
    implementation = convolution.resolve_implementation("auto")
    if implementation == "conv3d":
        gradients = "TensorFlow's Conv3D (GPU)"
    elif onednn:
        gradients = ("oneDNN's 3D input gradient; kernel gradients as matmuls (stride 1) "
                     "or oneDNN's 3D kernel gradient")
    else:
        gradients = "2D formulation gradients (Eigen)"
    setting = os.environ.get(convolution.WORKAROUND_ENV, "auto")
    if convolution.onednn_defect_possible():
        routing = ("on: oneDNN's 3D gradient kernels are avoided for temporally strided "
                   "kernels on clips no longer than the kernel (I3D's stem on <= 7 frames); "
                   "TensorFlow's 2D gradient kernels there")
    else:
        routing = "off: not needed here (no AVX-512 oneDNN kernels)"
    if setting.strip().lower() not in ("", "auto"):
        routing += f" ({convolution.WORKAROUND_ENV}={setting})"
    report["paths"] = {
        "convolution": implementation,
        "gradients": gradients,
        "precision (auto)": "{} ({})".format(*precision.choose_precision("auto")),
        "oneDNN defect routing": routing,
    }
    return report


def precision_timing(auto_policy: str, *, gpus: Optional[Sequence] = None,
                     measure: Optional[Callable[[], Dict]] = None) -> Dict:
    """float32 against bfloat16 timed on this CPU, and whether `auto` picks the faster.

    Times `i3d_keras.runtime.tuning.measure_precisions` (I3D's Mixed_3b and
    Mixed_3c, forward pass and training step, a few seconds) and compares
    with `auto_policy`, the precision `auto` picks here. With a GPU nothing is
    timed: `auto` decides by the GPU's compute capability.

    Args:
        auto_policy: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        gpus: as `hardware.gpus()` (default: that).
        measure: what times (default `tuning.measure_precisions`).

    Returns:
        `{"timings", "bfloat16_speed", "auto", "auto_is_faster", "summary"}`,
        or `{"skipped": why}`, or `{"error": what}` when the measurement failed.
        `auto_is_faster` is None where neither is clearly faster.
    """
    from i3d_keras.runtime import tuning  # noqa: PLC0415

    gpus = hardware.gpus() if gpus is None else gpus
    if gpus:
        return {"skipped": "a GPU decides auto's precision by its compute capability"}
    try:
        timings = (measure or tuning.measure_precisions)()
        if not tuning.valid_timings(timings):
            raise ValueError(f"no timings in their form. Received: {timings!r}"[:200])
    except Exception as error:  # noqa: BLE001 (a report, not a check)
        return {"error": f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"}
    speed = tuning.bfloat16_speed(timings)
    if auto_policy == "mixed_bfloat16":
        faster = speed >= 1.0
    elif tuning.prefers_bfloat16(timings):
        faster = False
    else:
        faster = True if speed < 1.0 else None  # within SPEEDUP_NEEDED: neither clearly
    verdict = {True: "is the faster one", False: "is not the faster one here",
               None: f"is as fast (bfloat16 not {tuning.SPEEDUP_NEEDED:.2f}x faster)"}[faster]
    return {"timings": timings, "bfloat16_speed": speed, "auto": auto_policy,
            "auto_is_faster": faster,
            "summary": f"{tuning.describe(timings)}; auto's choice, {auto_policy}, {verdict}"}


__all__ = ["CLIP_LENGTHS", "Case", "MODEL_TOLERANCE", "Result", "TOLERANCES", "check_case",
           "i3d_configurations", "machine_report", "model_cases", "parse_onednn_verbose",
           "precision_timing", "run_isolated", "sweep_cases"]
