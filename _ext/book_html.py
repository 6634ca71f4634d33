"""Small fixes to the HTML that Jupyter Book 1 writes, kept in one place.

* sphinx-thebe registers its inline ``const THEBE_JS_URL = ...`` script twice under Jupyter
  Book 1, and the second copy throws "Identifier 'THEBE_JS_URL' has already been declared"
  in the browser. Identical scripts are written once.
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        # Same file and attributes (inline body included), whatever the priority.
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", str(script)) or "", attributes)  # None and "" alike
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    scripts[:] = unique


def setup(app):
    # Early: html-page-context is emitted with emit_firstresult, so a late handler may never run.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
