"""Work around a Jupyter Book 1 bug: some extensions' inline scripts are added to every page twice.

sphinx-thebe and sphinx-togglebutton add their inline JavaScript from Sphinx events that fire
twice in a Jupyter Book build (once with ``filename=None``, once with ``''``), so each page
declares ``const THEBE_JS_URL`` twice and the browser throws "Identifier 'THEBE_JS_URL' has
already been declared". We drop exact duplicates just before each page is written.
"""


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
