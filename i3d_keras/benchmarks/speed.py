"""Speed measurements of I3D: forward pass, training step, memory, matmul peak.

Timings are medians of repeated runs after a warm-up (tracing) run; the
machine's float32 matmul throughput is measured in the same run so that the
model's effective GFLOP/s can be read as a fraction of what the machine does.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(the network measured); `receptive_fields` counts its multiply-adds.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from i3d_keras.models import convolution
from i3d_keras.utils import outputs, plotting
from i3d_keras.models import i3d as i3d_model
from i3d_keras.models import receptive_field


class PyTorchError(RuntimeError):
    """The PyTorch reference cannot run: no such Python, no `torch`, or it failed."""


def _median_seconds(fn, repeats):
    fn()  # warm-up: tracing, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def matmul_gflops(size=2048, repeats=5, dtype="float32"):
    """Matrix-multiply throughput of this machine in `dtype` (GFLOP/s).

    `"bfloat16"` is the peak of Keras' `mixed_bfloat16` policy: on CPUs with
    AMX-BF16 or AVX512-BF16 oneDNN runs it in hardware, elsewhere TensorFlow
    emulates it (far below float32).
    """
    a = tf.cast(tf.random.uniform([size, size]), dtype)
    b = tf.cast(tf.random.uniform([size, size]), dtype)
    matmul = tf.function(lambda: tf.linalg.matmul(a, b))
    seconds, _ = _median_seconds(lambda: matmul().numpy(), repeats)
    return 2 * size**3 / seconds / 1e9


def model_macs(model, input_shape):
    """Multiply-adds per clip of `model` for one `input_shape` (without batch)."""
    return sum(r.macs for r in receptive_field.receptive_fields(model, input_shape=input_shape))


def time_forward(model, frames, image_size=224, repeats=3, xla=False, device=None):
    """Seconds per clip (batch 1) and effective GFLOP/s of the forward pass."""
    shape = (frames, image_size, image_size, model.inputs[0].shape[-1])
    clip = tf.random.uniform((1, *shape), -1, 1)
    forward = tf.function(lambda x: model(x, training=False), jit_compile=xla)
    with tf.device(device) if device else _nullcontext():
        seconds, runs = _median_seconds(lambda: forward(clip).numpy(), repeats)
    macs = model_macs(model, shape)
    return {"seconds": seconds, "runs": runs, "gmacs": macs / 1e9,
            "effective_gflops": 2 * macs / seconds / 1e9}


def time_train_step(model, batch=2, frames=16, image_size=224, repeats=3, xla=False):
    """Seconds per SGD step (forward + backward + update, BatchNorm in training)."""
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x = tf.random.uniform((batch, frames, image_size, image_size, model.inputs[0].shape[-1]), -1, 1)
    y = tf.zeros([batch], tf.int32)

    @tf.function(jit_compile=xla)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    seconds, runs = _median_seconds(lambda: step(x, y).numpy(), repeats)
    shape = (frames, image_size, image_size, model.inputs[0].shape[-1])
    macs = model_macs(model, shape) * batch
    # Backward is about twice the forward's multiply-adds.
    return {"seconds": seconds, "runs": runs, "batch": batch, "frames": frames,
            "effective_gflops": 3 * 2 * macs / seconds / 1e9}


def litert_threads():
    """The threads TensorFlow's CPU kernels use here (its default: every core
    this process may run on), given to LiteRT so that both use the same."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


