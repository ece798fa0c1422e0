"""Small fixes to every built page, registered through `sphinx: local_extensions` in `_config.yml`.

- Each script a page loads is loaded once: Jupyter Book 1 with sphinx-thebe 0.3 and sphinx-togglebutton adds their
  inline scripts twice (once with the file name None, once ''), and the second `const THEBE_JS_URL` declaration is a
  JavaScript error in every page's console.
- `book/_static/mvgg19.css`: wide tables scroll inside their own box instead of running past the main column, and
  the summary page, whose tables are the widest, has no in-page contents sidebar, so that they fit at 1280 px.
"""
from pathlib import Path


def _script_key(js):
    "What makes two scripts the same: their file, or their inline body, and their attributes."
    attrs = getattr(js, 'attributes', {}) or {}
    return str(getattr(js, 'filename', js) or ''), tuple(sorted((k, str(v)) for k, v in attrs.items()))  # None = ''



def _once(scripts) -> list:
    "`scripts` without repeats, the first of each kept."
    seen, kept = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen: seen.add(key); kept.append(js)
    return kept


def dedupe_builder_scripts(app, env, docnames):
    "The builder's own list, once every extension has added its scripts for the build."
    if hasattr(app.builder, 'script_files'): app.builder.script_files[:] = _once(app.builder.script_files)


def dedupe_scripts(app, pagename, templatename, context, doctree):
    "Drop the repeats from the page's script list, keeping the first of each."
    context['script_files'] = _once(context.get('script_files', []))


WIDE_PAGES = ('book/summary',)  # pages of wide tables: the main column takes the right sidebar's room


def widen(app, pagename, templatename, context, doctree):
    "No in-page contents sidebar on `WIDE_PAGES`, so that their tables fit the main column at 1280 px."
    if pagename in WIDE_PAGES: context['secondary_sidebar_items'] = context['theme_secondary_sidebar_items'] = []


STATIC = Path(__file__).resolve().parents[1]/'_static'  # book/_static


def add_static(app, config):
    "Serve book/_static (the stylesheet) with the theme's own static files."
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app):
    app.connect('config-inited', add_static)
    app.connect('env-before-read-docs', dedupe_builder_scripts, priority=999)  # after sphinx-thebe adds its own
    app.connect('html-page-context', dedupe_scripts, priority=999)  # after the extensions that add scripts
    app.connect('html-page-context', widen, priority=999)  # after the theme reads its options
    app.add_css_file('mvgg19.css')
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
