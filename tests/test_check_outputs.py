"tools/check_outputs.py: a committed notebook output with a temporary path, home path, mtime or pid fails the check."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import check_outputs as co  # noqa: E402


def _notebook(path, *outputs, source='x = 1'):
    "A notebook of one markdown cell and one code cell with `outputs`."
    cells = [{'cell_type': 'markdown', 'metadata': {}, 'source': ['Files under /tmp/ are fine in prose.']},
             {'cell_type': 'code', 'metadata': {}, 'execution_count': None, 'source': [source], 'outputs': list(outputs)}]
    path.write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    return path


def _stream(text): return {'output_type': 'stream', 'name': 'stdout', 'text': [text]}


def _run(*paths):
    return subprocess.run([sys.executable, str(ROOT/'tools'/'check_outputs.py'), *map(str, paths)], cwd=ROOT,
                          capture_output=True, text=True)


def test_a_made_up_notebook_with_unstable_outputs_fails_naming_each(tmp_path):
    bad = _notebook(tmp_path/'bad.ipynb',
                    _stream('wrote /tmp/tmpab12_x9z/parts.csv\n'),
                    {'output_type': 'execute_result', 'execution_count': 1, 'metadata': {},
                     'data': {'text/plain': ["{'mtime_ns': 1795933052062725096}"],
                              'text/html': ['<td>/root/.keras/models/x.h5</td>'],
                              'image/png': 'iVBORw0KGgotmpabcdefgh/tmp/AAA'}},  # image data is not read
                    {'output_type': 'error', 'ename': 'OSError', 'evalue': 'worker died (pid 4242)',
                     'traceback': ['File /work/wt-x/mvgg19_nb/cli.py, line 3']},
                    _stream('cache in cache_tmpq8x2_k1m4 and tmp_path\n'))
    r = _run(bad)
    assert r.returncode == 1, r.stdout + r.stderr
    found = r.stdout.splitlines()
    assert [line.split(' in: ')[0] for line in found[:-1]] == [
        f"{bad}: cell 1: '/tmp/tmpab12_x9z/parts.csv'",
        f"{bad}: cell 1: 'mtime_ns'",
        f"{bad}: cell 1: '/root/.keras/models/x.h5'",  # in the HTML, up to the tag
        f"{bad}: cell 1: 'pid 4242'",
        f"{bad}: cell 1: '/work/wt-x/mvgg19_nb/cli.py'"]
    assert found[-1] == '5 unstable values in the outputs of 1 of 1 notebooks'
    assert 'cache_tmpq8x2_k1m4' not in r.stdout and "'tmp_path'" not in r.stdout  # whole words, tmp_path is not one


def test_a_clean_notebook_passes(tmp_path):
    clean = _notebook(tmp_path/'clean.ipynb', _stream('wrote parts.csv (8 rows) under the run folder\n'),
                      {'output_type': 'display_data', 'metadata': {}, 'data': {'text/plain': ['<Figure>']}},
                      source="print('/tmp/ in the source is not an output')")
    r = _run(clean, clean)
    assert r.returncode == 0 and r.stdout == '2 notebooks: no temporary path, home or checkout path, mtime or pid in their outputs\n'


def test_a_tempfile_name_alone_and_a_bare_tmp_name_are_told_apart():
    assert [m.group(0) for m in co.UNSTABLE.finditer('tmpm4sy6goa tmp_dir tmpfile pid=15936 mtime')] == \
        ['tmpm4sy6goa', 'pid=15936', 'mtime']


def test_the_default_is_every_committed_notebook():
    paths = co.committed_notebooks(ROOT)
    names = {p.relative_to(ROOT).as_posix() for p in paths}
    assert 'nbs/index.ipynb' in names and any(n.startswith('book/results/') for n in names)
    assert all(n.endswith('.ipynb') and (n.startswith('nbs/') or n.startswith('book/results/')) for n in names)
