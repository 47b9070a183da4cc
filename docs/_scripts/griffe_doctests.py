"""A griffe extension: the docstrings' `>>>` examples rendered as code blocks.

The package's docstrings write examples as

    Example:

        >>> model = InceptionI3D(num_classes=10, frames=16, image_size=64)

(a blank line after the heading, as doctest and `help()` read best), which
griffe's Google-style parser does not take for an Examples section: the
lines would be rendered as Markdown, where `>>>` is a nested quotation and
`x["a"][0]` a link. This extension puts every doctest block (a `>>>` line,
its `...` continuations and its expected output, up to a blank line) into a
fenced `pycon` code block at the indentation of the text around it, drops
the `# doctest:` directives from what is shown, and turns the heading into a
bold line. The docstrings themselves are not changed, and doctest still runs
them as written.
"""

import pathlib
import sys

import griffe

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from docsgen import fence_doctests  # noqa: E402  (no griffe there: the tests use it)


class DoctestsAsCode(griffe.Extension):
    """Fences the doctest blocks of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:  # noqa: ARG002
        if obj.docstring and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
