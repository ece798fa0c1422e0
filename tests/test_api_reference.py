"The book's API reference page (book/_ext/api_reference.py): every exported name, shown as written, the same each time."
import importlib, os, subprocess, sys, tempfile
from pathlib import Path
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'book'/'_ext'))
import api_reference as ar  # noqa: E402


def test_every_exported_name_is_on_the_page():
    page = ar.api_markdown()
    for chapter, mod in ar._modules(importlib.import_module('mvgg19_nb')):
        assert f'## `{mod.__name__}`' in page and f'{{doc}}`/{chapter}`' in page, mod.__name__
        for name in mod.__all__:
            assert f'### `{name}`' in page or f'\n{name} = ' in page, f'{mod.__name__}.{name} missing'
    assert '## `mvgg19_nb._modidx`' not in page  # private modules are not part of the API


def test_docstrings_keep_code_and_escape_markdown():
    text = ar._text('Files under `<root>/{a,b}` and <dataset>: $5 or *all* of `x_y`')
    assert text == r'Files under `<root>/{a,b}` and \<dataset\>: \$5 or \*all\* of `x_y`'


def test_signatures_read_as_written():
    def f(path, size: 'tuple[int, int]' = (8, 8), *, on_error='raise') -> 'np.ndarray': pass
    assert ar.signature('f', f) == "f(path, size: tuple[int, int] = (8, 8), *, on_error='raise') -> np.ndarray"
    def g(a_rather_long_parameter_name=1, another_rather_long_one=2, and_a_third_long_parameter=3, fifth=5,
          sixth=6): pass
    assert len('g(a_rather_long_parameter_name=1, another_rather_long_one=2, and_a_third_long_parameter=3, fifth=5, '
               'sixth=6)') > ar.WIDTH  # too long for one line: one parameter per line
    assert ar.signature('g', g).splitlines() == ['g(', '    a_rather_long_parameter_name=1,',
                                                 '    another_rather_long_one=2,', '    and_a_third_long_parameter=3,',
                                                 '    fifth=5,', '    sixth=6', ')']
    assert ar._value({'b': print, 'a': {2, 1}}) == "{'b': <built-in function print>, 'a': {1, 2}}"
    assert ar._value(frozenset({'b', 'a'})) == "['a', 'b']"


def test_page_is_the_same_in_every_process():
    """No addresses or hash-ordered sets: two processes with other hash seeds write the same page (CI compares the
    committed book/api.md with what the build writes)."""
    code = 'import sys; sys.path.insert(0, "book/_ext"); import api_reference as a; sys.stdout.write(a.api_markdown())'
    pages = [subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**os.environ, 'PYTHONHASHSEED': seed, 'TF_CPP_MIN_LOG_LEVEL': '3'}).stdout
             for seed in ('1', '2')]
    assert pages[0] == pages[1] and pages[0].startswith('# API reference')
