"""The module README's inputs/outputs tables stay in sync with variables.tf and outputs.tf.

The tables sit between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->` (terraform-docs style).
Regenerate them with:

    .venv/bin/python tests/terraform/test_module_docs.py --write
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hcl_blocks import Block, blocks, read_blocks, string_value

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "modules" / "replication_endpoint"
README = MODULE / "README.md"
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _code(raw: str) -> str:
    """An HCL expression as a table cell: inline code, or a <pre> block when it spans lines."""
    lines = [line.rstrip() for line in raw.strip().splitlines()]
    if len(lines) == 1:
        return f"`{_cell(lines[0])}`"
    indent = min((len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()), default=0)
    shown = [lines[0]] + [line[max(0, indent - 2) :] for line in lines[1:]]
    escaped = [
        line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")
        for line in shown
    ]
    return "<pre>" + "<br>".join(escaped) + "</pre>"


def _variable_row(variable: Block) -> str:
    attrs = variable.attributes()
    description = string_value(attrs["description"]) if "description" in attrs else ""
    if attrs.get("sensitive", "").strip() == "true":
        description += " (sensitive)"
    default = _code(attrs["default"]) if "default" in attrs else "n/a"
    required = "no" if "default" in attrs else "yes"
    anchor = f"input_{variable.name}"
    return (
        f'| <a name="{anchor}"></a> [{variable.name}](#{anchor}) | {_cell(description)} '
        f"| {_code(attrs.get('type', 'any'))} | {default} | {required} |"
    )


def _output_row(output: Block) -> str:
    attrs = output.attributes()
    description = string_value(attrs["description"]) if "description" in attrs else ""
    anchor = f"output_{output.name}"
    return f'| <a name="{anchor}"></a> [{output.name}](#{anchor}) | {_cell(description)} |'


def generated_tables() -> str:
    variables = read_blocks(MODULE, "variable")
    outputs = read_blocks(MODULE, "output")
    lines = [
        BEGIN,
        "## Inputs",
        "",
        "| Name | Description | Type | Default | Required |",
        "|------|-------------|------|---------|:--------:|",
        *(_variable_row(v) for v in sorted(variables, key=lambda b: b.name)),
        "",
        "## Outputs",
        "",
        "| Name | Description |",
        "|------|-------------|",
        *(_output_row(o) for o in sorted(outputs, key=lambda b: b.name)),
        END,
    ]
    return "\n".join(lines)


def readme_tables(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def write_readme() -> None:
    text = README.read_text()
    README.write_text(text.replace(readme_tables(text), generated_tables()))


# --- tests ----------------------------------------------------------------------------------------


def test_readme_tables_match_variables_and_outputs() -> None:
    assert readme_tables(README.read_text()) == generated_tables(), (
        "modules/replication_endpoint/README.md is out of date with variables.tf/outputs.tf: "
        "run `.venv/bin/python tests/terraform/test_module_docs.py --write`"
    )


def test_every_variable_is_typed_described_and_defaulted() -> None:
    for variable in read_blocks(MODULE, "variable"):
        attrs = variable.attributes()
        assert {"type", "description", "default"} <= attrs.keys(), (
            f"variable {variable.name}: {sorted(attrs)}"
        )
        assert len(string_value(attrs["description"])) > 20, (
            f"variable {variable.name} needs a real description"
        )


def test_every_output_is_described() -> None:
    for output in read_blocks(MODULE, "output"):
        assert "description" in output.attributes(), f"output {output.name} has no description"


def test_variables_and_outputs_are_unique() -> None:
    for kind in ("variable", "output"):
        names = [b.name for b in read_blocks(MODULE, kind)]
        assert len(names) == len(set(names)), (
            f"duplicate {kind}s: {sorted(n for n in names if names.count(n) > 1)}"
        )


def test_readme_usage_uses_existing_variables() -> None:
    text = README.read_text()
    usage = re.findall(r"```hcl\n(.*?)```", text, re.DOTALL)
    assert usage, "the README has an hcl usage example"
    declared = {v.name for v in read_blocks(MODULE, "variable")}
    used: set[str] = set()
    for snippet in usage:
        for module_call in blocks(snippet, "module"):
            used |= set(module_call.attributes()) - {
                "source",
                "version",
                "providers",
                "count",
                "for_each",
                "depends_on",
            }
    assert used, "the usage example calls the module"
    assert used <= declared, f"README usage passes unknown inputs: {sorted(used - declared)}"


def test_readme_explains_the_runbook_and_the_lock_file() -> None:
    text = README.read_text()
    assert "## Runbook" in text
    assert "terraform providers lock" in text
    assert text.index("## Usage") < text.index(BEGIN), "usage comes before the inputs/outputs tables"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_readme()
        print(f"wrote the inputs/outputs tables of {README.relative_to(REPO)}")
    else:
        print(generated_tables())
