"""What a benchmark's result file says about its run: machine, versions, commit, date.

`tools/benchmark.py`, `tools/benchmark_data.py`, `tools/benchmark_fvd.py` and
`tools/benchmark_streaming.py` put `run_record(tool)` under the key `"run"` of
the JSON they write. The result files kept in the repository
(`benchmarks/results/`) are rendered into the documentation's Benchmarks page
when the site is built (`docs/_scripts/docsgen.py`), each row naming the
machine and the date it was measured on, so that no figure in the
documentation is typed by hand.

The record holds no timings: only what is needed to read them (which CPU,
how many cores, how busy the machine was, which TensorFlow, which commit).

Example:

>>> from i3d_keras.benchmarks import results
>>> record = results.run_record("benchmark_fvd",
...                             argv=["tools/benchmark_fvd.py", "--clips", "4"])
>>> record["tool"], record["command"]
('benchmark_fvd', 'python tools/benchmark_fvd.py --clips 4')
>>> sorted(record["machine"])
['cores', 'cpu', 'family', 'flags', 'kind', 'load_average', 'onednn', 'platform', 'vendor']
>>> results.result_file_name(record).startswith("benchmark_fvd_")
True
"""

import datetime
import importlib.metadata
import os
import pathlib
import platform
import re
import shlex
import subprocess
import sys
from typing import List, Optional

#: The distributions whose versions a record names (`None` where not installed).
VERSIONED = ("tensorflow", "keras", "numpy", "opencv-contrib-python-headless",
             "ai-edge-litert", "i3d_keras")


def machine_record() -> dict:
    """The machine: CPU model, kind and notable flags, cores, OS, load, oneDNN.

    `load_average` is the 1-minute load when the record is made (Unix; `None`
    elsewhere): a figure measured while other jobs ran says so. `onednn` is
    whether TensorFlow runs its oneDNN kernels in this process (`None` when
    TensorFlow is not loaded: the record never loads it).
    """
    from i3d_keras.runtime import hardware  # noqa: PLC0415

    cpu = hardware.cpu_info()
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not Unix
        load = None
    onednn = hardware.onednn_enabled() if "tensorflow" in sys.modules else None
    return {"cpu": cpu.model, "vendor": cpu.vendor, "family": cpu.family, "kind": cpu.kind,
            "flags": sorted(f for f, present in cpu.notable_flags().items() if present),
            "cores": cpu.cores, "platform": platform.platform(), "load_average": load,
            "onednn": onednn}


def versions() -> dict:
    """`{distribution: version or None}` for `VERSIONED`, and Python's version."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def source_commit(folder: Optional[os.PathLike] = None) -> Optional[str]:
    """The git commit of the package's checkout, `+dirty` when tracked files differ.

    Args:
        folder: a folder inside the checkout (default: this package's).

    Returns:
        `"<40 hex digits>"`, `"<40 hex digits>+dirty"`, or `None` where the
        package is not in a git checkout (an installed wheel) or git is missing.
    """
    folder = pathlib.Path(folder or pathlib.Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                                text=True, timeout=30, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=folder, capture_output=True, text=True, timeout=30,
                                check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        return None
    return commit + ("+dirty" if status else "")


def run_record(tool: str, argv: Optional[List[str]] = None,
               now: Optional[datetime.datetime] = None) -> dict:
    """The `"run"` record of a result file.

    Args:
        tool: the tool's name (`"benchmark"`, `"benchmark_fvd"`, ...).
        argv: its command line (default `sys.argv`); the script's path is
            shortened to `tools/NAME.py`.
        now: the time of the run (default: now).

    Returns:
        `{"tool", "date" (UTC, ISO 8601), "command", "commit", "machine",
        "versions"}`.
    """
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(".py"):
        argv[0] = f"tools/{pathlib.Path(argv[0]).name}"
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {"tool": tool,
            "date": now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": shlex.join(["python", *argv]) if argv else None,
            "commit": source_commit(), "machine": machine_record(), "versions": versions()}


def result_file_name(record: dict) -> str:
    """A file name for a result in `benchmarks/results/`: `TOOL_DATE_CPU.json`.

    >>> result_file_name({"tool": "benchmark", "date": "2026-12-01T10:00:00Z",
    ...                   "machine": {"cpu": "AMD EPYC 9B45 (Zen 5)"}})
    'benchmark_2026-12-01_amd-epyc-9b45-zen-5.json'
    """
    cpu = re.sub(r"[^a-z0-9]+", "-", record["machine"]["cpu"].lower()).strip("-") or "cpu"
    return f"{record['tool']}_{record['date'][:10]}_{cpu}.json"
