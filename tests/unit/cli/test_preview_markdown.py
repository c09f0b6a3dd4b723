"""The preview's block for a pull-request comment (canary.cli.output.render_markdown)."""

from canary.cli.output import render_markdown
from canary.ops.core.plan import (
    PreviewReport,
)
from tests.unit.ops.fakes import V2, config, report


def test_markdown_for_a_pull_request_comment() -> None:
    text = render_markdown(report())
    lines = text.splitlines()
    assert lines[0] == "### Canary preview: stack `dev`"
    assert "**canary 5% -> 25%, stable 95% -> 75%, 1 resource updated**" in lines
    assert "| canary weight | 5% | 25% |" in lines
    assert "| stable weight | 95% | 75% |" in lines
    assert f"| canary image | `{V2}` | `{V2}` |" in lines
    assert "| phase | canary 5% | canary 25% |" in lines
    start = lines.index("```diff")
    assert lines[start + 1 : start + 3] == ["Previewing update (dev):", "  ~ weight: 95 => 75"]
    assert lines[start + 3] == "```"
    assert text.endswith("</details>\n")


def test_markdown_fence_outlasts_backticks_in_the_diff() -> None:
    tricky = PreviewReport("dev", None, config("0"), {"create": 9}, "a ``` b\n")
    text = render_markdown(tricky)
    assert "````diff" in text and "| phase | (not deployed) | canary deployed, header-only |" in text
