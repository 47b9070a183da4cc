"""Generates the reference pages and the benchmark tables when the site is built.

Run by mkdocs-gen-files (mkdocs.yml): the API reference (a page per module),
the CLI reference (a page per tool, from its docstring and absl flags), the
result files of benchmarks/results/ copied into the site and rendered into
benchmarks/index.md where it says `<!-- benchmark-tables -->`, and the modules'
table into design/layout.md (`<!-- layout-tree -->`). Nothing is written to
docs/ itself.
"""

import pathlib
import sys

import mkdocs_gen_files

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import docsgen  # noqa: E402

for path, text in {**docsgen.reference_pages(), **docsgen.cli_pages()}.items():
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text)

for result in sorted(docsgen.RESULTS.glob("*.json")):
    with mkdocs_gen_files.open(f"benchmarks/results/{result.name}", "w") as f:
        f.write(result.read_text(encoding="utf-8"))


def fill(page, marker, text):
    """Replaces `marker` in the (hand-written) page with generated `text`."""
    with mkdocs_gen_files.open(page, "r") as f:
        source = f.read()
    if marker not in source:
        raise SystemExit(f"docs/{page} lacks {marker}")
    with mkdocs_gen_files.open(page, "w") as f:
        f.write(source.replace(marker, text))


fill("benchmarks/index.md", "<!-- benchmark-tables -->",
     docsgen.benchmark_tables(link_prefix="results/"))
fill("design/layout.md", "<!-- layout-tree -->", docsgen.layout_table())
