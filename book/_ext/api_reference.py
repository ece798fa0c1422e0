"""The book's API reference, `book/api.md`, generated from the package: each module's exported names (`__all__`), with
their signatures and docstrings, in the order of the chapters.

Registered through `sphinx: local_extensions` in `_config.yml`: when a build starts (`config-inited`), the page is
written from the `mvgg19_nb` of the checkout being built (imported from the source folder, not from wherever the
package is installed), so every build shows the code it documents; the file is rewritten only when its text changes.
By hand: `python book/_ext/api_reference.py` writes the page, `--check` only says whether it is up to date (exit 1 if
not).
"""
from __future__ import annotations

import importlib, inspect, pkgutil, re, sys, textwrap
from pathlib import Path

__all__ = ['api_markdown', 'write_api_page']

PACKAGE, PAGE = 'mvgg19_nb', Path('book')/'api.md'
_CHAPTER = re.compile(r'File to edit: \.\./(nbs/[^\s]+)\.ipynb')  # the header nbdev_export writes in each module
_CODE = re.compile(r'(`+)(.+?)\1', re.S)  # an inline code span (its content is shown as written)
_SPECIAL = re.compile(r'([\\`*_{}\[\]<>#|$])')  # what Markdown/MyST could read as syntax outside code spans
WIDTH = 100  # longer signatures get one parameter per line


class _Raw(str):
    "An annotation kept as text (`from __future__ import annotations`), shown without quotes."
    def __repr__(self): return str(self)


def _raw(annotation): return _Raw(annotation) if isinstance(annotation, str) else annotation


def _text(doc: str) -> str:
    "A docstring as Markdown: its code spans kept, every other character that Markdown could read as syntax escaped."
    out, last = [], 0
    for m in _CODE.finditer(doc):
        out += [_SPECIAL.sub(r'\\\1', doc[last:m.start()]), m.group(0)]
        last = m.end()
    return ''.join(out + [_SPECIAL.sub(r'\\\1', doc[last:])])


