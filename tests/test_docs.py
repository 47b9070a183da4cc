"""Tests of the documentation's sources: nothing the site generates can silently go missing.

`mkdocs build --strict` (run by .ci/run) fails on a broken link or a reference to
a name that does not exist; these tests check what a build cannot see: that
every public name and every module has its reference page, that every tool has
a CLI page listing each flag it defines, that every result file in
`benchmarks/results/` renders with its machine and date, and that the README
stays short and its links lead somewhere. They need no MkDocs (only the
generator, `docs/_scripts/docsgen.py`).
"""

import ast
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_scripts"))

import docsgen  # noqa: E402

import i3d_keras  # noqa: E402


@pytest.fixture(scope="module")
def api_pages():
    return docsgen.reference_pages()


@pytest.fixture(scope="module")
def cli_pages():
    return docsgen.cli_pages()  # imports every tool, each in its own Python


def test_every_public_name_is_documented_in_the_api_reference(api_pages):
    index = api_pages["reference/api/index.md"]
    assert sorted(docsgen.public_names()) == sorted(i3d_keras.__all__)
    for name, module in docsgen.public_names().items():
        page = api_pages[docsgen.api_page_path(module)]
        assert f"::: {module}\n" in page, f"{module} has no reference page"
        # mkdocstrings renders the names a module defines at its top level; the index
        # links each name to its anchor, which `mkdocs build --strict` resolves.
        assert name in docsgen.defined_names(module), f"{name} is not defined in {module}"
        assert f"[`{name}`][{module}.{name}]" in index


def test_every_module_of_every_folder_has_a_reference_page(api_pages):
    modules = sorted(f"i3d_keras.{p.parent.name}.{p.stem}"
                     for p in (ROOT / "i3d_keras").glob("*/*.py") if p.stem != "__init__")
    assert modules and sorted(docsgen.reference_modules()) == modules
    nav = api_pages["reference/api/SUMMARY.md"]
    for module in modules:
        assert f"::: {module}\n" in api_pages[docsgen.api_page_path(module)]
        assert docsgen.api_page_path(module)[len("reference/api/"):] in nav


def _defined_flags(tool):
    """The flag names a tool's source defines (`flags.DEFINE_*("name", ...)`)."""
    tree = ast.parse((ROOT / "tools" / f"{tool}.py").read_text(encoding="utf-8"))
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("DEFINE_") and node.args
            and isinstance(node.args[0], ast.Constant)}


def test_every_tool_has_a_cli_page_with_each_of_its_flags(cli_pages):
    tools = sorted(p.stem for p in (ROOT / "tools").glob("*.py"))
    assert tools and docsgen.tool_names() == tools
    index = cli_pages["reference/cli/index.md"]
    for tool in tools:
        page = cli_pages[f"reference/cli/{tool}.md"]
        assert page.startswith(f"# `tools/{tool}.py`")
        assert f"]({tool}.md)" in index and f"[{tool}.py]({tool}.md)" in \
            cli_pages["reference/cli/SUMMARY.md"]
        defined = _defined_flags(tool)
        assert defined, f"tools/{tool}.py defines no flags?"
        for name in defined | {"verbose"}:
            assert f"| `--{name}`" in page, f"tools/{tool}.py --{name} missing from its page"


def test_a_tools_docstring_becomes_text_lists_and_code_blocks():
    doc = ("Does a thing.\n\nMeasures:\n  * the first, which\n    goes on;\n  * the second.\n"
           "Every timing is a median.\n\nUsage:\n  # a comment\n  python tools/x.py --a 1 \\\n"
           "      --b <2>\n\nExit status: 0 when a*b and <c> work.\n")
    text = docsgen.docstring_markdown(doc)
    assert "* the first, which goes on;\n* the second.\n\nEvery timing" in text
    assert "**Usage:**\n\n```bash\n# a comment\npython tools/x.py --a 1 \\\n    --b <2>\n```" \
        in text
    assert "a\\*b and &lt;c&gt; work." in text


def test_doctest_blocks_are_fenced_for_the_reference():
    doc = ("Builds it.\n\nExample:\n\n>>> x = [1, 2]  # doctest: +SKIP\n>>> x[0]\n1\n\n"
           "More text [not][a link].")
    fenced = docsgen.fence_doctests(doc)
    assert "**Example:**\n\n```pycon\n>>> x = [1, 2]\n>>> x[0]\n1\n```\n" in fenced
    assert fenced.endswith("More text [not][a link].")
    indented = docsgen.fence_doctests("Args:\n  a: b\n\nExample:\n\n    >>> f()\n")
    assert "\n```pycon\n>>> f()\n```" in indented  # at the heading's indentation, not deeper


def test_every_result_file_renders_with_its_machine_and_date():
    results = docsgen.load_results()
    tables = docsgen.benchmark_tables()
    for path, kind, data in results:
        cpu, _ = docsgen.result_machine(data)
        assert kind in docsgen._KINDS, path
        assert f"### {cpu}, {docsgen.result_date(path, data)}" in tables, path
        assert path.name in tables
        assert docsgen._ROWS[kind](data), f"{path.name}: no figures rendered"


def test_a_streaming_result_renders_its_runs(tmp_path):
    # The shape tools/benchmark_streaming.py writes (with or without its run record).
    result = {"machine": {"cpu": "Some CPU", "kind": "x86-64 with AVX2, no AVX-512",
                          "cores": 4}, "window": 64,
              "runs": [{"tool": "predict", "streams": "rgb", "video_seconds": 600,
                        "wall_seconds": 321.5, "peak_mb": 1234, "realtime_factor": 1.866,
                        "ok": True},
                       {"tool": "extract_features", "streams": "rgb+flow",
                        "video_seconds": 30, "ok": False}]}
    (tmp_path / "streaming_2026-12-01_some-cpu.json").write_text(json.dumps(result))
    tables = docsgen.benchmark_tables(tmp_path)
    assert "### Some CPU, 2026-12-01" in tables and "4 cores" in tables
    assert "| predict --window 64, rgb, 600 s video | peak 1234 MB, 321.5 s, 1.87x real time |" \
        in tables
    assert "| extract_features --window 64, rgb+flow, 30 s video | failed |" in tables
    (tmp_path / "mystery.json").write_text("{}")
    with pytest.raises(ValueError, match="which tool wrote it"):
        docsgen.load_results(tmp_path)


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [link.split("#")[0] for link in links if "://" not in link and
             not link.startswith("#")]
    assert any(link.startswith("docs/") for link in local), "the README links into the docs"
    for link in local:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_every_page_in_the_navigation_exists():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:"):]
    pages = re.findall(r"([\w/.-]+\.md)\b", nav)
    assert pages
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), f"mkdocs.yml's nav names docs/{page}"
