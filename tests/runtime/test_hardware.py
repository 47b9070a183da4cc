"""Tests for i3d_keras.runtime.hardware: CPU features read from the OS, not the name."""

from i3d_keras.runtime import hardware

# The first processor of /proc/cpuinfo on the project's two CPU kinds (flags
# shortened to the ones that matter and a few others).
AMD_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx fma avx2 bmi2 sha_ni vaes

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse avx512f
"""
XEON_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse avx2 fma avx512f avx512dq avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
XEON_AVX512 = """vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: avx2 avx512f avx512_vnni
"""


def test_amd_epyc():
    cpu = hardware.parse_cpuinfo(AMD_EPYC, cores=2)
    assert (cpu.model, cpu.vendor, cpu.cores) == ("AMD EPYC", "AuthenticAMD", 2)
    assert cpu.has("avx2") and cpu.has("AVX2")
    # Only the first processor counts (the second's avx512f is not read).
    assert not cpu.avx512 and not cpu.bfloat16_hardware
    assert cpu.kind == "x86-64 with AVX2, no AVX-512"
    assert cpu.notable_flags() == {"avx2": True, "fma": True, "avx512f": False,
                                   "avx512_vnni": False, "avx512_bf16": False,
                                   "amx_tile": False, "amx_bf16": False}


def test_xeon_with_amx():
    cpu = hardware.parse_cpuinfo(XEON_AMX)
    assert cpu.avx512 and cpu.bfloat16_hardware
    assert cpu.kind == "x86-64 with AVX-512, AVX512-BF16 and AMX"


def test_xeon_with_avx512_only():
    cpu = hardware.parse_cpuinfo(XEON_AVX512)
    assert cpu.avx512 and not cpu.bfloat16_hardware
    assert cpu.kind == "x86-64 with AVX-512, no AMX"


def test_this_machine_matches_proc_cpuinfo():
    cpu = hardware.cpu_info()
    assert cpu.cores >= 1
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        assert cpu.flags == frozenset()
        return
    first = text.split("\n\n")[0]
    flags_line = next(line for line in first.splitlines() if line.startswith(("flags", "Features")))
    assert cpu.flags == frozenset(flags_line.split(":", 1)[1].split())


def test_cpu_family_and_arm_bfloat16():
    assert hardware.parse_cpuinfo(AMD_EPYC).family == 25
    assert hardware.parse_cpuinfo(XEON_AMX).family == 0  # not given
    arm = hardware.parse_cpuinfo("processor : 0\nFeatures : fp asimd sve bf16\n")
    assert arm.bfloat16_hardware and arm.family == 0


def test_onednn_state_is_the_models():
    from i3d_keras.models import convolution  # noqa: PLC0415

    assert hardware.onednn_enabled() is convolution.onednn_enabled()
