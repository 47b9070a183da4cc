"""The benchmark tools' checks of what they are given, before any timing starts.

Lists in flags (`--frames 16,64`, `--tools predict`) are parsed while absl
reads the command line (`IntListParser`, `NameListParser`), so that a bad
value is a usage error naming the flag (`TOOL: error: flag --frames=abc: ...`,
exit 2) and not a traceback minutes into a run; the videos a benchmark times
are decoded far enough to know they hold the frames it needs (`check_video`).

This module imports only the standard library and absl's flags (OpenCV when a
video is checked).

Example (a tool's flag):

>>> parser = IntListParser(1)
>>> parser.parse("16, 64")
[16, 64]
>>> parser.parse("16,abc")
Traceback (most recent call last):
...
ValueError: expected whole numbers >= 1, separated by commas (e.g. 16,64). Received: 'abc'
"""

from __future__ import annotations

import os
from typing import Iterable, List, Optional, Sequence, Union

from absl import flags

from i3d_keras.utils import outputs

ListValue = Union[str, Sequence[str], None]


def _items(value: ListValue) -> List[str]:
    """The stripped, non-blank items of `"a,b"` or `["a", "b"]` (a trailing
    comma is no mistake worth stopping for)."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(item).strip() for item in items if str(item).strip()]


def _once(items: Sequence, shown: Sequence[str]) -> None:
    for index, item in enumerate(items):
        if item in items[:index]:
            raise ValueError(f"expected each value once. Received: {shown[index]!r} twice")


def int_list(value: ListValue, *, lower: int = 1, allow_empty: bool = False) -> List[int]:
    """`[16, 64]` from `"16,64"` (or `["16", "64"]`): whole numbers >= `lower`,
    each once.

    Args:
        value: the flag's text, or its items.
        lower: the smallest value allowed.
        allow_empty: an empty list is allowed (else an error).

    Returns:
        The numbers, in the order given.

    Raises:
        ValueError: an item that is no whole number or is below `lower`, a
            repeated item, or no item where one is needed; the message says
            what was expected and what was received.

    Example:

    >>> int_list("0,16", lower=0)
    [0, 16]
    >>> int_list("-8")
    Traceback (most recent call last):
    ...
    ValueError: expected whole numbers >= 1, separated by commas (e.g. 16,64). Received: '-8'
    """
    expected = f"expected whole numbers >= {lower}, separated by commas (e.g. 16,64)"
    items = _items(value)
    numbers = []
    for item in items:
        try:
            number = int(item)
        except ValueError:
            raise ValueError(f"{expected}. Received: {item!r}") from None
        if number < lower:
            raise ValueError(f"{expected}. Received: {item!r}")
        numbers.append(number)
    if not numbers and not allow_empty:
        raise ValueError(f"{expected}. Received: an empty list")
    _once(numbers, items)
    return numbers


def name_list(value: ListValue, choices: Iterable[str], *,
              allow_empty: bool = False) -> List[str]:
    """`["rgb", "rgb+flow"]` from `"rgb,rgb+flow"`: names among `choices`, each once.

    Args:
        value: the flag's text, or its items.
        choices: the names allowed.
        allow_empty: an empty list is allowed (else an error).

    Returns:
        The names, in the order given.

    Raises:
        ValueError: an unknown or repeated name, or no name where one is
            needed; the message lists the choices and what was received.

    Example:

    >>> name_list("predict", ("extract_features", "predict"))
    ['predict']
    >>> name_list("", ("extract_features", "predict"))
    Traceback (most recent call last):
    ...
    ValueError: expected one or more of extract_features, predict, ... Received: an empty list
    """
    choices = tuple(choices)
    expected = f"expected one or more of {', '.join(choices)}, separated by commas"
    names = _items(value)
    for name in names:
        if name not in choices:
            raise ValueError(f"{expected}. Received: {name!r}")
    if not names and not allow_empty:
        raise ValueError(f"{expected}. Received: an empty list")
    _once(names, names)
    return names


class IntListParser(flags.ListParser):
    """absl's parser of a comma-separated list of whole numbers >= `lower_bound`
    (`int_list`): a bad value is refused while the command line is parsed.

    Use with `flags.DEFINE(IntListParser(1), "frames", "16,64", "...",
    serializer=flags.CsvListSerializer(","))`; the flag's value is a list of ints.
    """

    def __init__(self, lower_bound: int = 1, allow_empty: bool = False):
        super().__init__()
        self.lower_bound = lower_bound
        self.allow_empty = allow_empty

    def parse(self, argument):
        return int_list(argument, lower=self.lower_bound, allow_empty=self.allow_empty)

    def flag_type(self) -> str:
        return "comma separated list of ints"


class NameListParser(flags.ListParser):
    """absl's parser of a comma-separated list of names among `choices`
    (`name_list`): a bad value is refused while the command line is parsed."""

    def __init__(self, choices: Sequence[str], allow_empty: bool = False):
        super().__init__()
        self.choices = tuple(choices)
        self.allow_empty = allow_empty

    def parse(self, argument):
        return name_list(argument, self.choices, allow_empty=self.allow_empty)

    def flag_type(self) -> str:
        return "comma separated list of strings"


def check_video(path: Union[str, os.PathLike], *, flag: str, min_frames: int = 1,
                why: Optional[str] = None) -> int:
    """Checks that a video a benchmark times decodes and holds `min_frames`
    frames (at 25 fps, as `i3d_keras.data.video.read_video` gives them).

    Decodes only the first `min_frames` frames: call it before the timings.

    Args:
        path: the video.
        flag: the flag that named it (for the message).
        min_frames: the frames the benchmark reads.
        why: what needs them, for the message (e.g. "--pairs 20, plus 1").

    Returns:
        The frames decoded (`min_frames`).

    Raises:
        i3d_keras.utils.outputs.OutputError: no such file, a file that does
            not decode, or fewer frames than `min_frames` (a usage error).
    """
    outputs.check_input_path(path, flag=flag, kind="file")
    from i3d_keras.data import video  # noqa: PLC0415 (OpenCV: only when a video is checked)

    try:
        count = len(video.read_video(path, max_frames=min_frames))
    except video.VideoDecodeError as error:
        raise outputs.OutputError(f"--{flag} must be a video that decodes. Received: "
                                  f"{error.path!r} ({error.reason})") from None
    if count < min_frames:
        reason = f" ({why})" if why else ""
        raise outputs.OutputError(
            f"--{flag} must have at least {min_frames} frames at 25 fps{reason}. Received: "
            f"{os.fspath(path)!r} with {count} frame{'' if count == 1 else 's'}")
    return count


__all__ = ["IntListParser", "NameListParser", "check_video", "int_list", "name_list"]
