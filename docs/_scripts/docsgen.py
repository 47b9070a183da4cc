"""What the documentation site generates from the code and the data, at build time.

- The API reference: a page per module of every subpackage (mkdocstrings
  renders its docstrings) and an index of `i3d_keras.__all__`, each name
  linked to where it is documented (`reference_pages`).
- The CLI reference: a page per tool in `tools/`, its module docstring and a
  table of its absl flags, read by importing the tool in a fresh Python
  (absl's flags are global: two tools in one process would clash)
  (`tool_flags`, `tool_page`).
- The Benchmarks tables, from the result files in `benchmarks/results/`
  (`benchmark_tables`).

Used by `gen_pages.py` (mkdocs-gen-files), `hooks.py` (MkDocs hooks) and
`tests/test_docs.py`. Needs only the standard library, absl and the package's
`_api` table (no TensorFlow, no MkDocs).
"""

import ast
import concurrent.futures
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
RESULTS = ROOT / "benchmarks" / "results"
PACKAGE = "i3d_keras"

sys.path.insert(0, str(ROOT))
from i3d_keras import _api  # noqa: E402  (the table of public names; no TensorFlow)

# ---------------------------------------------------------------------------
# API reference
# ---------------------------------------------------------------------------


def reference_modules():
    """`["i3d_keras.benchmarks.diagnostics", ...]`: every module of every
    subpackage, in the layers' order (bottom up), then by name."""
    return [f"{PACKAGE}.{sub}.{module}" for layer in _api.LAYERS for sub in sorted(layer)
            for module in _api.modules_of(sub)]


def public_names():
    """`{name: "i3d_keras.<module>"}` for every name of `i3d_keras.__all__`."""
    return {name: f"{PACKAGE}.{module}" for name, module in sorted(_api.OWNER.items())}


def module_docstring(path):
    """The module docstring of a file, as written (continuation backslashes kept)."""
    source = pathlib.Path(path).read_text(encoding="utf-8")
    tree = ast.parse(source)
    if not (tree.body and isinstance(tree.body[0], ast.Expr)
            and isinstance(tree.body[0].value, ast.Constant)
            and isinstance(tree.body[0].value.value, str)):
        return ""
    node = tree.body[0]
    lines = source.splitlines()[node.lineno - 1:node.end_lineno]
    text = "\n".join(lines).strip()
    for quote in ('"""', "'''"):
        if text.startswith(quote) and text.endswith(quote):
            return text[3:-3].strip("\n")
    return ast.get_docstring(tree) or ""


def first_sentence(text):
    """The first sentence (or line) of a docstring, for tables."""
    first = " ".join(text.strip().split("\n\n")[0].split())
    match = re.match(r"(.+?\.)(\s|$)", first)
    return match.group(1) if match else first


def module_path(module):
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def api_page(module):
    """The Markdown of a module's reference page."""
    return (f"# `{module}`\n\n"
            f"::: {module}\n"
            "    options:\n"
            "      show_root_heading: false\n"
            "      show_root_toc_entry: false\n")


def api_index():
    """The API reference's front page: conventions, `i3d_keras.__all__`, the modules."""
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings when the site is built. Every name of",
        "`i3d_keras.__all__` is importable from the package (`i3d_keras.InceptionI3D`)",
        "and from its folder (`i3d_keras.models.InceptionI3D`); it is documented in the",
        "module that defines it.",
        "",
        "The examples (`>>>`) are run by the test suite's docstring check",
        "(`python -m pytest --doctest-modules i3d_keras`, run by CI). Those that download",
        "weights, need your files or run for minutes are marked `# doctest: +SKIP`.",
        "They assume:",
        "",
        "```python",
        "import numpy as np",
        "import keras",
        "import tensorflow as tf",
        "import i3d_keras",
        "from i3d_keras import *   # the names below",
        "```",
        "",
        "## `i3d_keras.__all__`",
        "",
        "| name | module | what it is |",
        "|---|---|---|",
    ]
    for name, module in public_names().items():
        summary = object_summary(module, name)
        page = module_link(module)
        lines.append(f"| [`{name}`][{module}.{name}] | [`{module}`]({page}) | "
                     f"{_cell(summary)} |")
    lines += ["", "## Modules", "", "| module | what it holds |", "|---|---|"]
    for module in reference_modules():
        doc = module_docstring(module_path(module))
        lines.append(f"| [`{module}`]({module_link(module)}) | {_cell(first_sentence(doc))} |")
    return "\n".join(lines) + "\n"


