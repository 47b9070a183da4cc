"""Checks this machine: does it compute I3D's convolutions and gradients right?

Prints the CPU (model, AVX2 / AVX-512 / AMX flags), GPUs, TensorFlow, Keras and
oneDNN (version, instruction set, on or off), and the convolution, gradient and
precision paths the package takes here. Times float32 against bfloat16 on a
piece of I3D (a few seconds; not with a GPU) and says whether the precision
`--mixed_precision auto` picks is the faster one. Then checks, in child
processes (a kernel that crashes is reported with its shape), the forward pass
and both gradients of every distinct convolution and pooling configuration of
I3D (stem included) at clips of 1, 5, 7, 8 and 16 frames against float64
references, and a small two-stream I3D end to end, in float32 and in the
precision `auto` picks. 30-60 s on a 2-core AMD EPYC.

Why: TensorFlow's oneDNN kernels differ by CPU, and some are defective (on
AVX-512 Xeons, the 3D convolution gradients of short clips crash or return
NaN); see docs/guides/precision-and-cpus.md, "Correct on every CPU".

Usage:
  python tools/doctor.py                           # report + checks; exit 1 if wrong
  python tools/doctor.py --json doctor.json        # the same, also as JSON
  python tools/doctor.py --tune                    # also cache the timing: 'auto'
                                                   # then picks by it on this machine
  python tools/doctor.py --precisions float32,bfloat16   # also bfloat16 (checked by
                                                   # default where 'auto' picks it)
  python tools/doctor.py --implementations conv2d,conv3d # also TF's own Conv3D
  python tools/doctor.py --sweep --json sweep.json # a grid of 306 strided
                                                   # convolutions (minutes)

Exit status: 0 all checks passed, 1 some check failed (each is listed with its
shape), 2 usage error.
"""

import sys
import time

from i3d_keras.utils import console, outputs

console.setup()  # before TensorFlow loads: quiet unless --verbose

from absl import flags  # noqa: E402

_JSON = flags.DEFINE_string("json", None, "Also write the report and every result here.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --json file.")
_PRECISIONS = flags.DEFINE_list("precisions", None, "Compute dtypes to check: float32, "
                                "bfloat16, float16 (default: float32 and the one the "
                                "package's 'auto' precision computes in here, if another).")
_IMPLEMENTATIONS = flags.DEFINE_list("implementations", None, "Convolution implementations "
                                     "to check: conv2d, conv3d (default: the one the package "
                                     "uses here).")
_LENGTHS = flags.DEFINE_list("clip_lengths", ["1", "5", "7", "8", "16"], "Clip lengths (frames) "
                             "each layer's input gets.")
_TUNE = flags.DEFINE_bool("tune", False, "Cache the float32/bfloat16 timing for this machine: "
                          "'--mixed_precision auto' then picks by it here (as "
                          "I3D_KERAS_TUNE=1 does on its first run).")
_SWEEP = flags.DEFINE_bool("sweep", False, "Instead of I3D's layers, a grid of 'same' "
                           "convolutions: kernels 3/5/7, strides 1/2, 1-17 frames, 13/16/32 "
                           "pixels (maps a kernel defect's region).")


def _print_report(report):
    cpu = report["cpu"]
    flags_text = " ".join(f"{name}{'+' if on else '-'}" for name, on in cpu["flags"].items())
    lines = [
        f"CPU         {cpu['model']} ({cpu['kind']}, {console.plural(cpu['cores'], 'core')})",
        f"CPU flags   {flags_text}",
        "GPU         " + (", ".join(f"{g['name']} (compute {g['compute_capability']})"
                                    for g in report["gpus"]) or "none"),
        f"Python      {report['python']}, TensorFlow {report['tensorflow']}, "
        f"Keras {report['keras']}",
    ]
    onednn = report["onednn"]
    if onednn["enabled"]:
        kernels = ", ".join(f"{k} {v}" for k, v in onednn.get("kernels", {}).items())
        lines.append(f"oneDNN      on (TF_ENABLE_ONEDNN_OPTS={onednn['TF_ENABLE_ONEDNN_OPTS']}), "
                     f"version {onednn.get('version', '?')}, ISA {onednn.get('isa', '?')}"
                     + (f"; 3D gradient kernels: {kernels}" if kernels else ""))
    else:
        lines.append(f"oneDNN      off (TF_ENABLE_ONEDNN_OPTS={onednn['TF_ENABLE_ONEDNN_OPTS']}): "
                     "TensorFlow's Eigen kernels")
    for name, value in report["paths"].items():
        lines.append(f"{name:11s} {value}")
    timing = report.get("precision timing", {})
    if "summary" in timing:
        t = timing["timings"]
        lines.append(f"timing      float32 {t['float32']['forward']:.3f} s forward, "
                     f"{t['float32']['train_step']:.3f} s training step; bfloat16 "
                     f"{t['bfloat16']['forward']:.3f} s, {t['bfloat16']['train_step']:.3f} s "
                     "(I3D's Mixed_3b and Mixed_3c)")
        lines.append(f"            {timing['summary']}"
                     + ("" if timing["auto_is_faster"] is not False else
                        " (python tools/doctor.py --tune: auto follows this timing)"))
    elif timing:
        lines.append(f"timing      {timing.get('skipped') or 'failed: ' + timing['error']}")
    if "cached" in timing:
        lines.append(f"            cached in {timing['cached']}" if timing["cached"] else
                     "            not cached (the cache folder cannot be written)")
    print("\n".join(lines), flush=True)