#: Run in a fresh process: the resident memory a LiteRT file adds, loaded and
#: run on one clip, without TensorFlow's own memory in the way.
_LITERT_RESIDENT = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
def status(key):  # kB; VmHWM: this process's peak since exec (ru_maxrss keeps the parent's)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
before = status("VmRSS")
interpreter = Interpreter(model_path=sys.argv[1], num_threads=int(sys.argv[2]))
interpreter.allocate_tensors()
for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
interpreter.invoke()
print((max(status("VmHWM"), status("VmRSS")) - before) * 1024)
"""


def litert_resident_mb(path, num_threads=1):
    """Resident memory (MB) a LiteRT file adds to a process that loads it and runs one clip.

    Measured in a fresh Python process (Linux: `/proc/self/status`): the file's
    weights, XNNPACK's packed copy of them, its workspace and LiteRT's arena.
    `None` where it cannot be measured (not Linux, or the child failed).
    """
    if not os.path.exists("/proc/self/status"):
        return None
    out = subprocess.run([sys.executable, "-c", _LITERT_RESIDENT, str(path), str(num_threads)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        return None
    return int(out.stdout.split()[-1]) / 1e6


def time_litert(model, frames=16, image_size=224, repeats=3, num_threads=None,
                quantizations=("float32",), calibration_clips=2):
    """Seconds per clip of LiteRT files of `model` against TF, same clip, same run.

    Converts `model` (fixed shape, batch 1) with
    `i3d_keras.export.exporters.export_tflite` in each quantisation, then times
    TF's forward pass and each file in the standalone `ai-edge-litert`
    interpreter (XNNPACK on) in turns, round by round, so that the ratios
    compare runs under the same load. Records how XNNPACK splits each file
    (`exporters.litert_delegation`), its size, its memory (the activation
    arena planned from the file, `litert_memory.litert_memory`, and the
    resident memory it adds to a process, `litert_resident_mb`) and its
    logits against Keras.

    Args:
        model: a one-stream model ending at its logits.
        frames, image_size: the clip.
        repeats: timed rounds (medians reported), after one warm-up round.
        num_threads: LiteRT threads (default: `litert_threads()`, TF's).
        quantizations: `exporters.TFLITE_QUANTIZATIONS` to time.
        calibration_clips: random clips calibrating `"int8"` (the timing does
            not depend on the calibration; the agreement printed then does).

    Returns:
        `{"frames", "threads", "tf_seconds", "tf_runs", "quantizations": {q:
        {"seconds", "runs", "over_tf", "partitions", "outside", "size_mb",
        "arena_mb", "resident_mb", "max_abs_logit_diff", "top1_agreement"}}}`,
        and the first
        quantisation's `litert_seconds`, `litert_over_tf`, `partitions`,
        `max_abs_logit_diff`, `top1_agreement` at the top.

    Example:

    >>> time_litert(InceptionI3D(400, frames=None), 16, quantizations=("float32", "float16"))
    ... # doctest: +SKIP
    """
    import tempfile  # noqa: PLC0415

    from i3d_keras.export import exporters, litert_memory  # noqa: PLC0415

    num_threads = num_threads or litert_threads()
    channels = model.inputs[0].shape[-1]
    key = "rgb" if channels == 3 else "flow"
    rng = np.random.default_rng(0)
    shape = (1, frames, image_size, image_size, channels)
    clip = rng.uniform(-1, 1, shape).astype("float32")
    forward = tf.function(lambda x: model(x, training=False))
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for quantization in quantizations:
            extra = {}
            if quantization == "int8":
                extra["representative_dataset"] = [
                    rng.uniform(-1, 1, shape[1:]).astype("float32")
                    for _ in range(calibration_clips)]
            path = exporters.export_tflite(model, f"{tmp}/i3d_{quantization}.tflite",
                                           quantization=quantization, frames=frames,
                                           image_size=image_size, **extra)
            delegation = exporters.litert_delegation(path, num_threads=num_threads)
            report = exporters.verify_tflite(model, path, {key: clip})
            files[quantization] = {
                "interpreter": exporters.litert_interpreter(path, num_threads=num_threads),
                "partitions": delegation["partitions"], "outside": delegation["outside"],
                "size_mb": os.path.getsize(path) / 1e6,
                "arena_mb": litert_memory.litert_memory(path)["arena_mb"],
                "resident_mb": litert_resident_mb(path, num_threads), **report}
        runs = {"tf": []}
        runs.update({q: [] for q in files})
        for round_ in range(repeats + 1):  # round 0 warms up
            start = time.perf_counter()
            forward(clip).numpy()
            if round_:
                runs["tf"].append(time.perf_counter() - start)
            for quantization, entry in files.items():
                start = time.perf_counter()
                exporters.run_litert(entry["interpreter"], {key: clip})
                if round_:
                    runs[quantization].append(time.perf_counter() - start)
    tf_seconds = statistics.median(runs["tf"])
    result = {"frames": frames, "threads": num_threads, "tf_seconds": tf_seconds,
              "tf_runs": runs["tf"], "quantizations": {}}
    for quantization, entry in files.items():
        entry.pop("interpreter")
        seconds = statistics.median(runs[quantization])
        result["quantizations"][quantization] = {
            "seconds": seconds, "runs": runs[quantization], "over_tf": seconds / tf_seconds,
            **entry}
    first = result["quantizations"][quantizations[0]]
    result.update(litert_seconds=first["seconds"], litert_runs=first["runs"],
                  litert_over_tf=first["over_tf"], partitions=first["partitions"],
                  max_abs_logit_diff=first["max_abs_logit_diff"],
                  top1_agreement=first["top1_agreement"])
    return result


def time_pytorch(frames=(64,), image_size=224, repeats=3, train_batch=2, train_frames=16,
                 python=None, autocast=None):
    """Times the same network in PyTorch, in a child process.

    Builds I3D from `i3d_keras.models.i3d.ARCHITECTURE` with `torch.nn` the way the
    PyTorch ports of DeepMind's release do (`i3d_keras/benchmarks/pytorch_reference.py`)
    and times its forward pass and training step like `time_forward` and
    `time_train_step` (batch 1 forward without gradients; SGD step with
    BatchNorm in training; medians after a warm-up run).

    Args:
        frames: clip lengths of the forward-pass measurements.
        image_size: frame size.
        repeats: timed runs per measurement.
        train_batch: batch of the training step (None: skip it).
        train_frames: clip length of the training step.
        python: the Python that has `torch` (default: this one). The child
            imports neither TensorFlow nor this package.
        autocast: `"bfloat16"`: time under `torch.autocast(bfloat16)` (the
            counterpart of Keras' `mixed_bfloat16`); None: float32.

    Returns:
        `{"torch": version, "threads": n, "forward": {frames: {"seconds",
        "runs"}}, "train_step": {"seconds", "runs"}}`.

    Raises:
        PyTorchError: `python` cannot run, has no `torch`, or the child failed.
    """
    config = {"architecture": i3d_model.ARCHITECTURE, "frames": [int(f) for f in frames],
              "image_size": image_size, "repeats": repeats, "train_batch": train_batch,
              "train_frames": train_frames, "autocast": autocast}
    return _run_reference(python, config)


def pytorch_logits(model, clips, python=None):
    """Logits of the PyTorch reference with `model`'s weights (to check it is
    the same network): `clips` `[batch, time, h, w, channels]`, float32.

    `model` is an `InceptionI3D` (RGB or flow, any number of classes); the
    reference gets its kernels, BatchNorm offsets and statistics and the
    logits bias.
    """
    import tempfile  # noqa: PLC0415

    endpoints = [name for name, _, _ in i3d_model.ARCHITECTURE]

    def module_order(layer):
        # The reference's unit order: endpoints in order; in a block, branches
        # 0-3 and the 1x1 before the 3x3; the logits last.
        name = layer.name
        endpoint = next((i for i, e in enumerate(endpoints) if name.startswith(e + "_")),
                        len(endpoints))
        branch = int(name.split("Branch_")[1][0]) if "Branch_" in name else 0
        return endpoint, branch, "3x3" in name

    convs = sorted((layer for layer in model.layers
                    if isinstance(layer, keras.layers.Conv3D)), key=module_order)
    layers = {layer.name: layer for layer in model.layers}
    arrays = {}
    for i, conv in enumerate(convs):
        arrays[f"{i}_kernel"] = conv.kernel.numpy()
        if conv.use_bias:
            arrays[f"{i}_bias"] = conv.bias.numpy()
        bn = layers.get(conv.name[:-len("_conv_3d")] + "_batch_norm")
        if bn is not None:
            arrays.update({f"{i}_beta": bn.beta.numpy(), f"{i}_mean": bn.moving_mean.numpy(),
                           f"{i}_variance": bn.moving_variance.numpy()})
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/weights.npz", **arrays)
        np.save(f"{tmp}/clip.npy", np.asarray(clips, np.float32))
        result = _run_reference(python, {
            "architecture": i3d_model.ARCHITECTURE, "num_classes": int(model.output.shape[-1]),
            "channels": int(model.inputs[0].shape[-1]),
            "weights": f"{tmp}/weights.npz", "clip": f"{tmp}/clip.npy"})
    return np.asarray(result["logits"], np.float32)


def _run_reference(python, config):
    """Runs `pytorch_reference.py` with `config`; its JSON result."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch_reference.py")
    stdout = _run_torch_python(python, [script, json.dumps(config)])
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise PyTorchError(f"The PyTorch reference printed no result. Received: python={python!r},"
                           f" output={stdout[-500:]!r}") from None


