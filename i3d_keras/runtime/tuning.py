"""Which precision runs I3D faster on this CPU, measured once and remembered.

Where `i3d_keras.runtime.precision`'s rules cannot know whether bfloat16 pays
(a CPU with bfloat16 instructions but no AMX that they do not name, or on
request: `I3D_KERAS_TUNE=1`, `python tools/doctor.py --tune`), `auto` times a
small piece of I3D in float32 and in `mixed_bfloat16` (`measure_precisions`:
forward pass and training-mode forward and backward of the Inception blocks
Mixed_3b and Mixed_3c at their real channel counts, a few seconds) and keeps
the answer in the user's cache folder (`cache_path`), keyed by the machine
(`machine_key`: CPU model, flags, cores, TensorFlow version, oneDNN on or
off), so that later runs decide instantly. A cache that cannot be read, is
not JSON, or holds other machines only is ignored, never an error.

Example:

>>> from i3d_keras.runtime import hardware, tuning
>>> timings = tuning.measure_precisions()  # doctest: +SKIP
>>> tuning.bfloat16_speed(timings)  # doctest: +SKIP
1.62
>>> tuning.write_measurement(hardware.cpu_info(), timings)  # doctest: +SKIP
"""

import datetime
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
from typing import Dict, Optional

from i3d_keras.runtime import hardware

# `I3D_KERAS_TUNE=1`: `auto` measures on every CPU (once: the answer is
# cached); `0`: never, and ignores measurements (the rules alone decide).
TUNE_ENV = "I3D_KERAS_TUNE"
# bfloat16 is picked when it runs at least this much faster than float32 in
# both the forward pass and the training step: below, its rounding and the
# run-to-run noise of a shared machine (10-20%) are not worth it.
SPEEDUP_NEEDED = 1.15
# A bfloat16 time this many times float32's ends the measurement early.
CLEARLY_SLOWER = 2.0
CACHE_FILE = "precision.json"
# Bumped when the measured piece changes: older measurements are then stale.
PIECE_VERSION = 1
PARTS = ("forward", "train_step")
PART_NAMES = {"forward": "forward", "train_step": "training step"}


def tune_setting() -> Optional[bool]:
    """`I3D_KERAS_TUNE` read: True (`1`), False (`0`) or None (unset, `auto`).

    Raises:
        ValueError: another value.
    """
    value = os.environ.get(TUNE_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{TUNE_ENV} must be 1 (measure), 0 (never measure) or auto. "
                     f"Received: {TUNE_ENV}={os.environ[TUNE_ENV]!r}")


def cache_path(cache_dir: Optional[str] = None) -> str:
    """The cache file: `$XDG_CACHE_HOME/i3d_keras/precision.json` (default
    `~/.cache/i3d_keras/precision.json`), or `precision.json` in `cache_dir`."""
    if cache_dir is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        cache_dir = os.path.join(base, "i3d_keras")
    return os.path.join(os.fspath(cache_dir), CACHE_FILE)


def machine_key(cpu: hardware.CpuInfo) -> Dict:
    """What a measurement depends on: the CPU, TensorFlow and its kernels.

    Returns:
        `{"cpu", "vendor", "family", "flags" (a digest), "cores",
        "tensorflow", "onednn", "piece"}` (imports TensorFlow).
    """
    import tensorflow as tf  # noqa: PLC0415

    flags = hashlib.sha256(" ".join(sorted(cpu.flags)).encode()).hexdigest()[:16]
    return {"cpu": cpu.model, "vendor": cpu.vendor, "family": cpu.family, "flags": flags,
            "cores": cpu.cores, "tensorflow": tf.__version__,
            "onednn": "on" if hardware.onednn_enabled() else "off", "piece": PIECE_VERSION}


