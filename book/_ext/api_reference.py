"""The book's API reference, `book/api.md`, generated from the package: a Start here section (`START_HERE`), then the
public names of each module (its `__all__` less `INTERNAL` and the `cmd_*` functions) under its chapter's title, in
the order of `_toc.yml`; each with its signature, docstring and a table of its parameters (fastcore's `docments`).

Registered through `sphinx: local_extensions` in `_config.yml`: when a build starts (`config-inited`), the page is
written from the `mvgg19_nb` of the checkout being built (imported from the source folder, not from wherever the
package is installed), so every build shows the code it documents; the file is rewritten only when its text changes.
By hand: `python book/_ext/api_reference.py` writes the page, `--check` only says whether it is up to date (exit 1 if
not).
"""
from __future__ import annotations

import importlib, inspect, json, pkgutil, re, sys, textwrap
from pathlib import Path

from fastcore.docments import docments

__all__ = ['INTERNAL', 'START_HERE', 'api_markdown', 'write_api_page', 'parameter_table', 'toc_files', 'is_internal',
           'public_names']

PACKAGE, PAGE = 'mvgg19_nb', Path('book')/'api.md'
_CHAPTER = re.compile(r'File to edit: \.\./(nbs/[^\s]+)\.ipynb')  # the header nbdev_export writes in each module
_CODE = re.compile(r'(`+)(.+?)\1', re.S)  # an inline code span (its content is shown as written)
_SPECIAL = re.compile(r'([\\`*_{}\[\]<>#|$])')  # what Markdown/MyST could read as syntax outside code spans
WIDTH = 100  # longer signatures get one parameter per line

# Left out of the reference (with every `cmd_*` function): the test fixtures, and the command line's internals, the
# helpers of `mvgg19`'s `main` and its subcommands (the command line is documented by `mvgg19 --help` and its chapter).
INTERNAL = {
    'images': ('make_image', 'write_layout'),  # test fixtures
    'cli': ('DATASET_HELP', 'PREDICT_OPTIONS', 'FIXES', 'find_datasets', 'summary_line', 'audit_line',
            'check_images'),
    'runargs': ('PATH_PARAMS', 'PATH_NOTES', 'parse_size', 'resolve_paths', 'check_writable_dir', 'in_repo',
                'template_parameters', 'parameters_help', 'check_run'),  # what `mvgg19 run` and `sweep` share
    'cards': ('TRAIN_UNUSED', 'not_a_card', 'image_sizes'),  # `mvgg19 train`'s helpers
    'cluster': ('sweep_parser', 'sweep_main'),  # `mvgg19 sweep`: its parser and entry point
}
# The functions a reader starts with, in the order of use: `module.name`.
START_HERE = ('model.build_mvgg19', 'data.load_dataset', 'train.cross_validate', 'train.train_final_model',
              'predict.predict_files', 'predict.predict')
START_INTRO = ('Build the model (`build_mvgg19`), load a dataset (`load_dataset`), cross-validate VGG19 and MVGG19 on '
               'it as the paper does (`cross_validate`), train the model to keep on all of it (`train_final_model`), '
               'then predict with it: on files and folders, into a CSV file (`predict_files`), or on images in memory '
               '(`predict`).')


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
    lines += parameter_table(obj)
    if inspect.isclass(obj):  # its own public methods that say what they do (not undocumented framework hooks)
        for m, member in vars(obj).items():
            fn = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if m.startswith('_') or not inspect.isfunction(fn) or not _doc(fn): continue
            if isinstance(member, classmethod): shown = getattr(obj, m)  # bound to the class: no `cls`
            elif isinstance(member, staticmethod): shown = fn
            else: shown = _without_self(fn)
            lines += ['```python', signature(f'{name}.{m}', shown), '```', '', _text(_doc(fn)), '']
            lines += parameter_table(fn, skip_first=not isinstance(member, staticmethod))
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
    "The package's public modules, each with the chapter (notebook) it was exported from, in name order."
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith('_'): continue
        mod = importlib.import_module(f'{package.__name__}.{info.name}')
        m = _CHAPTER.search(Path(inspect.getsourcefile(mod)).read_text(encoding='utf-8')[:2000])
        found.append((m.group(1) if m else None, mod))
    return sorted(found, key=lambda cm: cm[1].__name__)


