"""``show(obj)``: the library's real source, highlighted, right inside a notebook.

Notebooks never paste copies of library code; they call ``show(s2t_edu.shift_tokens_right)``
so the page always shows the code that actually runs (d2l's "library is the single source").
"""

from __future__ import annotations

import inspect

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from s2t_edu.errors import S2TEduError


class SourceView:
    """Source code that renders highlighted in Jupyter and as plain text elsewhere."""

    def __init__(self, source: str, title: str):
        self.source, self.title = source, title

    def _repr_html_(self) -> str:
        formatter = HtmlFormatter(noclasses=True, style="friendly")
        return f"<p><code>{self.title}</code></p>" + highlight(
            self.source, PythonLexer(), formatter
        )

    def __repr__(self) -> str:
        return f"# {self.title}\n{self.source}"


def show(obj) -> SourceView:
    """Display the source of a function, class or module from s2t_edu (or anything with source)."""
    source = check_has_source(obj)
    module = inspect.getmodule(obj)
    title = (
        f"{module.__name__}.{getattr(obj, '__qualname__', '')}".rstrip(".") if module else repr(obj)
    )
    return SourceView(source.rstrip(), title)


def check_has_source(obj) -> str:
    """The Python source of ``obj``; values, builtins and code typed into a prompt have none."""
    try:
        return inspect.getsource(obj)
    except (TypeError, OSError) as error:
        raise S2TEduError(
            f"show() needs a function, class or module written in Python ({error})",
            "pass the function itself, e.g. show(s2t_edu.shift_tokens_right), not its result",
            seen=type(obj).__name__,
        ) from None
