"""Which precision I3D computes in: one decision for every tool.

`resolve_precision("auto")` picks the precision that runs I3D fastest on the
machine, from its hardware read at run time (`i3d_keras.runtime.hardware`),
never from a CPU's name, and where no rule knows, from a measurement:

* a GPU of compute capability >= 8.0 (Ampere and later): `mixed_bfloat16`
  (bfloat16 tensor cores; float32's exponent range, so no loss scaling);
* compute capability 7.x (Volta, Turing): `mixed_float16` (float16 tensor
  cores; they have no bfloat16, and Keras scales the loss for float16);
* older or unknown GPUs: `float32` (no tensor cores: half precision saves
  memory but little time there, and float16 needs loss scaling);
* no GPU: the first row of `CPU_RULES` that fits the CPU. AMX-BF16:
  `mixed_bfloat16` (I3D 2.5x faster on a Xeon with AMX); an Intel CPU with
  AVX512-BF16 but no AMX: `float32` (bfloat16 1.4-1.5x slower on such a
  Xeon: oneDNN's AVX512-BF16 convolutions lose to its float32 ones); another
  CPU with bfloat16 instructions (AMD Zen 4 and Zen 5, Arm): measured
  (`i3d_keras.runtime.tuning`: bfloat16 only when clearly faster, the answer
  cached per machine; `float32` where it cannot be measured); CPUs without
  bfloat16 instructions: `float32` (bfloat16 is emulated there: correct but
  slower).

A measurement of this machine, once cached (`I3D_KERAS_TUNE=1` or
`python tools/doctor.py --tune` measure on any CPU), decides before the CPU
rules; `I3D_KERAS_TUNE=0` leaves the rules alone to decide. An explicit
precision never measures.

Mixed policies keep the variables in float32 and compute in half precision;
the numerically delicate parts stay in float32 whatever the policy: BatchNorm
statistics (`i3d_keras.models.layers.BatchNormalization`), the logits head (pool,
1x1x1 convolution, mean over time: `i3d_keras.models.i3d.apply_logits_head`), the
softmax and the loss. Weights are float32 in every precision, so checkpoints
and `.keras` files load the same in either; `with_precision` rebuilds a loaded
model (whose layers remember the policy they were saved with) for another one.

Reference: Micikevicius et al., "Mixed Precision Training", ICLR 2018;
Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019.

Example:

>>> from i3d_keras.runtime import precision
>>> policy = precision.use_precision("auto", tool="predict")  # prints the choice
>>> policy in ("float32", "mixed_bfloat16", "mixed_float16")
True
"""

import contextlib
import copy
import dataclasses
from typing import Callable, Dict, Optional, Sequence, Tuple

PRECISIONS = ("auto", "float32", "float16", "bfloat16")
# The tools' --mixed_precision help.
FLAG_HELP = ("Precision of the computation: auto (mixed_bfloat16 on CPUs with AMX-BF16 and "
             "on GPUs of compute capability >= 8.0, mixed_float16 on 7.x GPUs, measured once "
             "on other CPUs with bfloat16 instructions (I3D_KERAS_TUNE=1: on any CPU), else "
             "float32), float32, float16 or bfloat16 (mixed: float32 weights).")
POLICIES = {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}

# Layers that compute in float32 under every policy (by name): the logits
# head of I3D and of the comparison architectures, and the softmax.
FLOAT32_LAYER_PREFIXES = ("Logits_",)
FLOAT32_LAYER_NAMES = ("Logits", "Predictions")


# A CPU rule whose policy is MEASURE: the machine is timed (float32 where it
# cannot be: a described CPU, I3D_KERAS_TUNE=0, a failed measurement).
MEASURE = "measure"


@dataclasses.dataclass(frozen=True)
class CpuRule:
    """One row of `auto`'s decision on a CPU (`CPU_RULES`).

    Attributes:
        machine: the CPUs it stands for, for people.
        applies: `applies(cpu)` for a `hardware.CpuInfo`.
        policy: `"float32"`, `"mixed_bfloat16"` or `MEASURE`.
        reason: why, as the tools print it after "auto: ".
    """

    machine: str
    applies: Callable[..., bool]
    policy: str
    reason: str