def toc_files(root) -> list[str]:
    "The book's pages (`nbs/01_model`, ...) in the order of `root/_toc.yml`: root first, then every `file:` entry."
    import yaml
    toc = yaml.safe_load((Path(root)/'_toc.yml').read_text(encoding='utf-8')) or {}
    out = []
    def walk(node):
        if isinstance(node, dict):
            for k in ('root', 'file'):
                if isinstance(node.get(k), str): out.append(re.sub(r'\.(ipynb|md)$', '', node[k]))
            for v in node.values(): walk(v)
        elif isinstance(node, list):
            for v in node: walk(v)
    walk(toc)
    return list(dict.fromkeys(out))


def chapter_title(root, chapter) -> str:
    "The first `# ` heading of the chapter's notebook (its title in the book); the chapter's name if it has none."
    try: cells = json.loads((Path(root)/f'{chapter}.ipynb').read_text(encoding='utf-8'))['cells']
    except (OSError, ValueError, KeyError): return Path(chapter).name
    for c in cells:
        src = ''.join(c.get('source', ''))
        if c.get('cell_type') == 'markdown' and (m := re.search(r'^# +(.+?)\s*$', src, re.M)): return m.group(1)
    return Path(chapter).name


def is_internal(module: str, name: str) -> bool:
    "Whether `module.name` is left out of the reference: a `cmd_*` function, or listed in `INTERNAL`."
    return name.startswith('cmd_') or name in INTERNAL.get(module.rsplit('.', 1)[-1], ())


def public_names(mod) -> list[str]:
    "What the reference shows of `mod`: its `__all__`, in order, less what `is_internal`."
    return [n for n in getattr(mod, '__all__', []) if not is_internal(mod.__name__, n)]


def _label(mod, name) -> str:
    "The MyST label of entry `name` of `mod` (`api-model-build_mvgg19`); a class's ends in `-class` (`Audit`, `audit`)."
    kind = '-class' if inspect.isclass(getattr(mod, name, None)) else ''
    return f"api-{mod.__name__.rsplit('.', 1)[-1]}-{name}{kind}".lower()


def _cell(v) -> str:
    "One table cell: no line breaks, `|` escaped (inside code spans too, as GFM tables want)."
    return ' '.join(str(v).split()).replace('|', '\\|')


_INFERRED = (bool, int, float, str, tuple, list, dict)  # a default's type shown as the type, as nbdev does


def _annotation(p) -> str:
    "A parameter's annotation as written, else the type of a simple default (as `docments` infers it); '' if neither."
    if p.annotation is not p.empty: return inspect.formatannotation(_raw(p.annotation))
    return type(p.default).__name__ if type(p.default) in _INFERRED else ''


def described(doc: str, name: str) -> str:
    """What a docstring says of parameter `name` where it has no comment: the clause "`name`: ..." that starts a
    line, a sentence or follows "; ", up to the end of its sentence or the next such clause."""
    m = re.search(rf'(?:^|(?<=[.;]) |\n)`{re.escape(name)}`: (.+?)(?=\.(?:\s|$)|; `\w+`: |$)', doc, re.S)
    return ' '.join(m.group(1).split()).rstrip('.') + '.' if m else ''


def parameter_table(obj, skip_first=False) -> list[str]:
    """The lines of a Markdown table of `obj`'s parameters as nbdev renders docments: each parameter's type, default
    and comment (`fastcore.docments`; where it has none, what the docstring says of it as "`name`: ..."), then what it
    returns where that is annotated or commented."""
    try: sig, docs = inspect.signature(obj), docments(obj, full=True)
    except (TypeError, ValueError, OSError, SyntaxError): return []  # no signature or source to read
    doc, rows = _doc(obj), []
    for p in list(sig.parameters.values())[1 if skip_first else 0:]:
        name = {p.VAR_POSITIONAL: '*', p.VAR_KEYWORD: '**'}.get(p.kind, '') + p.name
        default = '' if p.default is p.empty else f'`{_value(p.default)}`'
        anno, what = _annotation(p), (docs.get(p.name) or {}).get('docment') or described(doc, p.name)
        rows.append((f'`{name}`', f'`{anno}`' if anno else '', default, _text(what)))
    ret = docs.get('return') or {}
    anno = '' if sig.return_annotation is sig.empty or inspect.isclass(obj) else inspect.formatannotation(
        _raw(sig.return_annotation))
    if anno or ret.get('docment'):
        rows.append(('**returns**', f'`{anno}`' if anno else '', '', _text(ret.get('docment') or '')))
    if not rows: return []
    head = ['| Parameter | Type | Default | What it is |', '|:--|:--|:--|:--|']
    return head + ['| ' + ' | '.join(_cell(c) for c in row) + ' |' for row in rows] + ['']