def _time_precisions(report):
    """Times float32 against bfloat16 into `report`; with --tune, caches the
    timing and updates auto's choice."""
    from i3d_keras.benchmarks import diagnostics  # noqa: PLC0415
    from i3d_keras.runtime import hardware, precision, tuning  # noqa: PLC0415

    auto = report["paths"]["precision (auto)"].split()[0]
    console.info("Timing float32 against bfloat16 on a piece of I3D ...")
    timing = diagnostics.precision_timing(auto)
    if _TUNE.value and "timings" in timing:
        timing["cached"] = tuning.write_measurement(hardware.cpu_info(), timing["timings"])
        policy, reason = precision.choose_precision("auto")
        report["paths"]["precision (auto)"] = f"{policy} ({reason})"
        timing.update(diagnostics.precision_timing(policy, measure=lambda: timing["timings"]))
    elif _TUNE.value:
        console.info(f"--tune: nothing cached ({timing.get('skipped') or timing['error']})")
    report["precision timing"] = timing


def main(argv):
    if len(argv) > 1:
        console.fail(f"unexpected arguments {argv[1:]}")
    if _JSON.value:
        outputs.check_output_file(_JSON.value, flag="json", overwrite=_OVERWRITE.value)
    from i3d_keras.benchmarks import diagnostics  # noqa: PLC0415

    dtypes = [p.strip() for p in _PRECISIONS.value or []]
    bad = [p for p in dtypes if p not in diagnostics.TOLERANCES]
    if bad:
        console.fail(f"--precisions takes {sorted(diagnostics.TOLERANCES)}. Received: {bad}")
    try:
        lengths = [int(n) for n in _LENGTHS.value]
    except ValueError:
        console.fail(f"--clip_lengths takes frame counts. Received: {_LENGTHS.value}")
    if not lengths or min(lengths) < 1:
        console.fail(f"--clip_lengths must be positive. Received: {lengths}")
    implementations = _IMPLEMENTATIONS.value
    if implementations and set(implementations) - {"conv2d", "conv3d"}:
        console.fail(f"--implementations takes conv2d, conv3d. Received: {implementations}")

    start = time.monotonic()
    report = diagnostics.machine_report()
    _time_precisions(report)
    _print_report(report)
    if not implementations:
        implementations = [report["paths"]["convolution"]]
    if not dtypes:
        auto = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(
            report["paths"]["precision (auto)"].split()[0])
        dtypes = ["float32"] + ([auto] if auto else [])
    if _SWEEP.value:
        cases = diagnostics.sweep_cases(implementations=implementations, dtypes=dtypes)
        what = "strided convolutions of the sweep"
    else:
        cases = diagnostics.model_cases(clip_lengths=lengths, dtypes=dtypes,
                                        implementations=implementations)
        what = (f"I3D's convolution and pooling configurations at "
                f"{', '.join(map(str, lengths))} frames, and a two-stream I3D")
    console.info(f"Checking {console.plural(len(cases), 'case')} against float64: {what} ...")
    from i3d_keras.data.parallel import Progress  # noqa: PLC0415

    progress = Progress(len(cases), desc="checked", unit="cases")

    def on_result(result):
        progress.update(1, failed=int(not result.ok))
        if not result.ok:
            console.info(result.summary())

    results = diagnostics.run_isolated(cases, on_result=on_result)
    progress.close()
    failed = [r for r in results if not r.ok]
    worst = max((v for r in results if r.ok for v in r.errors.values()), default=0.0)
    if failed:
        print(f"FAILED: {len(failed)} of {console.plural(len(results), 'case')} wrong "
              f"({time.monotonic() - start:.0f} s):")
        for result in failed:
            print("  " + result.summary())
    else:
        print(f"OK: all {console.plural(len(results), 'case')} match float64 (largest relative "
              f"error {worst:.1e}; {time.monotonic() - start:.0f} s)")
    if _JSON.value:
        try:
            outputs.write_json(_JSON.value, {"machine": report,
                                             "results": [r.to_json() for r in results]})
        except OSError as error:
            console.fail(f"cannot write {_JSON.value!r}: {error.strerror}")
        console.info(f"wrote {_JSON.value}")
    sys.exit(console.EXIT_FAILED if failed else console.EXIT_OK)


if __name__ == "__main__":
    console.run(main)