def _key_digest(key: Dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def valid_timings(timings) -> bool:
    """Whether `timings` has `measure_precisions`' form (positive seconds)."""
    try:
        return all(float(timings[p][part]) > 0 for p in ("float32", "bfloat16") for part in PARTS)
    except (KeyError, TypeError, ValueError):
        return False


def _read_cache(path: str) -> Dict:
    """The cache file's machines, `{}` when it is absent or broken."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):  # absent, unreadable, not JSON
        return {}
    machines = data.get("machines") if isinstance(data, dict) else None
    return machines if isinstance(machines, dict) else {}


def read_measurement(cpu: hardware.CpuInfo, cache_dir: Optional[str] = None) -> Optional[Dict]:
    """This machine's cached timings (`measure_precisions`' form), or None.

    None when there is no cache, it is broken, or it holds no measurement
    of this exact machine (another CPU, core count, TensorFlow version,
    oneDNN setting or measured piece).
    """
    key = machine_key(cpu)
    entry = _read_cache(cache_path(cache_dir)).get(_key_digest(key))
    if not isinstance(entry, dict) or entry.get("machine") != key:
        return None
    timings = entry.get("timings")
    return timings if valid_timings(timings) else None


def write_measurement(cpu: hardware.CpuInfo, timings: Dict,
                      cache_dir: Optional[str] = None) -> Optional[str]:
    """Caches `timings` for this machine (other machines' entries are kept).

    Written to a temporary file and renamed, so that a reader never sees half
    a file. A cache folder that cannot be written is not an error.

    Returns:
        The cache file's path, or None when it could not be written.

    Raises:
        ValueError: `timings` not in `measure_precisions`' form.
    """
    if not valid_timings(timings):
        raise ValueError("`timings` must give positive seconds for float32 and bfloat16, "
                         f"forward and train_step. Received: timings={timings!r}")
    path = cache_path(cache_dir)
    key = machine_key(cpu)
    machines = _read_cache(path)
    machines[_key_digest(key)] = {
        "machine": key, "timings": {p: {part: float(timings[p][part]) for part in PARTS}
                                    for p in ("float32", "bfloat16")},
        "measured": datetime.datetime.now().isoformat(timespec="seconds")}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".precision.", dir=os.path.dirname(path))
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as f:
                json.dump({"format": 1, "machines": machines}, f, indent=1)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    except OSError:  # a read-only home: measure again next time
        return None
    return path


def bfloat16_speed(timings: Dict) -> float:
    """bfloat16's speed relative to float32: float32's time over bfloat16's, in
    the part (forward pass, training step) where bfloat16 gains least."""
    return min(timings["float32"][part] / timings["bfloat16"][part] for part in PARTS)


def prefers_bfloat16(timings: Dict) -> bool:
    """Whether bfloat16 is clearly faster (`SPEEDUP_NEEDED`) in both parts."""
    return bfloat16_speed(timings) >= SPEEDUP_NEEDED


def describe(timings: Dict) -> str:
    """`"bfloat16 measured 0.71x the speed of float32 on this CPU: forward
    0.74x, training step 0.71x"`."""
    parts = ", ".join(f"{PART_NAMES[part]} "
                      f"{timings['float32'][part] / timings['bfloat16'][part]:.2f}x"
                      for part in PARTS)
    return (f"bfloat16 measured {bfloat16_speed(timings):.2f}x the speed of float32 on this "
            f"CPU: {parts}")


def measure_precisions(*, frames: int = 8, image_size: int = 28, batch: int = 1,
                       repeats: int = 3, device: Optional[str] = "/CPU:0") -> Dict:
    """Times a piece of I3D in float32 and in `mixed_bfloat16`, here and now.

    The piece is I3D's Mixed_3b and Mixed_3c blocks built by the model's own
    code (`i3d_keras.models.i3d.apply_inception_block`) at their real channel
    counts (192 in, 480 out) on `frames` x `image_size`^2 maps (a 16-frame
    224x224 clip gives Mixed_3b 8x28x28), traced with `tf.function` as the
    tools run it. Per precision: the forward pass in inference mode and the
    training-mode forward and backward (BatchNorm on batch statistics,
    gradients of every variable). After one warm-up (tracing) call each, the
    precisions alternate `repeats` times, so that a shared machine's drift
    hits both; each time is a median. 3.5-7 s on a 2-core AMD EPYC (Zen 5). Where
    bfloat16 is emulated (several times slower), one round after the warm-up
    is enough (`CLEARLY_SLOWER`).

    Python's and NumPy's global random state and Keras' dtype policy are
    restored, so a seeded run builds the same weights after a measurement.

    Args:
        frames, image_size, batch: the blocks' input `[batch, frames,
            image_size, image_size, 192]`.
        repeats: timed runs per precision and part.
        device: where to run (default the CPU: the measurement is the CPU's);
            None: TensorFlow's placement.

    Returns:
        `{"float32": {"forward": s, "train_step": s}, "bfloat16": {...}}`,
        median seconds.

    Raises:
        ValueError: a size or count below 1.
    """
    for name, value in (("frames", frames), ("image_size", image_size), ("batch", batch),
                        ("repeats", repeats)):
        if value < 1:
            raise ValueError(f"`{name}` must be at least 1. Received: {name}={value}")
    import contextlib  # noqa: PLC0415

    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    # Upward, on use only (i3d_keras._api.LAZY_UPWARD_IMPORTS): the piece is I3D's.
    from i3d_keras.models import i3d  # noqa: PLC0415
    from i3d_keras.runtime import precision  # noqa: PLC0415

    blocks = [(name, args) for name, kind, args in i3d.ARCHITECTURE
              if name in ("Mixed_3b", "Mixed_3c")]
    channels = next(args["filters"] for name, _, args in i3d.ARCHITECTURE
                    if name == "Conv3d_2c_3x3")  # what Mixed_3b receives
    python_state, numpy_state = random.getstate(), np.random.get_state()
    clip = np.random.default_rng(0).uniform(
        -1, 1, (batch, frames, image_size, image_size, channels)).astype("float32")
    try:
        with tf.device(device) if device else contextlib.nullcontext():
            x = tf.constant(clip)
            runs = {}
            for setting, policy in (("float32", "float32"), ("bfloat16", "mixed_bfloat16")):
                with precision.policy_scope(policy):
                    inputs = keras.Input(clip.shape[1:], name="tuning_input")
                    y = inputs
                    for name, args in blocks:
                        y = i3d.apply_inception_block(y, args, name=name)
                    model = keras.Model(inputs, y, name=f"tuning_{setting}")
                runs[setting] = _timed_functions(model, tf)
            seconds = {setting: {part: [] for part in PARTS} for setting in runs}
            for functions in runs.values():  # warm-up: tracing, oneDNN primitives
                for part in PARTS:
                    functions[part](x)
            for _ in range(repeats):
                for setting, functions in runs.items():
                    for part in PARTS:
                        start = time.perf_counter()
                        functions[part](x)
                        seconds[setting][part].append(time.perf_counter() - start)
                # Emulated bfloat16 (no such instructions) runs several times
                # slower: no need to refine that answer.
                if any(min(seconds["bfloat16"][part]) > CLEARLY_SLOWER *
                       max(seconds["float32"][part]) for part in PARTS):
                    break
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return {setting: {part: statistics.median(times) for part, times in parts.items()}
            for setting, parts in seconds.items()}


def _timed_functions(model, tf):
    """`{"forward": f, "train_step": f}`: traced calls of `model` that return
    once their results are computed."""

    @tf.function
    def forward(x):
        return tf.reduce_sum(tf.cast(model(x, training=False), tf.float32))

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            y = tf.cast(model(x, training=True), tf.float32)
            loss = tf.reduce_mean(tf.square(y))
        gradients = tape.gradient(loss, model.trainable_variables)
        return tf.add_n([tf.reduce_sum(g) for g in gradients])

    return {"forward": lambda x: forward(x).numpy(), "train_step": lambda x: train_step(x).numpy()}


__all__ = ["CACHE_FILE", "PIECE_VERSION", "SPEEDUP_NEEDED", "TUNE_ENV", "bfloat16_speed",
           "cache_path", "describe", "machine_key", "measure_precisions", "prefers_bfloat16",
           "read_measurement", "tune_setting", "valid_timings", "write_measurement"]
