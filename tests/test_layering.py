"""The modules' import graph keeps its layers: using a model (predict, explain) never loads training code."""
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