# Read in order; the first row that applies decides. The figures are I3D's
# forward pass and training step, bfloat16 against float32 (docs/guides/
# precision-and-cpus.md names the machines).
CPU_RULES = (
    CpuRule("x86 with AMX-BF16 (Xeon Sapphire Rapids and later)",
            lambda cpu: cpu.has("amx_bf16"), "mixed_bfloat16",
            "CPU with AMX-BF16 (bfloat16 2.5x faster on a Xeon with AMX)"),
    # oneDNN's AVX512-BF16 convolutions lost to its float32 ones there (VMs
    # that hide AMX look the same).
    CpuRule("Intel with AVX512-BF16, no AMX (Cooper Lake, Xeons with AMX hidden)",
            lambda cpu: cpu.vendor == "GenuineIntel" and cpu.has("avx512_bf16"), "float32",
            "Intel CPU with AVX512-BF16 but no AMX (bfloat16 1.4-1.5x slower on such a Xeon)"),
    # 1.5x faster on a Zen 5, 1.5x slower on the Intel row's Xeon: no rule
    # can tell, so the machine is timed.
    CpuRule("other CPUs with bfloat16 instructions, no AMX (AMD Zen 4 and Zen 5, Arm BF16)",
            lambda cpu: cpu.bfloat16_hardware, MEASURE,
            "CPU with bfloat16 instructions but no AMX"),
    CpuRule("CPUs without bfloat16 instructions (AVX2, AVX-512 without BF16)",
            lambda cpu: True, "float32",
            "CPU without bfloat16 instructions (AVX512-BF16 or AMX)"),
)


def cpu_rule(cpu) -> CpuRule:
    """The row of `CPU_RULES` that decides for `cpu` (a `hardware.CpuInfo`)."""
    return next(rule for rule in CPU_RULES if rule.applies(cpu))