def _doc(obj) -> str:
    "The object's own docstring (not one inherited from a base class), cleaned; '' if it has none."
    doc = obj.__dict__.get('__doc__') if inspect.isclass(obj) else getattr(obj, '__doc__', None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ''


def signature(name: str, obj) -> str:
    "`name(parameters) -> return`, annotations as written; one parameter per line if longer than `WIDTH`."
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return f'{name}(...)'  # a builtin without signature metadata
    parts, star, slash = [], False, False
    for p in sig.parameters.values():
        if p.kind == p.POSITIONAL_ONLY: slash = True
        elif slash: parts.append('/'); slash = False
        if p.kind == p.KEYWORD_ONLY and not star: parts.append('*'); star = True
        if p.kind == p.VAR_POSITIONAL: star = True
        parts.append(str(p.replace(annotation=_raw(p.annotation))))
    if slash: parts.append('/')
    if inspect.isclass(obj): sig = sig.replace(return_annotation=sig.empty)  # (`__init__`'s None)
    ret = '' if sig.return_annotation is sig.empty else f' -> {inspect.formatannotation(_raw(sig.return_annotation))}'
    one = f"{name}({', '.join(parts)}){ret}"
    return one if len(one) <= WIDTH else f"{name}(\n    " + ',\n    '.join(parts) + f"\n){ret}"


def _entry(name: str, obj, level='###') -> list[str]:
    "The lines of one function or class: heading, signature in a code block, docstring; a class's public methods."
    if inspect.isclass(obj):  # `class Name(Base)`, then how to call it (when Python can tell)
        bases = ', '.join(_base(b, obj) for b in obj.__bases__ if b is not object)
        call = signature(name, obj)
        code = [f'class {name}({bases})' if bases else f'class {name}'] + ([] if call.endswith('(...)') else [call])
    else: code = [signature(name, obj)]
    lines = [f'{level} `{name}`', '', '```python', *code, '```', '']
    if _doc(obj): lines += [_text(_doc(obj)), '']
    if inspect.isclass(obj):  # its own public methods that say what they do (not undocumented framework hooks)
        for m, member in vars(obj).items():
            fn = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if m.startswith('_') or not inspect.isfunction(fn) or not _doc(fn): continue
            if isinstance(member, classmethod): shown = getattr(obj, m)  # bound to the class: no `cls`
            elif isinstance(member, staticmethod): shown = fn
            else: shown = _without_self(fn)
            lines += ['```python', signature(f'{name}.{m}', shown), '```', '', _text(_doc(fn)), '']
    return lines


def _without_self(fn):
    "A stand-in with `fn`'s signature less its first parameter (`self`)."
    sig = inspect.signature(fn)
    stub = lambda *a, **k: None
    stub.__signature__ = sig.replace(parameters=list(sig.parameters.values())[1:])
    return stub


def _base(b, cls) -> str:
    "How a base class of `cls` is named: by its public Keras name (`keras.layers.Layer`), bare if builtin or local."
    if b.__module__ in ('builtins', cls.__module__): return b.__name__
    public = b.__dict__.get('_api_export_path')  # what `keras_export` recorded on the class itself
    if public: return public if isinstance(public, str) else public[0]
    return f'{b.__module__}.{b.__qualname__}'


def _value(v) -> str:
    "A constant's repr, cut to one readable line; the same in every process (no addresses, sets sorted)."
    if isinstance(v, (set, frozenset)): v = sorted(v, key=repr)
    r = re.sub(r' at 0x[0-9a-fA-F]+>', '>', ' '.join(repr(v).split()))
    return r if len(r) <= WIDTH - 20 else r[:WIDTH - 24] + ' ...'


def _modules(package) -> list:
    "The package's public modules in chapter order (the notebook each was exported from), with their chapter."
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith('_'): continue
        mod = importlib.import_module(f'{package.__name__}.{info.name}')
        m = _CHAPTER.search(Path(inspect.getsourcefile(mod)).read_text(encoding='utf-8')[:2000])
        found.append((m.group(1) if m else None, mod))
    return sorted(found, key=lambda cm: (cm[0] is None, cm[0] or '', cm[1].__name__))


def api_markdown(package_name: str = PACKAGE) -> str:
    "The API reference page (MyST Markdown) of the installed or importable package `package_name`."
    package = importlib.import_module(package_name)
    intro = (f'Every function, class and constant that a module of `{package_name}` exports (its `__all__`), with '
             'its signature and docstring, module by module in the order of the chapters; each chapter shows the '
             'code in use, with its examples and tests. This page is generated from the package when the book is '
             'built (`book/_ext/api_reference.py`): do not edit it by hand.')
    lines = ['# API reference', '', *textwrap.wrap(intro, 116), '']
    for chapter, mod in _modules(package):
        names = list(getattr(mod, '__all__', []))
        lines += [f'## `{mod.__name__}`', '']
        if _doc(mod): lines += [_text(_doc(mod)), '']
        if chapter: lines += [f'Chapter: {{doc}}`/{chapter}`.', '']
        consts = []
        for n in names:
            obj = getattr(mod, n)
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj): lines += _entry(n, obj)
            else: consts.append(f'{n} = {_value(obj)}')
        if consts: lines += ['### Constants', '', '```python', *consts, '```', '']
    return '\n'.join(lines).rstrip('\n') + '\n'


def write_api_page(root, check=False) -> bool:
    "Write `root/book/api.md` from the package in `root` if its text changed; returns whether it was up to date."
    root = Path(root).resolve()
    if str(root) not in sys.path: sys.path.insert(0, str(root))  # this checkout's package, whatever is installed
    text = api_markdown(PACKAGE)
    where = Path(sys.modules[PACKAGE].__file__).resolve()
    if root not in where.parents:
        raise RuntimeError(f'{PACKAGE} was imported from {where}, not from the checkout {root}: the API reference '
                           'would describe another version; build the book in a fresh process')
    page = root/PAGE
    same = page.is_file() and page.read_text(encoding='utf-8') == text
    if not same and not check: page.write_text(text, encoding='utf-8')
    return same


def _build_started(app, config):
    write_api_page(app.srcdir)


def setup(app):
    app.connect('config-inited', _build_started, priority=100)  # before sphinx-external-toc reads the toc (900)
    return {'version': '1.0', 'parallel_read_safe': True, 'parallel_write_safe': True}


if __name__ == '__main__':
    check = '--check' in sys.argv[1:]
    ok = write_api_page(Path(__file__).resolve().parents[2], check=check)
    print(f"{PAGE}: {'up to date' if ok else ('out of date' if check else 'written')}")
    sys.exit(1 if check and not ok else 0)