def module_link(module, relative_to="reference/api/index.md"):
    """A page's link from `relative_to` (both relative to docs/)."""
    target = api_page_path(module)
    start = pathlib.PurePosixPath(relative_to).parent
    return os.path.relpath(target, start).replace(os.sep, "/")


def api_page_path(module):
    """`"reference/api/models/i3d.md"` for `"i3d_keras.models.i3d"`."""
    parts = module.split(".")[1:]
    return "reference/api/" + "/".join(parts) + ".md"


def object_summary(module, name):
    """The first sentence of a module-level object's docstring (`""` for constants)."""
    tree = ast.parse(module_path(module).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.name == name:
            return first_sentence(ast.get_docstring(node) or "")
    return ""


def defined_names(module):
    """Names a module defines at its top level (functions, classes, assignments)."""
    tree = ast.parse(module_path(module).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def reference_pages():
    """`{path under docs/: Markdown}` of the API reference, and its navigation."""
    pages = {"reference/api/index.md": api_index()}
    nav = ["* [Overview](index.md)"]
    for layer in _api.LAYERS:
        for sub in sorted(layer):
            nav.append(f"* {PACKAGE}.{sub}")
            for module in _api.modules_of(sub):
                full = f"{PACKAGE}.{sub}.{module}"
                path = api_page_path(full)
                pages[path] = api_page(full)
                nav.append(f"    * [{module}]({path[len('reference/api/'):]})")
    pages["reference/api/SUMMARY.md"] = "\n".join(nav) + "\n"
    return pages


def layout_table():
    """Markdown: the folders bottom-up as `_api.LAYERS` orders them, each module
    linked to its reference page with the first sentence of its docstring."""
    lines = ["| layer | module | what it holds |", "|---|---|---|"]
    for number, layer in reversed(list(enumerate(_api.LAYERS))):
        for sub in sorted(layer):
            for module in _api.modules_of(sub):
                full = f"{PACKAGE}.{sub}.{module}"
                doc = module_docstring(module_path(full))
                link = module_link(full, relative_to="design/layout.md")
                lines.append(f"| {number} `{sub}/` | [`{module}.py`]({link}) | "
                             f"{_cell(first_sentence(doc))} |")
    return "\n".join(lines) + "\n"


_DOCTEST_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")
_EXAMPLE_HEADING = re.compile(r"^(\s*)(Examples?):\s*$")


def fence_doctests(text: str) -> str:
    """`text` with each doctest block in a fenced `pycon` code block."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if not stripped.startswith(">>>"):
            heading = _EXAMPLE_HEADING.match(line)
            out.append(f"{heading.group(1)}**{heading.group(2)}:**" if heading else line)
            i += 1
            continue
        indent = len(line) - len(stripped)
        block = []
        while i < len(lines) and lines[i].strip() and \
                len(lines[i]) - len(lines[i].lstrip()) >= indent:
            block.append(_DOCTEST_DIRECTIVE.sub("", lines[i][indent:]) if lines[i].lstrip().startswith(
                (">>>", "...")) else lines[i][indent:])
            i += 1
        # The fence sits at the indentation of the text before the block (a
        # heading's), never deeper: Markdown would read deeper as indented code.
        before = next((l for l in reversed(out) if l.strip()), "")
        at = min(indent, len(before) - len(before.lstrip())) if before else 0
        pad = " " * at
        if out and out[-1].strip():
            out.append("")
        out += [f"{pad}```pycon", *(pad + b for b in block), f"{pad}```"]
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# CLI reference
# ---------------------------------------------------------------------------

_FLAGS_OF_A_TOOL = r"""
import importlib.util, json, sys
from absl import flags
before = set(flags.FLAGS)
spec = importlib.util.spec_from_file_location("tool_under_doc", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)  # the tool's console.setup() does nothing when imported
found = []
for name in flags.FLAGS:
    flag = flags.FLAGS[name]
    if name in before or name != flag.name:
        continue
    owner = flags.FLAGS.find_module_defining_flag(name) or ""
    if owner.split(".")[0] in ("absl", "tensorflow", "keras", "tf_keras", "tensorboard"):
        continue  # the libraries' flags (absl's --helpfull lists them)
    parser = flag.parser
    found.append({
        "name": flag.name, "short_name": flag.short_name, "type": flag.flag_type(),
        "default": flag.default, "help": flag.help, "owner": owner,
        "enum": list(getattr(parser, "enum_values", None) or []) or None,
        "lower": getattr(parser, "lower_bound", None),
        "upper": getattr(parser, "upper_bound", None),
        "required": name in getattr(flags.FLAGS, "_required_flags", ()),
    })
print(json.dumps(found, default=str))
"""


def tool_names():
    """`["benchmark", ..., "train"]`: every tool in `tools/`."""
    return sorted(p.stem for p in TOOLS.glob("*.py") if not p.stem.startswith("_"))


def tool_flags(tool, timeout=300):
    """The flags a tool defines: `[{name, type, default, help, enum, lower, upper}]`.

    Imports the tool in a fresh Python (its `console.setup()` does nothing when
    imported; absl's flags are global, so each tool gets its own process).

    Raises:
        RuntimeError: the tool does not import.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run([sys.executable, "-c", _FLAGS_OF_A_TOOL, str(TOOLS / f"{tool}.py")],
                         capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if run.returncode != 0 or not run.stdout.strip():
        raise RuntimeError(f"tools/{tool}.py does not import: {run.stderr[-3000:]}")
    flags = json.loads(run.stdout.strip().splitlines()[-1])
    return sorted(flags, key=lambda f: f["name"])


def all_tool_flags(workers=None):
    """`{tool: flags}` for every tool, in parallel processes."""
    tools = tool_names()
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return dict(zip(tools, pool.map(tool_flags, tools)))


def _cell(text):
    """Text fit for a Markdown table cell."""
    text = " ".join(str(text).split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _flag_default(flag):
    default = flag["default"]
    if default is None:
        return "—"
    if isinstance(default, list):
        default = ",".join(str(d) for d in default)
    if isinstance(default, bool) or flag["type"] == "bool":
        return f"`{str(default).lower()}`"
    return f"`{default}`" if str(default) != "" else "`''`"


def _flag_type(flag):
    kind = flag["type"]
    if flag.get("enum"):
        kind = " \\| ".join(f"`{v}`" for v in flag["enum"])
    elif flag["lower"] is not None or flag["upper"] is not None:
        low = "" if flag["lower"] is None else f"≥ {flag['lower']}"
        high = "" if flag["upper"] is None else f"≤ {flag['upper']}"
        kind += f" ({', '.join(x for x in (low, high) if x)})"
    return kind


def docstring_markdown(doc):
    """A tool's docstring as Markdown: prose paragraphs as text, bullet lists
    (`*` or `-`) as lists, other indented blocks (usage examples) as shell code
    blocks, a short line ending in a colon at a paragraph's start as a heading."""
    out = []
    block = []  # indented lines (code) being collected
    bullet_indent = None  # the indentation of the list item being continued
    previous = ""

    def flush():
        if block:
            while block and not block[-1].strip():
                block.pop()
            indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
            out.extend(["", "```bash", *(line[indent:] for line in block), "```", ""])
            block.clear()

    for line in doc.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith(("* ", "- ")) and not block:
            bullet_indent = indent
            if out and out[-1].strip() and not out[-1].startswith("* "):
                out.append("")
            out.append("* " + _prose(stripped[2:]))
        elif bullet_indent is not None and stripped and indent > bullet_indent and not block:
            out[-1] += " " + _prose(stripped)
        elif stripped and indent and not (bullet_indent is not None and indent > bullet_indent):
            bullet_indent = None
            block.append(line)
        elif not stripped:
            bullet_indent = None
            if block:
                block.append("")
            else:
                out.append("")
        else:
            bullet_indent = None
            flush()
            if out and out[-1].startswith("* "):
                out.append("")  # text after a list
            if stripped.endswith(":") and len(stripped) < 40 and not previous.strip():
                out += [f"**{_prose(stripped)}**", ""]
            else:
                out.append(_prose(line))
        previous = line
    flush()
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def _prose(line):
    """A line of a docstring as Markdown text: HTML-like brackets and asterisks
    escaped outside backticks."""
    parts = re.split(r"(`[^`]*`)", line)
    for i in range(0, len(parts), 2):
        parts[i] = (parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    .replace("*", "\\*").replace("_", "\\_"))
    return "".join(parts)


def tool_page(tool, flags):
    """The Markdown of a tool's CLI page."""
    doc = module_docstring(TOOLS / f"{tool}.py")
    lines = [f"# `tools/{tool}.py`", "", docstring_markdown(doc), "## Flags", "",
             "Generated from the tool's absl flags. Every tool also takes absl's own flags "
             "(`--helpfull` lists them) and reads `--flagfile`. See [the tools' conventions]"
             "(../../guides/tools.md) for what every tool prints, writes and exits with.", "",
             "| flag | type | default | description |", "|---|---|---|---|"]
    for flag in flags:
        name = f"`--{flag['name']}`"
        if flag.get("short_name"):
            name += f", `-{flag['short_name']}`"
        text = flag["help"] or ""
        if flag.get("enum"):  # absl puts "<a|b|c>: " before an enum's help
            text = re.sub(r"^<[^>]*>:\s*", "", text)
        lines.append(f"| {name} | {_flag_type(flag)} | {_flag_default(flag)} | "
                     f"{_cell(text)} |")
    return "\n".join(lines) + "\n"


def cli_index(flags_by_tool):
    lines = ["# Command-line tools", "",
             "Every tool is a script in `tools/` (`python tools/NAME.py --help`). These pages "
             "are generated from the tools themselves when the site is built: each tool's "
             "module docstring and its absl flags. What every tool prints, writes and exits "
             "with: [the tools' conventions](../../guides/tools.md).", "",
             "| tool | what it does | flags |", "|---|---|---|"]
    for tool, flags in flags_by_tool.items():
        title = first_sentence(module_docstring(TOOLS / f"{tool}.py"))
        lines.append(f"| [`{tool}.py`]({tool}.md) | {_cell(title)} | {len(flags)} |")
    return "\n".join(lines) + "\n"


def cli_pages(flags_by_tool=None):
    """`{path under docs/: Markdown}` of the CLI reference, and its navigation."""
    flags_by_tool = flags_by_tool or all_tool_flags()
    pages = {"reference/cli/index.md": cli_index(flags_by_tool)}
    nav = ["* [Overview](index.md)"]
    for tool, flags in flags_by_tool.items():
        pages[f"reference/cli/{tool}.md"] = tool_page(tool, flags)
        nav.append(f"* [{tool}.py]({tool}.md)")
    pages["reference/cli/SUMMARY.md"] = "\n".join(nav) + "\n"
    return pages


# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------

_KINDS = ("benchmark", "benchmark_fvd", "benchmark_data", "benchmark_streaming")
_PREFIXES = {"bench": "benchmark", "fvd": "benchmark_fvd", "data": "benchmark_data",
             "streaming": "benchmark_streaming"}


def result_kind(path, data):
    """Which tool wrote a result file: its `run.tool`, else its name's prefix."""
    tool = (data.get("run") or {}).get("tool")
    if tool in _KINDS:
        return tool
    stem = pathlib.Path(path).stem
    for kind in sorted(_KINDS, key=len, reverse=True):
        if stem.startswith(kind + "_"):
            return kind
    return _PREFIXES.get(stem.split("_")[0])


def result_machine(data):
    """`(cpu, description)` of a result's machine, from whichever record it has."""
    run = data.get("run") or {}
    machine = run.get("machine") or data.get("machine") or {}
    cpu = machine.get("cpu")
    if isinstance(cpu, dict):  # benchmark.py's own record: {"model", "kind", "flags"}
        kind, cpu = cpu.get("kind"), cpu.get("model")
    else:
        kind = machine.get("kind")
    cpu = cpu or data.get("cpu") or "unknown CPU"
    cores = machine.get("cores") or machine.get("cpus") or data.get("cpu_cores")
    parts = [f"{cores} cores" if cores else None, kind]
    if machine.get("family"):
        parts.append(f"family {machine['family']}")
    load = machine.get("load_average")
    if load is not None:
        parts.append(f"load average {load:.1f} when recorded")
    return cpu, ", ".join(p for p in parts if p)


def result_date(path, data):
    """The date of a result: its `run.date`, else a date in its file name."""
    date = (data.get("run") or {}).get("date")
    if date:
        return date[:10]
    match = re.search(r"(\d{4}-?\d{2}-?\d{2})", pathlib.Path(path).stem)
    if match:
        digits = match.group(1).replace("-", "")
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return "undated"


def _versions(data):
    run = data.get("run") or {}
    v = run.get("versions") or {}
    machine = data.get("machine") or {}
    tf = v.get("tensorflow") or machine.get("tensorflow")
    keras = v.get("keras") or machine.get("keras")
    return ", ".join(x for x in (f"TF {tf}" if tf else None,
                                 f"Keras {keras}" if keras else None) if x) or "—"


def _commit(data):
    commit = (data.get("run") or {}).get("commit")
    if not commit:
        return "—"
    dirty = commit.endswith("+dirty")
    return f"`{commit[:8]}`" + (" (with local changes)" if dirty else "")


def _s(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def _rows_benchmark(data):
    """`[(measurement, value)]` of a tools/benchmark.py result."""
    rows = []
    policy = (data.get("precision") or {}).get("policy", "?")
    for frames, r in sorted((data.get("forward") or {}).items(), key=lambda kv: int(kv[0])):
        rows.append((f"forward pass, 1 clip of {frames} frames ({policy})",
                     f"{_s(r.get('seconds'))} s ({_s(r.get('effective_gflops'), 0)} GFLOP/s)"))
    step = data.get("train_step")
    if step:
        rows.append((f"training step, batch {step.get('batch')} x {step.get('frames')} frames "
                      f"({policy})", f"{_s(step.get('seconds'))} s"))
    for other, r in (data.get("precisions") or {}).items():
        for frames, f in sorted((r.get("forward") or {}).items(), key=lambda kv: int(kv[0])):
            rows.append((f"forward pass, 1 clip of {frames} frames ({other})",
                         f"{_s(f.get('seconds'))} s ({_s(f.get('time_ratio'), 2)} of "
                         f"{policy}'s time)"))
        if r.get("train_step"):
            rows.append((f"training step ({other})",
                         f"{_s(r['train_step'].get('seconds'))} s "
                         f"({_s(r['train_step'].get('time_ratio'), 2)} of {policy}'s time)"))
    if data.get("matmul_gflops"):
        rows.append(("matmul 2048², float32", f"{_s(data['matmul_gflops'], 0)} GFLOP/s"))
    if data.get("matmul_bfloat16_gflops"):
        rows.append(("matmul 2048², bfloat16", f"{_s(data['matmul_bfloat16_gflops'], 0)} GFLOP/s"))
    litert = data.get("litert") or {}
    if "litert_seconds" in litert:  # one clip length, as recorded before issue 26
        litert = {str(litert.get("frames", "?")): litert}
    for frames, lite in litert.items():
        files = lite.get("quantizations") or {"float32": {
            "seconds": lite.get("litert_seconds"),
            "max_abs_logit_diff": lite.get("max_abs_logit_diff")}}
        for quantization, q in files.items():
            split = (f", {q['partitions']} XNNPACK partition(s)" if "partitions" in q else "")
            if q.get("arena_mb") is not None:
                split += f", activation arena {q['arena_mb']:.0f} MB"
            if q.get("resident_mb") is not None:
                split += f", {q['resident_mb']:.0f} MB resident"
            rows.append((f"LiteRT {quantization} (builtin ops), 1 clip of {frames} frames",
                         f"{_s(q.get('seconds'))} s against TensorFlow's "
                         f"{_s(lite.get('tf_seconds'))} s{split}"
                         + (f", largest logit difference {q['max_abs_logit_diff']:.1e}"
                            if q.get("max_abs_logit_diff") is not None else "")))
    if data.get("peak_memory_mb"):
        rows.append(("peak memory", f"{data['peak_memory_mb'] / 1024:.1f} GiB"))
    return rows


def _rows_fvd(data):
    return [(f"FVD features, {data.get('frames')}x{data.get('input_size')}² clip, batch "
             f"{data.get('batch_size')} ({data.get('precision')})",
             f"{_s(data.get('seconds_per_clip'))} s per clip (median of {data.get('repeats')})"),
            (f"a set of {data.get('set_size')} clips",
             f"{data.get('set_seconds', 0) / 60:.1f} min")]


def _rows_data(data):
    rows = []
    flow = data.get("flow") or {}
    for method, r in (flow.get("methods") or {}).items():
        rows.append((f"{method} flow, {flow.get('width')}x{flow.get('height')}, "
                     f"{flow.get('opencv_threads', 1)} OpenCV thread",
                     f"{_s(r.get('seconds_per_pair'), 4)} s per frame pair (median of "
                     f"{r.get('pairs')})"))
    motion = data.get("motion_dataset") or {}
    if motion:
        rows.append((f"motion dataset, {motion.get('clips')} clips of {motion.get('frames')}x"
                     f"{motion.get('size')}²", f"{_s(motion.get('seconds'), 1)} s "
                     f"({_s(motion.get('seconds_with_flow'), 1)} s with flow)"))
    pipeline = data.get("pipeline") or {}
    for modality, rate in (pipeline.get("clips_per_second") or {}).items():
        rows.append((f"input pipeline, {pipeline.get('frames')}x{pipeline.get('crop')}² "
                     f"training clips, {modality}", f"{_s(rate, 2)} clips/s"))
    return rows


def _rows_streaming(data):
    rows = []
    size = f", {data['image_size']}² model" if data.get("image_size") else ""
    for r in data.get("runs") or []:
        what = (f"{r.get('tool')} --window {data.get('window', '?')}, {r.get('streams')}, "
                f"{r.get('video_seconds')} s video{size}")
        if not r.get("ok", True):
            rows.append((what, "failed"))
            continue
        share = (f", forward passes {r['model_share']:.0%} of it"
                 if r.get("model_share") is not None else "")
        rows.append((what, f"peak {r.get('peak_mb')} MB, {_s(r.get('wall_seconds'), 1)} s, "
                           f"{_s(r.get('realtime_factor'), 2)}x real time{share}"))
    return rows


_ROWS = {"benchmark": _rows_benchmark, "benchmark_fvd": _rows_fvd,
         "benchmark_data": _rows_data, "benchmark_streaming": _rows_streaming}
_TITLES = {"benchmark": "Speed of I3D (`tools/benchmark.py`)",
           "benchmark_fvd": "FVD features (`tools/benchmark_fvd.py`)",
           "benchmark_data": "Data: flow, motion dataset, input pipeline "
                             "(`tools/benchmark_data.py`)",
           "benchmark_streaming": "Long videos in bounded memory "
                                  "(`tools/benchmark_streaming.py`)"}


def load_results(folder=RESULTS):
    """`[(path, kind, data)]` of the result files in `folder`, newest first.

    Raises:
        ValueError: a file that is not JSON, or whose tool is unknown.
    """
    found = []
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from error
        kind = result_kind(path, data)
        if kind is None:
            raise ValueError(f"{path}: no `run.tool` and no known prefix "
                             f"({', '.join(_KINDS)}): which tool wrote it?")
        found.append((path, kind, data))
    found.sort(key=lambda item: ((item[2].get("run") or {}).get("date")
                                 or result_date(item[0], item[2]), item[0].name), reverse=True)
    return found


def benchmark_tables(folder=RESULTS, link_prefix=""):
    """Markdown: a section per tool, a table per result file naming its machine,
    date, versions, commit and command."""
    results = load_results(folder)
    if not results:
        return "*No result files in `benchmarks/results/` yet.*\n"
    out = ["## All results", "",
           "One row per result file, newest first; the sections below have every figure.", "",
           "| date | machine | tool | headline | file |", "|---|---|---|---|---|"]
    for path, kind, data in results:
        cpu, description = result_machine(data)
        rows = _ROWS[kind](data)
        headline = "; ".join(f"{a}: {b}" for a, b in rows[:2]) if rows else "—"
        out.append(f"| {result_date(path, data)} | {_cell(cpu)} ({_cell(description)}) | "
                   f"`{kind}.py` | {_cell(headline)} | [`{path.name}`]({link_prefix}{path.name}) |")
    out.append("")
    for kind in _KINDS:
        mine = [(p, d) for p, k, d in results if k == kind]
        if not mine:
            continue
        out += [f"## {_TITLES[kind]}", ""]
        for path, data in mine:
            cpu, description = result_machine(data)
            run = data.get("run") or {}
            out += [f"### {cpu}, {result_date(path, data)}", "",
                    f"Machine: {cpu} ({description}); {_versions(data)}; commit {_commit(data)}; "
                    f"file [`{path.name}`]({link_prefix}{path.name}).", ""]
            if run.get("command"):
                out += ["```bash", run["command"], "```", ""]
            rows = _ROWS[kind](data)
            out += ["| measurement | result |", "|---|---|"]
            out += [f"| {_cell(a)} | {_cell(b)} |" for a, b in rows]
            out.append("")
    return "\n".join(out)


def today():
    return datetime.date.today().isoformat()