def choose_precision(mixed_precision: str = "auto", *, cpu=None,
                     gpus: Optional[Sequence[Tuple[str, Optional[Tuple[int, int]]]]] = None,
                     tune: Optional[bool] = None,
                     measure: Optional[Callable[[], Dict]] = None,
                     cache_dir: Optional[str] = None) -> Tuple[str, str]:
    """The Keras dtype policy for a `mixed_precision` setting, and why.

    On a CPU, `"auto"` takes this machine's cached measurement when there is
    one, else the first row of `CPU_RULES` that fits; a row that says
    `MEASURE` (or `tune`) times float32 and bfloat16 here
    (`tuning.measure_precisions`, a few seconds), picks bfloat16 only when it
    is at least `tuning.SPEEDUP_NEEDED` times as fast, and caches the timings.

    Args:
        mixed_precision: `"auto"`, `"float32"`, `"float16"` or `"bfloat16"`
            (an explicit choice overrides the hardware's and measures nothing).
        cpu: a `hardware.CpuInfo` (default: this machine's). A described CPU
            is never measured (this machine is not it) unless `measure` is
            given, and reads no cache unless `cache_dir` is given.
        gpus: `[(name, compute capability or None), ...]` (default: the GPUs
            TensorFlow sees, `hardware.gpus()`). With GPUs, nothing is measured.
        tune: True: measure on any CPU (unless cached); False: never, and
            ignore cached measurements; None (default): `I3D_KERAS_TUNE`
            (`tuning.tune_setting`), else measure where the rule says so.
        measure: what times the precisions (default
            `tuning.measure_precisions`); returns its form.
        cache_dir: the measurements' folder (default: the user's cache folder,
            `tuning.cache_path`).

    Returns:
        `(policy, reason)`: `"float32"`, `"mixed_float16"` or
        `"mixed_bfloat16"`, and a short text for the user.

    Raises:
        ValueError: an unknown `mixed_precision` or `I3D_KERAS_TUNE`.

    Example:

    >>> from i3d_keras.runtime import hardware
    >>> xeon = hardware.parse_cpuinfo("flags : avx2 avx512f avx512_bf16 amx_bf16")
    >>> choose_precision("auto", cpu=xeon, gpus=[])
    ('mixed_bfloat16', 'auto: CPU with AMX-BF16 (bfloat16 2.5x faster on a Xeon with AMX)')
    """
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}. "
                         f"Received: mixed_precision={mixed_precision!r}")
    if mixed_precision != "auto":
        return POLICIES[mixed_precision], "--mixed_precision given"
    from i3d_keras.runtime import hardware, tuning  # noqa: PLC0415

    gpus = hardware.gpus() if gpus is None else list(gpus)
    if gpus:
        capabilities = [cc for _, cc in gpus]
        if any(cc is None for cc in capabilities):
            return "float32", "auto: GPU of unknown compute capability"
        lowest = min(tuple(cc) for cc in capabilities)  # every GPU must support it
        where = f"GPU compute capability {lowest[0]}.{lowest[1]}"
        if lowest >= (8, 0):
            return "mixed_bfloat16", f"auto: {where} (bfloat16 tensor cores)"
        if lowest >= (7, 0):
            return "mixed_float16", f"auto: {where} (float16 tensor cores, no bfloat16)"
        return "float32", f"auto: {where} (no tensor cores)"
    this_machine = cpu is None
    cpu = hardware.cpu_info() if this_machine else cpu
    rule = cpu_rule(cpu)
    tune = tuning.tune_setting() if tune is None else tune
    use_cache = this_machine or cache_dir is not None
    if tune is not False and use_cache:
        timings = tuning.read_measurement(cpu, cache_dir)
        if timings is not None:
            return _measured_choice(timings, "cached")
    wanted = tune or (tune is None and rule.policy == MEASURE)
    if wanted and (this_machine or measure is not None):
        try:
            timings = (measure or tuning.measure_precisions)()
            if not tuning.valid_timings(timings):
                raise ValueError(f"no timings in its form. Received: {timings!r}"[:200])
        except Exception as error:  # noqa: BLE001 (a failed measurement means float32)
            detail = (str(error).splitlines() or [""])[0][:200]
            return "float32", (f"auto: {rule.reason}; measuring bfloat16 failed "
                               f"({type(error).__name__}: {detail}): float32")
        if use_cache:
            tuning.write_measurement(cpu, timings, cache_dir)
        return _measured_choice(timings, "")
    if rule.policy == MEASURE:
        why = "I3D_KERAS_TUNE=0" if tune is False else "not this machine"
        return "float32", f"auto: {rule.reason}; bfloat16 not measured ({why}): float32"
    return rule.policy, f"auto: {rule.reason}"


def _measured_choice(timings: Dict, note: str) -> Tuple[str, str]:
    """`choose_precision`'s answer from timings (`tuning.measure_precisions`)."""
    from i3d_keras.runtime import tuning  # noqa: PLC0415

    reason = f"auto: {tuning.describe(timings)}"
    if tuning.prefers_bfloat16(timings):
        return "mixed_bfloat16", reason + (f"; {note}" if note else "")
    if tuning.bfloat16_speed(timings) >= 1.0:  # faster, but not enough to pay
        note = ", ".join(filter(None, [f"below the {tuning.SPEEDUP_NEEDED:.2f}x that pays",
                                       note]))
    return "float32", reason + (f"; {note}" if note else "")


def resolve_precision(mixed_precision: str = "auto", *, cpu=None, gpus=None) -> str:
    """The Keras dtype policy name for a `mixed_precision` setting.

    See `choose_precision` (same arguments) for what `"auto"` picks where.

    Example:

    >>> resolve_precision("bfloat16")
    'mixed_bfloat16'
    """
    return choose_precision(mixed_precision, cpu=cpu, gpus=gpus)[0]


