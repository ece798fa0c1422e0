"""Render nbdev notebooks as nbdev's own docs do, without changing the notebooks.

Registered through `sphinx: local_extensions` in `_config.yml`. It makes `read_notebook` myst-nb's reader for
`.ipynb` files (`nb_custom_formats`), so every notebook of the book is cleaned in memory after it is read:

* the nbdev/Quarto directive lines at the top of a code cell (`#| export`, `#| default_exp model`, `#| hide`,
  any `#|` line) are removed from the source shown;
* `#| hide` and `#| include: false` cells are removed entirely, source and outputs; `#| echo: false` hides the
  source, `#| output: false` the outputs; a code cell left with neither source nor outputs is removed;
* in an executed copy of the experiment template (a notebook with a papermill `injected-parameters` cell), the
  template's default `parameters` cell is removed: the page shows the parameters that were actually used.

The files on disk are never written, so `nbdev_clean` and `nbdev_export` see exactly what was committed.
"""
from __future__ import annotations

import re

import nbformat

__all__ = ['read_notebook', 'directives', 'clean_notebook']

_DIRECTIVE = re.compile(r'^\s*#\s*\|\s?(.*?)\s*$')  # nbdev 2 / Quarto cell option: `#| name args` or `#| key: value`
READER = 'nbdev_directives.read_notebook'


def directives(source: str) -> tuple[dict[str, str], str]:
    "Split a code cell's leading `#|` lines from its code: ({name: args}, code). As nbdev, only the lines on top."
    lines, found = source.splitlines(keepends=True), {}
    i = 0
    while i < len(lines) and (m := _DIRECTIVE.match(lines[i])):
        text = m.group(1)
        quarto = re.match(r'^([\w-]+)\s*:\s*(.*)$', text)  # `#| echo: false`
        words = text.split(None, 1)  # `#| default_exp model`
        name, value = quarto.groups() if quarto else (words + ['', ''])[:2]
        found[name.strip().lower()] = value.strip()
        i += 1
    return found, ''.join(lines[i:]).lstrip('\n')


def _false(value: str) -> bool: return value.strip().lower() in ('false', 'no', '0')


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    "Apply the rules of the module docstring to `nb` (in place) and return it."
    injected = any('injected-parameters' in c.get('metadata', {}).get('tags', []) for c in nb.cells)
    kept = []
    for cell in nb.cells:
        tags = cell.get('metadata', {}).get('tags', [])
        if injected and 'parameters' in tags: continue
        if cell.cell_type != 'code':
            kept.append(cell)
            continue
        found, code = directives(cell.source)
        if 'hide' in found or _false(found.get('include', 'true')): continue
        if found:
            cell.source = code
            if _false(found.get('echo', 'true')): cell.metadata['tags'] = [*tags, 'remove-input']
            if _false(found.get('output', 'true')): cell.outputs = []
        if not cell.source.strip() and not cell.get('outputs'): continue
        kept.append(cell)
    nb.cells = kept
    return nb


def read_notebook(text: str) -> nbformat.NotebookNode:
    "myst-nb reader for `.ipynb`: read as myst-nb's default reader does, then `clean_notebook`."
    return clean_notebook(nbformat.reads(text, as_version=4))


def _use_reader(app, config):
    formats = dict(config.nb_custom_formats or {})
    other = formats.get('.ipynb')
    if other is not None and (other if isinstance(other, str) else other[0]) != READER:
        raise ValueError(f"nb_custom_formats['.ipynb'] is already {other!r}; nbdev_directives needs {READER!r} "
                         f"there: remove one of the two from _config.yml")
    formats['.ipynb'] = READER
    config.nb_custom_formats = formats


def setup(app):
    app.setup_extension('myst_nb')
    app.connect('config-inited', _use_reader, priority=400)  # before myst-nb registers the custom suffixes (500)
    return {'version': '1.0', 'parallel_read_safe': True, 'parallel_write_safe': True}
