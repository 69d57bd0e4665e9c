"""The report and analysis layers import in one direction: analysis never imports the report (it returns numbers,
the report words and formats them), and the markdown and HTML renderers never import each other (both read
report/content.py and report/format.py). tools/check_layers.py checks the whole flow."""

import ast
from pathlib import Path

import harness

ROOT = Path(harness.__file__).parent


def imports(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file, function bodies included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_analysis_does_not_import_the_report():
    for path in (ROOT / "analysis").glob("*.py"):
        assert not {m for m in imports(path) if m.startswith("harness.report")}, path.name


def test_markdown_and_html_do_not_import_each_other():
    assert "harness.report.html" not in imports(ROOT / "report" / "markdown.py")
    assert "harness.report.markdown" not in imports(ROOT / "report" / "html.py")


def test_format_reads_only_units_and_numbers():
    """Formatting depends on the unit the analysis declares for a column, and on nothing else of the harness."""
    harness_imports = {m for m in imports(ROOT / "report" / "format.py") if m.startswith("harness")}
    assert {m.rsplit(".", 1)[0] if m.endswith(("Unit", "is_missing")) else m for m in harness_imports} == {
        "harness.analysis.units", "harness.numbers"}
