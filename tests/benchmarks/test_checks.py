"""Tests for i3d_keras.benchmarks.checks: the benchmark tools' list flags and videos."""

import numpy as np
import pytest
from absl import flags

from i3d_keras.benchmarks import checks
from i3d_keras.utils import outputs


@pytest.mark.parametrize("value, received", [
    ("abc", "Received: 'abc'"), ("16,-8", "Received: '-8'"), ("0", "Received: '0'"),
    ("", "Received: an empty list"), (" , ", "Received: an empty list"),
    ("16,16", "Received: '16' twice")])
def test_int_list_refuses_what_is_no_positive_whole_number(value, received):
    with pytest.raises(ValueError, match="expected") as error:
        checks.int_list(value)
    assert str(error.value).endswith(received), error.value


def test_int_list_reads_lists_and_text_and_may_allow_zero_or_nothing():
    assert checks.int_list("16, 64,") == [16, 64]
    assert checks.int_list(["250", "16"]) == [250, 16]
    assert checks.int_list("0,16", lower=0) == [0, 16]
    assert checks.int_list("", lower=0, allow_empty=True) == []


def test_name_list_refuses_unknown_missing_and_repeated_names():
    tools = ("extract_features", "predict")
    assert checks.name_list("predict,extract_features", tools) == ["predict",
                                                                   "extract_features"]
    for value, received in (("", "an empty list"), ("predict,flow", "'flow'"),
                            ("predict,predict", "'predict' twice")):
        with pytest.raises(ValueError, match=f"Received: {received}$"):
            checks.name_list(value, tools)
    assert checks.name_list("", tools, allow_empty=True) == []


def test_list_flags_are_refused_while_absl_parses_the_command_line():
    values = flags.FlagValues()
    flags.DEFINE(checks.IntListParser(1), "frames", "16,64", "", flag_values=values,
                 serializer=flags.CsvListSerializer(","))
    flags.DEFINE(checks.NameListParser(("a", "b")), "tools", "a,b", "", flag_values=values,
                 serializer=flags.CsvListSerializer(","))
    values(["tool"])
    assert values.frames == [16, 64] and values.tools == ["a", "b"]
    for arg, message in (("--frames=abc", "flag --frames=abc: expected whole numbers >= 1"),
                         ("--frames=-8", "Received: '-8'"),
                         ("--tools=", "flag --tools=: expected one or more of a, b")):
        with pytest.raises(flags.IllegalFlagValueError, match=message):
            values(["tool", arg])
    values(["tool", "--frames=8,32"])
    assert values["frames"].serialize() == "--frames=8,32"  # as a child process takes it
    assert values["frames"].parser.lower_bound == 1  # the CLI page shows the bound


def test_check_video_names_a_corrupt_or_short_video(tmp_path):
    from i3d_keras.data.video import write_video

    rng = np.random.default_rng(0)
    clip = write_video(tmp_path / "clip.mp4", rng.integers(0, 255, (6, 32, 48, 3), np.uint8))
    assert checks.check_video(clip, flag="video", min_frames=4) == 4
    with pytest.raises(outputs.OutputError,
                       match=r"--video must have at least 7 frames at 25 fps \(6 pairs\). "
                             r"Received: '.*clip.mp4' with 6 frames"):
        checks.check_video(clip, flag="video", min_frames=7, why="6 pairs")
    one = write_video(tmp_path / "one.mp4", rng.integers(0, 255, (1, 32, 48, 3), np.uint8))
    with pytest.raises(outputs.OutputError, match="with 1 frame$"):
        checks.check_video(one, flag="video", min_frames=2)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:1000])
    with pytest.raises(outputs.OutputError,
                       match=r"--video2 must be a video that decodes. Received: "
                             r"'.*truncated.mp4' \(.*\)"):
        checks.check_video(truncated, flag="video2")
    with pytest.raises(outputs.OutputError, match="--video: no such file"):
        checks.check_video(tmp_path / "missing.mp4", flag="video")