def check_pytorch(python=None):
    """The `torch` version that `python` (default: this one) imports.

    Raises:
        PyTorchError: `python` cannot run or has no `torch`.
    """
    version = _run_torch_python(python, ["-c", "import torch; print(torch.__version__)"]).strip()
    if not version:
        raise PyTorchError(f"This Python printed no torch version: is it a Python? "
                           f"Received: python={python!r}")
    return version


def _run_torch_python(python, args):
    """Runs `python args...`; its stdout, or a `PyTorchError` saying what went wrong."""
    python = python or sys.executable
    # PYTHONSAFEPATH: the script's folder (this package) must not shadow modules.
    env = dict(os.environ, PYTHONSAFEPATH="1")
    try:
        out = subprocess.run([python, *args], capture_output=True, text=True, env=env,
                             check=False)
    except OSError as error:
        raise PyTorchError(f"Cannot run the Python given for PyTorch ({error}). "
                           f"Received: python={python!r}") from None
    if out.returncode != 0:
        if "No module named 'torch'" in out.stderr:
            raise PyTorchError(
                f"PyTorch is not installed for this Python (`pip install torch`, or pass the "
                f"Python of an environment that has it). Received: python={python!r}")
        raise PyTorchError(f"The PyTorch reference failed (exit status {out.returncode}):\n"
                           f"{out.stderr[-2000:]}")
    return out.stdout


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def peak_memory_mb():
    """Peak resident memory of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_benchmarks(frames=(16, 32, 64, 250), image_size=224, repeats=3, train_batch=2,
                   train_frames=16, xla=False, litert_frames=None, implementation="auto",
                   compare_with=None, pytorch_python=None, mixed_precision="float32",
                   precisions=None, litert_quantizations=("float32",)):
    """Runs every measurement; returns a JSON-serialisable dict.

    Args:
        frames: clip lengths of the forward-pass measurements.
        image_size: frame size.
        repeats: timed runs per measurement (the median is reported).
        train_batch: batch of the training-step measurement (None: skip it).
        train_frames: clip length of the training step.
        xla: compile the forward and training functions with XLA.
        litert_frames: also time LiteRT files against TF at these clip lengths
            (an int or a list; `time_litert`), recorded under
            `results["litert"][str(frames)]`.
        litert_quantizations: the LiteRT files timed at each length.
        implementation: how the model computes its 3D convolutions (see
            `i3d_keras.models.layers.Conv3D`): `"auto"`, `"conv2d"` or `"conv3d"`.
        compare_with: another implementation to time in the same run (forward
            passes and training step); the results get its timings and the
            speed-ups of `implementation` over it.
        pytorch_python: also time the same network in PyTorch with this Python
            (`time_pytorch`; `sys.executable` for this one) after the
            TensorFlow timings; the results get the time ratios.
        mixed_precision: the models' precision, a setting of
            `i3d_keras.runtime.precision` (`"auto"`, `"float32"`, `"bfloat16"`, ...);
            PyTorch then runs under `torch.autocast(bfloat16)` where it is
            `mixed_bfloat16`. The results record the policy, the CPU's flags
            and the float32 and bfloat16 matmul peaks.
        precisions: settings to time in one run, e.g. `("float32",
            "bfloat16")`: the first replaces `mixed_precision` (every
            measurement), the others time the forward passes and the training
            step with the same weights, each right after the first's, and get
            `"time_ratio"` (their time over the first's) under
            `results["precisions"][policy]`.

    Raises:
        ValueError: `precisions` naming one policy twice.
    """
    from i3d_keras.runtime import hardware, precision  # noqa: PLC0415
    if precisions:
        policies = [precision.resolve_precision(p) for p in precisions]
        if len(set(policies)) != len(policies):
            raise ValueError(f"`precisions` must name different policies. Received: "
                             f"precisions={list(precisions)} (policies {policies})")
        mixed_precision = precisions[0]
    if pytorch_python:
        check_pytorch(pytorch_python)  # before minutes of TensorFlow timings
    results = {
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "tensorflow": tf.__version__,
                    "keras": keras.__version__,
                    "onednn": convolution.onednn_enabled(),
                    "onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TF default)"),
                    "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]},
        "xla": xla,
        "implementation": convolution.resolve_implementation(implementation),
        "matmul_gflops": matmul_gflops(),
        "matmul_bfloat16_gflops": matmul_gflops(dtype="bfloat16"),
        "forward": {},
    }
    cpu = hardware.cpu_info()
    results["machine"]["cpu"] = {"model": cpu.model, "kind": cpu.kind,
                                 "flags": cpu.notable_flags()}
    policy, reason = precision.choose_precision(mixed_precision)
    results["precision"] = {"policy": policy, "reason": reason}
    # The peak that bounds the model in its precision.
    results["matmul_peak_gflops"] = results[
        "matmul_bfloat16_gflops" if policy == "mixed_bfloat16" else "matmul_gflops"]
    with precision.policy_scope(policy):
        models = {implementation: i3d_model.InceptionI3D(
            400, "rgb", frames=None, image_size=image_size, conv_implementation=implementation)}
        if compare_with:
            models[compare_with] = i3d_model.InceptionI3D(
                400, "rgb", frames=None, image_size=image_size, conv_implementation=compare_with)
    if compare_with:
        models[compare_with].set_weights(models[implementation].get_weights())
        results["comparison"] = {"implementation": convolution.resolve_implementation(compare_with),
                                 "forward": {}}
    model = models[implementation]
    # The other precisions: same network and weights, timed right after the first's.
    others = {}
    for setting in (precisions or [])[1:]:
        other_policy, other_reason = precision.choose_precision(setting)
        with precision.policy_scope(other_policy):
            others[other_policy] = i3d_model.InceptionI3D(
                400, "rgb", frames=None, image_size=image_size,
                conv_implementation=implementation)
        others[other_policy].set_weights(model.get_weights())
        results.setdefault("precisions", {})[other_policy] = {"reason": other_reason,
                                                              "forward": {}}
    for f in frames:
        results["forward"][str(f)] = time_forward(model, f, image_size, repeats, xla)
        if compare_with:
            other = time_forward(models[compare_with], f, image_size, repeats, xla)
            other["speedup"] = other["seconds"] / results["forward"][str(f)]["seconds"]
            results["comparison"]["forward"][str(f)] = other
        for other_policy, other_model in others.items():
            other = time_forward(other_model, f, image_size, repeats, xla)
            other["time_ratio"] = other["seconds"] / results["forward"][str(f)]["seconds"]
            results["precisions"][other_policy]["forward"][str(f)] = other
    if train_batch:
        results["train_step"] = time_train_step(model, train_batch, train_frames, image_size,
                                                repeats, xla)
        if compare_with:
            other = time_train_step(models[compare_with], train_batch, train_frames, image_size,
                                    repeats, xla)
            other["speedup"] = other["seconds"] / results["train_step"]["seconds"]
            results["comparison"]["train_step"] = other
        for other_policy, other_model in others.items():
            other = time_train_step(other_model, train_batch, train_frames, image_size,
                                    repeats, xla)
            other["time_ratio"] = other["seconds"] / results["train_step"]["seconds"]
            results["precisions"][other_policy]["train_step"] = other
    if pytorch_python:
        try:
            reference = time_pytorch(frames, image_size, repeats, train_batch, train_frames,
                                     pytorch_python,
                                     "bfloat16" if policy == "mixed_bfloat16" else None)
        except PyTorchError as error:  # keep the TensorFlow timings
            reference = {"error": str(error)}
        for f, r in reference.get("forward", {}).items():
            r["tf_over_torch"] = results["forward"][f]["seconds"] / r["seconds"]
        if "train_step" in reference:
            reference["train_step"]["tf_over_torch"] = (
                results["train_step"]["seconds"] / reference["train_step"]["seconds"])
        tf_device = "gpu" if results["machine"]["gpus"] else "cpu"
        if reference.get("device", tf_device).replace("cuda", "gpu") != tf_device:
            reference["warning"] = (f"TF ran on the {tf_device.upper()}, PyTorch on the "
                                    f"{reference['device'].upper()}: the ratios compare devices")
        results["pytorch"] = reference
    if litert_frames:
        lengths = [litert_frames] if isinstance(litert_frames, int) else list(litert_frames)
        results["litert"] = {str(f): time_litert(model, f, image_size, repeats,
                                                 quantizations=tuple(litert_quantizations))
                             for f in lengths if f}
    if results["machine"]["gpus"]:
        gpu = time_forward(model, 64, image_size, repeats, xla=True, device="/GPU:0")
        results["gpu_clips_per_second_64f"] = 1.0 / gpu["seconds"]
    results["peak_memory_mb"] = peak_memory_mb()
    return results


def plot_results(results, path):
    """A PNG of `run_benchmarks` results: seconds per clip against clip length
    (the forward pass of each implementation timed) and the training step.

    Example:

    >>> plot_results(run_benchmarks(frames=(16, 64)), "bench.png")  # doctest: +SKIP
    """
    plt = plotting.pyplot()
    series = [(f"TF, {results.get('implementation', '?')}", results)]
    if "comparison" in results:
        series.append((f"TF, {results['comparison']['implementation']}", results["comparison"]))
    if "forward" in results.get("pytorch", {}):
        series.append((f"PyTorch {results['pytorch']['torch']}", results["pytorch"]))
    fig, (forward, train) = plt.subplots(1, 2, figsize=(11, 4.5),
                                         gridspec_kw={"width_ratios": [3, 2]})
    for label, r in series:
        if not r["forward"]:
            continue
        frames = sorted(int(f) for f in r["forward"])
        seconds = [r["forward"][str(f)]["seconds"] for f in frames]
        # The longest clip's time in the legend: close lines' end labels overlap.
        forward.plot(frames, seconds, marker="o",
                     label=f"{label}: {seconds[-1]:.2f} s at {frames[-1]} frames")
    forward.set_xlabel("frames per clip (224x224, batch 1)")
    forward.set_ylabel("seconds per clip (median)")
    forward.set_title("Forward pass")
    forward.grid(alpha=0.3)
    if results["forward"]:
        forward.legend(fontsize=8)
    steps = [(label, r["train_step"]["seconds"]) for label, r in series if "train_step" in r]
    if steps:
        bars = train.bar(range(len(steps)), [s for _, s in steps], 0.6,
                         color=[f"C{i}" for i in range(len(steps))])
        for bar, (_, seconds) in zip(bars, steps):
            train.annotate(f"{seconds:.2f} s", (bar.get_x() + bar.get_width() / 2, seconds),
                           ha="center", va="bottom", fontsize=8)
        train.set_xticks(range(len(steps)))
        train.set_xticklabels([label for label, _ in steps], rotation=15, ha="right",
                              fontsize=8)
        t = results["train_step"]
        train.set_title(f"Training step (batch {t['batch']} x {t['frames']} frames)")
        train.set_ylabel("seconds per step (median)")
    else:
        train.set_axis_off()
    machine = results.get("machine", {})
    fig.suptitle(f"I3D (RGB) on {machine.get('cpus', '?')} CPUs, TensorFlow "
                 f"{machine.get('tensorflow', '?')}; float32 matmul "
                 f"{results['matmul_gflops']:.0f} GFLOP/s in the same run")
    fig.tight_layout()
    with outputs.atomic_path(path) as tmp:  # a replaced plot survives a crash
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def _other_timing_lines(name, timings, forward_detail, versus):
    """Table lines of another implementation's timings, each set against ours."""
    lines = [f"  {name}, {f} frames: {r['seconds']:.3f} s/clip{forward_detail(r)}, {versus(r)}"
             for f, r in timings["forward"].items()]
    if "train_step" in timings:
        t = timings["train_step"]
        lines.append(f"  {name}, train step: {t['seconds']:.3f} s, {versus(t)}")
    return lines


def _litert_lines(litert):
    """Table lines of `time_litert` results, one per clip length and file."""
    if "frames" in litert:  # one length, as recorded before several
        litert = {str(litert["frames"]): litert}
    lines = []
    for frames, lite in litert.items():
        threads = f", {lite['threads']} threads" if "threads" in lite else ""
        lines.append(f"LiteRT, {frames} frames (XNNPACK{threads}): TF {lite['tf_seconds']:.3f}"
                     " s/clip")
        quantizations = lite.get("quantizations") or {"float32": {
            "seconds": lite["litert_seconds"], "over_tf": lite["litert_over_tf"],
            "max_abs_logit_diff": lite["max_abs_logit_diff"]}}
        for quantization, q in quantizations.items():
            split = (f", {q['partitions']} XNNPACK partition{'s' if q['partitions'] != 1 else ''}"
                     if "partitions" in q else "")
            outside = q.get("outside") or {}
            if outside:
                split += " (outside: " + ", ".join(f"{n} {op}" for op, n in outside.items()) + ")"
            size = f", {q['size_mb']:.1f} MB" if "size_mb" in q else ""
            if q.get("arena_mb") is not None:
                size += f", arena {q['arena_mb']:.0f} MB"
            if q.get("resident_mb") is not None:
                size += f", resident {q['resident_mb']:.0f} MB"
            lines.append(f"  {quantization:<12} {q['seconds']:.3f} s/clip, LiteRT/TF time "
                         f"{q['over_tf']:.2f}{split}{size}, max |logit diff| "
                         f"{q['max_abs_logit_diff']:.2e}")
    return lines


def format_results(results):
    """A short text table of `run_benchmarks` results."""
    peak = results.get("matmul_peak_gflops", results["matmul_gflops"])
    onednn = results["machine"].get("onednn")
    onednn = results["machine"]["onednn_env"] if onednn is None else ("on" if onednn else "off")
    lines = [f"matmul float32: {results['matmul_gflops']:.1f} GFLOP/s   (oneDNN: {onednn},"
             f" XLA: {results['xla']}, convolutions: {results.get('implementation', '?')})"]
    if "precision" in results:
        cpu = results["machine"].get("cpu", {})
        lines += [f"matmul bfloat16: {results['matmul_bfloat16_gflops']:.1f} GFLOP/s   "
                  f"(CPU: {cpu.get('kind', '?')})",
                  f"precision: {results['precision']['policy']} "
                  f"({results['precision']['reason']}); 'of matmul' is of its peak"]
    lines.append(f"{'forward':<14} {'s/clip':>8} {'GMACs':>8} {'GFLOP/s':>9} {'of matmul':>10}")
    for f, r in results["forward"].items():
        lines.append(f"{f + ' frames':<14} {r['seconds']:>8.3f} {r['gmacs']:>8.1f} "
                     f"{r['effective_gflops']:>9.1f} {r['effective_gflops'] / peak:>9.0%}")
    if "train_step" in results:
        t = results["train_step"]
        lines.append(f"train step (batch {t['batch']} x {t['frames']} frames): {t['seconds']:.3f} s,"
                     f" {t['effective_gflops']:.1f} GFLOP/s")
    if "comparison" in results:
        lines += _other_timing_lines(
            f"vs {results['comparison']['implementation']}", results["comparison"],
            lambda r: f" ({r['effective_gflops']:.1f} GFLOP/s)",
            lambda r: f"speed-up {r['speedup']:.2f}x")
    for other_policy, timings in results.get("precisions", {}).items():
        lines += _other_timing_lines(
            other_policy, timings, lambda r: f" ({r['effective_gflops']:.1f} GFLOP/s)",
            lambda r: f"time / {results['precision']['policy']}'s {r['time_ratio']:.2f} "
                      f"({1 / r['time_ratio']:.2f}x the speed)")
    if "error" in results.get("pytorch", {}):
        lines.append(f"PyTorch reference: {results['pytorch']['error']}")
    elif "pytorch" in results:
        torch_results = results["pytorch"]
        if "warning" in torch_results:
            lines.append(f"  warning: {torch_results['warning']}")
        lines += _other_timing_lines(
            f"PyTorch {torch_results['torch']} ({torch_results['threads']} threads)",
            torch_results, lambda r: "", lambda r: f"TF/PyTorch time {r['tf_over_torch']:.2f}")
    lines += _litert_lines(results.get("litert", {}))
    if "gpu_clips_per_second_64f" in results:
        lines.append(f"GPU: {results['gpu_clips_per_second_64f']:.2f} clips/s (64 frames)")
    lines.append(f"peak memory: {results['peak_memory_mb']:.0f} MiB")
    return "\n".join(lines)


__all__ = ["PyTorchError", "check_pytorch", "format_results", "litert_resident_mb",
           "litert_threads", "matmul_gflops", "model_macs", "peak_memory_mb", "plot_results",
           "pytorch_logits", "run_benchmarks", "time_forward", "time_litert", "time_pytorch",
           "time_train_step"]