def use_precision(mixed_precision: str = "auto", *, tool: Optional[str] = None,
                  log=None) -> str:
    """Sets Keras' global dtype policy for `mixed_precision` and says so once.

    For tools: call it before building or loading models. Models built
    afterwards compute in the policy; `.keras` files loaded by
    `i3d_keras.tasks.inference.load_predictor` are rebuilt for it.

    Args:
        mixed_precision: see `choose_precision`.
        tool: the tool's name, the message's prefix.
        log: where the message goes (default `i3d_keras.utils.console.info`, standard
            error); None-like callables are allowed to silence it.

    Returns:
        The policy name set.
    """
    import keras  # noqa: PLC0415

    policy, reason = choose_precision(mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    if log is None:
        from i3d_keras.utils import console  # noqa: PLC0415

        log = console.info
    log(f"{tool + ': ' if tool else ''}precision {policy} ({reason})")
    return policy


@contextlib.contextmanager
def policy_scope(policy: str):
    """Keras' global dtype policy set to `policy` inside the block, restored after.

    Example:

    >>> with policy_scope("mixed_bfloat16"):
    ...     model = InceptionI3D(10, frames=8, image_size=32)
    >>> model.layers[1].compute_dtype, keras.config.dtype_policy().name
    ('bfloat16', 'float32')
    """
    import keras  # noqa: PLC0415

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def is_float32_layer(name: str) -> bool:
    """Whether the layer named `name` computes in float32 under every policy."""
    return name in FLOAT32_LAYER_NAMES or name.startswith(FLOAT32_LAYER_PREFIXES)


def model_policy(model) -> str:
    """The policy most of `model`'s layers compute in (nested models included)."""
    counts = {}
    for layer in _all_layers(model):
        if is_float32_layer(layer.name) or not layer.weights:
            continue
        name = layer.dtype_policy.name
        counts[name] = counts.get(name, 0) + 1
    return max(counts, key=counts.get) if counts else "float32"


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _set_policies(config, policy):
    """Rewrites the `dtype` of every layer config in a (nested) model config."""
    for layer in config.get("layers", []):
        inner = layer.get("config", {})
        if "layers" in inner:  # a nested functional model
            _set_policies(inner, policy)
        if "dtype" in inner and layer.get("class_name") != "InputLayer":
            pinned = is_float32_layer(inner.get("name", layer.get("name", "")))
            inner["dtype"] = "float32" if pinned else policy


def with_precision(model, policy: str):
    """`model` rebuilt to compute in the Keras dtype policy `policy`, same weights.

    A `.keras` file remembers the policy each layer was saved with; a model
    trained in `mixed_bfloat16` is rebuilt here to evaluate in `float32` (or
    the other way round). The logits head and softmax stay float32
    (`is_float32_layer`). Inputs and weights stay float32.

    Args:
        model: a functional Keras model (`InceptionI3D`, `TwoStreamI3D`, a
            comparison architecture).
        policy: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"` (or a
            `mixed_precision` setting such as `"bfloat16"` or `"auto"`).

    Returns:
        A new model (or `model` itself when it already computes in `policy`).

    Example:

    >>> with policy_scope("mixed_bfloat16"):
    ...     model = InceptionI3D(10, frames=8, image_size=32)
    >>> with_precision(model, "float32").layers[1].compute_dtype
    'float32'
    """
    if policy in PRECISIONS:
        policy = resolve_precision(policy)
    if model_policy(model) == policy:
        return model
    config = copy.deepcopy(model.get_config())
    _set_policies(config, policy)
    rebuilt = model.__class__.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


__all__ = ["CPU_RULES", "CpuRule", "FLOAT32_LAYER_NAMES", "FLOAT32_LAYER_PREFIXES", "MEASURE",
           "POLICIES", "PRECISIONS", "choose_precision", "cpu_rule", "is_float32_layer",
           "model_policy", "policy_scope", "resolve_precision", "use_precision",
           "with_precision"]
