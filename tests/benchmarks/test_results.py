"""Tests for i3d_keras.benchmarks.results: the run record of a benchmark's result file."""

import datetime
import json
import re
import subprocess

from i3d_keras.benchmarks import results


def test_run_record_names_tool_date_command_commit_machine_and_versions():
    now = datetime.datetime(2026, 12, 1, 10, 30, tzinfo=datetime.timezone.utc)
    record = results.run_record("benchmark", argv=["/somewhere/tools/benchmark.py", "--frames",
                                                   "16,64"], now=now)
    assert record["tool"] == "benchmark"
    assert record["date"] == "2026-12-01T10:30:00Z"
    assert record["command"] == "python tools/benchmark.py --frames 16,64"
    machine = record["machine"]
    assert machine["cpu"] and machine["kind"] and machine["cores"] >= 1
    assert isinstance(machine["flags"], list)
    assert record["versions"]["python"].count(".") == 2
    assert record["versions"]["tensorflow"].startswith("2.")
    assert record["versions"]["i3d_keras"]
    json.dumps(record)  # a result file can hold it


def test_source_commit_is_this_checkouts():
    commit = results.source_commit()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=results.__file__.rsplit("/", 1)[0],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: nothing to name
        assert commit is None
        return
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit)
    assert commit.startswith(head)


def test_source_commit_outside_a_checkout_is_none(tmp_path):
    assert results.source_commit(tmp_path) is None


def test_result_file_name_is_tool_date_and_cpu():
    record = {"tool": "benchmark_streaming", "date": "2026-12-01T10:30:00Z",
              "machine": {"cpu": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"}}
    assert results.result_file_name(record) == (
        "benchmark_streaming_2026-12-01_intel-r-xeon-r-platinum-8481c-cpu-2-70ghz.json")