def _entries(mod, names, level='###') -> list[str]:
    "The entries of `names` of `mod`: functions and classes in turn, then its constants in one code block."
    lines, consts = [], []
    for n in names:
        obj = getattr(mod, n)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            lines += [f'({_label(mod, n)})=', *_entry(n, obj, level)]
        else: consts.append(f'{n} = {_value(obj)}')
    if consts: lines += [f'{level} Constants of `{mod.__name__}`', '', '```python', *consts, '```', '']
    return lines


def _start_here(by_name) -> list[str]:
    "The Start here section: the functions of `START_HERE`, from building a model to predicting."
    lines = ['(api-start-here)=', '## Start here', '', *textwrap.wrap(START_INTRO, 116), '']
    for qual in START_HERE:
        modname, n = qual.rsplit('.', 1)
        mod = by_name[f'{PACKAGE}.{modname}']
        lines += _entries(mod, [n])
    return lines


def api_markdown(package_name: str = PACKAGE, root=None) -> str:
    "The API reference page (MyST Markdown) of the package `package_name`, its chapters in the order of `root`'s toc."
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    package = importlib.import_module(package_name)
    intro = (f'The public API of `{package_name}`: what a module exports (its `__all__`), with its signature, '
             'docstring and a table of its parameters (type, default and the comment beside each, as fastcore\'s '
             '`docments` reads them), under the title of its chapter, in the book\'s order; each chapter shows the code '
             'in use, with its examples and tests. Left out, as internals: the test fixtures of `images` '
             '(`make_image`, `write_layout`), the functions behind the subcommands of `mvgg19` (`cmd_*`) and the '
             'helpers of its `main` and of `mvgg19 sweep` (`check_run`, `PATH_NOTES`, ...): every `cmd_*` function '
             'and the names in `INTERNAL` in `book/_ext/api_reference.py`. This page is generated from the package '
             'when the book is built: do not edit it by hand.')
    lines = ['# API reference', '', *textwrap.wrap(intro, 116), '']
    mods = _modules(package)
    by_name = {mod.__name__: mod for _, mod in mods}
    lines += _start_here(by_name)
    order = {f: i for i, f in enumerate(toc_files(root))}
    started = {q.rsplit('.', 1)[-1] for q in START_HERE}
    for chapter, mod in sorted(mods, key=lambda cm: (order.get(cm[0], len(order)), cm[1].__name__)):
        title = chapter_title(root, chapter) if chapter else mod.__name__
        lines += [f'## {_text(title)}', '']
        where = f'`{mod.__name__}`' + (f', in {{doc}}`/{chapter}`' if chapter in order else '')
        lines += [f"{where}: {_text(_doc(mod)) or 'no module docstring.'}", '']
        names = public_names(mod)
        here = [n for n in names if f"{mod.__name__.rsplit('.', 1)[-1]}.{n}" in START_HERE]
        if here:
            refs = ', '.join(f'{{ref}}`{n} <{_label(mod, n)}>`' for n in here)
            lines += [f'In {{ref}}`api-start-here`: {refs}.', '']
        lines += _entries(mod, [n for n in names if n not in here])
    return '\n'.join(lines).rstrip('\n') + '\n'


def write_api_page(root, check=False) -> bool:
    "Write `root/book/api.md` from the package in `root` if its text changed; returns whether it was up to date."
    root = Path(root).resolve()
    if str(root) not in sys.path: sys.path.insert(0, str(root))  # this checkout's package, whatever is installed
    text = api_markdown(PACKAGE, root)
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
