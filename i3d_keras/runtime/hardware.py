"""What this machine computes on: the CPU's instruction sets, GPUs, TF's kernels.

The package's defaults depend on the hardware: which convolution gradients are
safe (oneDNN's 3D backward kernels are defective on AVX-512 CPUs for some short
clips, see `i3d_keras.models.convolution.onednn_backward_defect`) and which precision
is fastest. Those decisions read the CPU's feature flags at run time, from the
operating system (`/proc/cpuinfo` on Linux), never from the CPU's name.

Example:

>>> from i3d_keras.runtime import hardware
>>> hardware.cpu_info().cores >= 1  # this machine's CPU
True
>>> cpu = hardware.CpuInfo(model="AMD EPYC", vendor="AuthenticAMD",  # an AVX2 CPU
...                        flags=frozenset({"avx2", "fma"}), cores=2)
>>> cpu.model, cpu.has("avx2"), cpu.avx512
('AMD EPYC', True, False)
>>> cpu.kind
'x86-64 with AVX2, no AVX-512'
"""

import dataclasses
import functools
import os
import platform
from typing import FrozenSet

# The flags that change what the package does or that a report should show,
# in the order `tools/doctor.py` prints them (Linux /proc/cpuinfo names).
NOTABLE_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile",
                 "amx_bf16")


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """A CPU as the operating system describes it.

    Attributes:
        model: the model name (`"AMD EPYC"`, `"Intel(R) Xeon(R) Platinum ..."`).
        vendor: `"AuthenticAMD"`, `"GenuineIntel"`, ... (empty if unknown).
        flags: the feature flags, lower case (`"avx2"`, `"avx512f"`, `"amx_bf16"`).
        cores: logical CPUs this process may run on (at least 1).
        family: the x86 CPU family (`/proc/cpuinfo`'s "cpu family": 6 for
            Intel's Xeons, 25 for AMD's Zen 3 and Zen 4, 26 for Zen 5; 0 if
            unknown).
    """

    model: str
    vendor: str
    flags: FrozenSet[str]
    cores: int
    family: int = 0

    def has(self, flag: str) -> bool:
        return flag.lower() in self.flags

    @property
    def avx512(self) -> bool:
        """AVX-512 Foundation: oneDNN then runs its AVX-512 (or AMX) kernels."""
        return self.has("avx512f")

    @property
    def bfloat16_hardware(self) -> bool:
        """bfloat16 dot products in hardware (AVX512-BF16, AMX-BF16 or Arm's BF16)."""
        return self.has("avx512_bf16") or self.has("amx_bf16") or self.has("bf16")

    @property
    def kind(self) -> str:
        """A short description: `"x86-64 with AVX2, no AVX-512"`, ..."""
        if self.has("amx_bf16"):
            return "x86-64 with AVX-512, AVX512-BF16 and AMX"
        if self.avx512:
            bf16 = ", AVX512-BF16" if self.has("avx512_bf16") else ""
            return f"x86-64 with AVX-512{bf16}, no AMX"
        if self.has("avx2"):
            return "x86-64 with AVX2, no AVX-512"
        return f"{platform.machine() or 'unknown'} without AVX2"

    def notable_flags(self):
        """`{flag: present}` for `NOTABLE_FLAGS`."""
        return {flag: self.has(flag) for flag in NOTABLE_FLAGS}


def parse_cpuinfo(text: str, cores: int = 0) -> CpuInfo:
    """A `CpuInfo` from the text of Linux's `/proc/cpuinfo` (its first processor)."""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    flags = fields.get("flags") or fields.get("features") or ""  # x86 / Arm
    family = fields.get("cpu family", "")
    return CpuInfo(
        model=fields.get("model name") or fields.get("cpu model") or platform.processor(),
        vendor=fields.get("vendor_id", ""),
        flags=frozenset(flags.lower().split()),
        cores=cores,
        family=int(family) if family.isdigit() else 0,
    )


def available_cores() -> int:
    """Logical CPUs this process may run on (its affinity mask; at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=None)
def cpu_info() -> CpuInfo:
    """This machine's CPU (cached). Flags are empty where the OS does not list them."""
    cores = available_cores()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return parse_cpuinfo(f.read(), cores)
    except OSError:  # not Linux: no flags, so no flag-dependent choices
        return CpuInfo(model=platform.processor() or platform.machine(), vendor="",
                       flags=frozenset(), cores=cores)


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels in this process (imports TF).

    TensorFlow decides once, when it loads (`TF_ENABLE_ONEDNN_OPTS`, else its
    default for the CPU; `import i3d_keras` first turns it on). The same test
    as `i3d_keras.models.convolution.onednn_enabled`, for the layers below the
    models.
    """
    import tensorflow  # noqa: F401,PLC0415 (loads the kernels it reports on)

    try:
        from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # pragma: no cover (another TF build)
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower() in ("1", "true")


def gpus():
    """`[(name, compute capability or None), ...]` for the GPUs TensorFlow sees."""
    import tensorflow as tf  # noqa: PLC0415

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        found.append((details.get("device_name", device.name),
                      details.get("compute_capability")))
    return found


__all__ = ["CpuInfo", "NOTABLE_FLAGS", "available_cores", "cpu_info", "gpus", "onednn_enabled",
           "parse_cpuinfo"]
