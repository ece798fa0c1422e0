"""The book's API reference page (book/_ext/api_reference.py): the public API, Start here first, then by chapter in the
order of the table of contents, every parameter in a table; shown as written, the same each time."""
import importlib, json, os, subprocess, sys, tempfile
from pathlib import Path
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'book'/'_ext'))
import api_reference as ar  # noqa: E402


def _chapters(page):
    "The page's `## ` headings, in order."
    return [l[3:] for l in page.splitlines() if l.startswith('## ')]


def test_every_public_name_is_on_the_page_and_internals_are_not():
    page = ar.api_markdown()
    for chapter, mod in ar._modules(importlib.import_module('mvgg19_nb')):
        assert f'`{mod.__name__}`, in {{doc}}`/{chapter}`' in page, mod.__name__
        for name in mod.__all__:
            shown = f'### `{name}`' in page or f'\n{name} = ' in page
            assert shown != ar.is_internal(mod.__name__, name), f'{mod.__name__}.{name}'
    for name in ('make_image', 'write_layout', 'cmd_run', 'cmd_predict', 'check_run', 'sweep_main'):
        assert f'### `{name}`' not in page, name
    assert '\nPATH_NOTES = ' not in page and '\nPATH_PARAMS = ' not in page
    assert '### `build_parser`' in page and '### `main`' in page and '### `CLIError`' in page  # the CLI's API stays
    assert 'mvgg19_nb._modidx' not in page  # private modules are not part of the API
    intro = page.split('\n## ')[0]
    assert '(`cmd_*`)' in intro and '`make_image`' in intro and '`INTERNAL`' in intro  # the rule, said first


def test_start_here_comes_first_with_the_functions_a_reader_needs():
    page = ar.api_markdown()
    assert _chapters(page)[0] == 'Start here'
    start = page.split('\n## Start here\n')[1].split('\n## ')[0]
    found = [l[5:-1] for l in start.splitlines() if l.startswith('### `')]
    assert found == ['build_mvgg19', 'load_dataset', 'cross_validate', 'train_final_model', 'predict_files', 'predict']
    for name in found: assert page.count(f'### `{name}`\n') == 1, name  # once: the chapters point to it
    assert '{ref}`build_mvgg19 <api-model-build_mvgg19>`' in page.split('\n## Models')[1]
    assert '| `weights` | `str` | `\'imagenet\'` |' in start  # every parameter in a table


def _notebook(path, title):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({'cells': [{'cell_type': 'markdown', 'source': [f'# {title}\n', '\n', '> what']}]}))


def test_chapters_follow_the_table_of_contents(tmp_path):
    """A chapter per module, headed by its notebook's title, in the order `_toc.yml` gives (here the model before the
    images), whatever the notebooks' numbers."""
    (tmp_path/'_toc.yml').write_text('format: jb-book\nroot: nbs/index\nparts:\n- caption: A\n  chapters:\n'
                                     '  - file: nbs/01_model\n  - file: nbs/13_images.ipynb\n'
                                     '- caption: B\n  chapters:\n  - file: nbs/15_data\n    sections:\n'
                                     '    - file: nbs/20_plots\n')
    for nb, title in [('01_model', 'The model'), ('13_images', 'Reading images'), ('15_data', 'Datasets'),
                      ('20_plots', 'Figures')]: _notebook(tmp_path/'nbs'/f'{nb}.ipynb', title)
    assert ar.toc_files(tmp_path) == ['nbs/index', 'nbs/01_model', 'nbs/13_images', 'nbs/15_data', 'nbs/20_plots']
    heads = _chapters(ar.api_markdown(root=tmp_path))
    assert heads[:5] == ['Start here', 'The model', 'Reading images', 'Datasets', 'Figures'], heads
    assert 'Models: MVGG19 and its VGG19 baseline' not in heads  # titles read from the toc's notebooks
    assert len(heads) == 1 + len(ar._modules(importlib.import_module('mvgg19_nb')))  # the others after, not lost


def test_parameter_table_reads_docments_annotations_defaults_and_the_docstring():
    def f(path: 'str|Path',  # the image file
          size=(8, 8), *rest, on_error='raise', log=print, **kw) -> 'np.ndarray':  # the pixels
        "Read `path`. `on_error`: 'raise' or 'skip'; `log`: where notes go. Done."
    rows = ar.parameter_table(f)
    assert rows[:2] == ['| Parameter | Type | Default | What it is |', '|:--|:--|:--|:--|']
    assert rows[2:-1] == [
        '| `path` | `str\\|Path` |  | the image file |',          # the comment; `|` escaped inside the table
        '| `size` | `tuple` | `(8, 8)` |  |',                       # a simple default's type, as docments infers
        '| `*rest` |  |  |  |',
        "| `on_error` | `str` | `'raise'` | 'raise' or 'skip'. |",  # from the docstring's "`on_error`: ..."
        '| `log` |  | `<built-in function print>` | where notes go. |',
        '| `**kw` |  |  |  |',
        '| **returns** | `np.ndarray` |  | the pixels |']
    assert ar.parameter_table(lambda: None) == [] and ar.parameter_table(ValueError) == []  # none, no signature
    assert ar.described('x. `a`: one; `b`: two. `c`: three', 'b') == 'two.'
    assert ar.described('mentions `a`: inside a sentence', 'a') == ''


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


def test_labels_are_unique_whatever_the_case():
    "Sphinx lowercases labels: the class `Audit` and the function `audit` of one module need two (else the build warns)."
    page = ar.api_markdown()
    labels = [l for l in page.splitlines() if l.startswith('(api-') and l.endswith(')=')]
    assert len(labels) == len({l.lower() for l in labels}) and '(api-audit-audit-class)=' in labels
