"""Tests of i3d_keras.data.parallel: the progress line shared by the data tools."""

import io

from i3d_keras.data.parallel import Progress


def test_progress_rate_counts_finished_work_only():
    stream = io.StringIO()  # not a terminal: one plain line per update
    bar = Progress(3, desc="predict", stream=stream, interval=0)
    bar.update(1, failed=1)  # a file that failed at once says nothing of the rate
    first = stream.getvalue().splitlines()[-1]
    assert first.startswith("predict 1/3 videos") and "(1 failed)" in first
    assert "| ? videos/s |" in first and "ETA ?" in first
    bar.update(1)
    second = stream.getvalue().splitlines()[-1]
    assert "? videos/s" not in second and "ETA ?" not in second
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()

    one = io.StringIO()
    Progress(1, desc="predict", stream=one, interval=0).update(1)
    assert one.getvalue().startswith("predict 1/1 video 100.0%")


def test_progress_off_a_terminal_prints_a_line_per_step():
    stream = io.StringIO()
    bar = Progress(4, desc="flow", stream=stream)  # the default: every step
    for _ in range(4):
        bar.update(1)
    lines = stream.getvalue().splitlines()
    assert [line.split(" videos")[0] for line in lines] == [
        "flow 1/4", "flow 2/4", "flow 3/4", "flow 4/4"]
    quiet = io.StringIO()
    bar = Progress(4, desc="flow", stream=quiet, interval=3600)  # rate-limited on request
    for _ in range(4):
        bar.update(1)
    assert len(quiet.getvalue().splitlines()) == 2  # the first and the final line
