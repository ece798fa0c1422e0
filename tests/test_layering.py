"""The modules' import graph keeps its layers: using a model (predict, explain) never loads training code; no module
imports, even inside a function, one that imports it back, or another module's private names."""
import ast, subprocess, sys
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/'mvgg19_nb'

def _top_level(tree):
    "The statements run when the module loads: not those inside functions (imported when called, e.g. the CLI's)."
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)): continue
        yield node
        todo.extend(ast.iter_child_nodes(node))

def package_imports(module: str) -> set:
    "The mvgg19_nb modules loading `module` loads directly (relative or absolute imports outside functions)."
    out = set()
    for node in _top_level(ast.parse((PKG/f'{module}.py').read_text())):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ''
            if node.level == 1: out.add(name.split('.')[0] or None)
            elif name.startswith('mvgg19_nb.'): out.add(name.split('.')[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split('.')[1] for a in node.names if a.name.startswith('mvgg19_nb.')}
    return {m for m in out if m and (PKG/f'{m}.py').exists()}

def reachable(module: str) -> set:
    "Every mvgg19_nb module `module` loads, directly or through others."
    seen, todo = set(), [module]
    while todo:
        for m in package_imports(todo.pop()) - seen: seen.add(m); todo.append(m)
    return seen

@pytest.mark.parametrize('module', ['predict', 'explain'])
def test_using_a_model_loads_no_training_code(module):
    assert not {'heads', 'train', 'cluster'} & reachable(module), sorted(reachable(module))

def test_lower_layers_do_not_import_higher_ones():
    for low, high in [('data', 'model'), ('model', 'features'), ('features', 'heads'), ('heads', 'train'),
                      ('features', 'runs'), ('runs', 'heads'), ('runs', 'train'), ('features', 'train'),
                      ('train', 'experiment'), ('params', 'model'), ('images', 'data'), ('experiment', 'results'),
                      ('results', 'summary'), ('results', 'train'), ('predict', 'cli')]:
        assert high not in reachable(low), f'{low} reaches {high}: {sorted(reachable(low))}'

def test_the_graph_is_read():  # the checks above would pass on an empty graph: make sure it is not
    assert {'heads', 'runs', 'features', 'model', 'data'} <= reachable('train')
    assert {'images', 'data', 'params'} <= reachable('predict')
    assert 'predict' in reachable('cli')

def test_predict_loads_no_keras():  # the command line imports it: its ONNX path must not load Keras or TensorFlow
    assert not {'model', 'features', 'explain'} & reachable('predict'), sorted(reachable('predict'))
    code = ("import sys, mvgg19_nb.predict, mvgg19_nb.cli; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert (r.returncode, r.stdout.strip()) == (0, '[]'), r.stderr[-2000:]


# Known cycles and private imports: none (a new one fails the tests below; a listed one that is gone fails too)
KNOWN_CYCLES = set()
KNOWN_PRIVATE = set()


def all_imports(module: str) -> dict:
    """`{other module: names imported from it}` for every import of the package in `module`, inside functions too
    (`import mvgg19_nb.x`, `from mvgg19_nb import x` and `from . import x` import the module itself: no names, but
    `x._name` read through it counts as imported)."""
    tree, out, aliases = ast.parse((PKG/f'{module}.py').read_text(encoding='utf-8')), {}, {}
    def mod(name): return name if name != module and (PKG/f'{name}.py').exists() else None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ''
            inside = node.level == 1 or name == 'mvgg19_nb' or name.startswith('mvgg19_nb.')
            if not inside: continue
            target = mod(name.split('.')[-1]) if name not in ('', 'mvgg19_nb') else None
            if target: out.setdefault(target, set()).update(a.name for a in node.names)
            else:  # `from . import x`, `from mvgg19_nb import x`: the modules themselves
                for a in node.names:
                    if mod(a.name): out.setdefault(a.name, set()); aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith('mvgg19_nb.') and mod(a.name.split('.')[1]):
                    out.setdefault(a.name.split('.')[1], set())
                    if a.asname: aliases[a.asname] = a.name.split('.')[1]
    for node in ast.walk(tree):  # `train._run_fold` through `from mvgg19_nb import train`
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            out[aliases[node.value.id]].add(node.attr)
    return out


def graph() -> dict:
    return {p.stem: all_imports(p.stem) for p in sorted(PKG.glob('*.py')) if p.stem not in ('__init__', '_modidx')}


def cycles(edges: dict) -> list:
    "The strongly connected components of more than one module (Tarjan's algorithm), each a set."
    index, low, stack, on, comps = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop(); on.discard(w); comp.add(w)
                if w == v: break
            if len(comp) > 1: comps.append(comp)
    for v in edges:
        if v not in index: visit(v)
    return comps


def test_no_import_cycle():
    found = [c for c in cycles({m: set(e) for m, e in graph().items()}) if frozenset(c) not in KNOWN_CYCLES]
    assert not found, f'import cycles (imports inside functions included): {[sorted(c) for c in found]}'


def test_no_private_name_imported_from_another_module():
    found = sorted((m, t, n) for m, e in graph().items() for t, names in e.items() for n in names
                   if n.startswith('_') and not n.startswith('__') and (m, t, n) not in KNOWN_PRIVATE)
    assert not found, 'private names imported across modules (make them public): ' + \
        ', '.join(f'{m} <- {t}.{n}' for m, t, n in found)


def test_the_known_exceptions_still_exist():  # so that the allow-lists shrink as the code is mended, never hide anything
    g = graph()
    assert all(n in g[m].get(t, ()) for m, t, n in KNOWN_PRIVATE), 'a known private import is gone: remove it from KNOWN_PRIVATE'
    assert all(c in {frozenset(x) for x in cycles({m: set(e) for m, e in g.items()})} for c in KNOWN_CYCLES), \
        'a known cycle is gone: remove it from KNOWN_CYCLES'


def test_imports_inside_functions_are_read(tmp_path, monkeypatch):  # the reader sees what the old top-level one missed
    g = graph()
    assert 'cluster' in g['cli'] and 'runargs' in g['cluster']  # `main` imports the sweep inside a function
    assert 'train' not in g['cluster'] and g['cluster']['folds'] >= {'limit_threads', 'run_fold'}
    assert 'cluster' not in g['train'], 'train imports the cluster module: pick the fold backend through BACKENDS'
    assert {'cli', 'cluster'}.isdisjoint(g['runargs']) and {'cli', 'predict'}.isdisjoint(g['cards'])
    assert 'cli' not in g['predict'] and 'cards' in g['predict']
    fake = tmp_path/'mvgg19_nb'; fake.mkdir()
    (fake/'a.py').write_text('def f():\n    from .b import _g\n    from mvgg19_nb import b\n    return b._h\n')
    (fake/'b.py').write_text('def g():\n    import mvgg19_nb.a\n')
    monkeypatch.setattr(sys.modules[__name__], 'PKG', fake)
    assert graph() == {'a': {'b': {'_g', '_h'}}, 'b': {'a': set()}} and cycles({'a': {'b'}, 'b': {'a'}}) == [{'a', 'b'}]
