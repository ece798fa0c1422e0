"""The faults a production line meets, at the command line: each test re-runs one case as a user would and checks
the one line, the exit status and that nothing was lost (`run`, `train`, `export`, `main` itself)."""
import os, tempfile
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import errno, json, subprocess, sys, textwrap, zipfile
from pathlib import Path

import nbformat
import pytest

from mvgg19_nb import cli, experiment
from mvgg19_nb.cards import CARD_FORMAT
from mvgg19_nb.images import write_layout
from fixtures import make_folder

REPO = Path(cli.__file__).parents[1]


def _snapshot(folder):
    "Every file under `folder` with its bytes: what a command must leave as it was."
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def _keras_archive(path):
    "A file `check_model_file` takes for a .keras model (a zip with config.json): enough for checks before loading."
    with zipfile.ZipFile(path, 'w') as z: z.writestr('config.json', '{}')
    return path


def _err(capsys):
    return capsys.readouterr().err.splitlines()


# --- case 1: `export --format savedmodel --out . --force` beside the model deleted the whole folder
def test_export_never_removes_the_folder_of_its_inputs(tmp_path, capsys, monkeypatch):
    sm = tmp_path/'sm'; sm.mkdir()
    _keras_archive(sm/'model.keras'); (sm/'notes.txt').write_text('mine')
    (sm/'model.json').write_text(json.dumps({'format': CARD_FORMAT, 'classes': ['a', 'b'],
                                             'model_file': {'sha1': cli.file_digest(sm/'model.keras')}}))
    before = _snapshot(sm)
    monkeypatch.chdir(sm)
    assert cli.main(['export', 'model.keras', '--format', 'savedmodel', '--out', '.', '--force']) == 2
    assert _err(capsys) == [f"mvgg19 export: error: --out '.' is where the inputs are ({sm/'model.keras'}): a command "
                            "never writes over what it reads; choose another --out"]
    assert _snapshot(sm) == before


def test_export_replaces_only_a_savedmodel_folder(tmp_path, capsys):
    _keras_archive(tmp_path/'model.keras')
    (tmp_path/'photos').mkdir(); (tmp_path/'photos'/'a.jpg').write_bytes(b'jpeg')
    assert cli.main(['export', str(tmp_path/'model.keras'), '--format', 'savedmodel', '--out', str(tmp_path/'photos'),
                     '--force']) == 2
    assert _err(capsys) == [f"mvgg19 export: error: --out {str(tmp_path/'photos')!r} is a folder but not a SavedModel: "
                            "export replaces only a SavedModel; name a new folder"]
    assert (tmp_path/'photos'/'a.jpg').read_bytes() == b'jpeg'


# --- case 2: `-p` values read as YAML 1.1: `0001` was the folder `1`, `2024-01-05` a date
def test_path_parameters_are_taken_as_typed(tmp_path, capsys, monkeypatch):
    for name in ('0001', '1', '2024-01-05'): make_folder(tmp_path/name, per_class=3)
    calls = []
    monkeypatch.setattr(cli, 'run_experiment', lambda n, output=None, **kw: calls.append(kw) or output)
    monkeypatch.chdir(tmp_path)
    for name in ('0001', '2024-01-05'):
        assert cli.main(['run', 'folder', '-p', 'data_root', name, '-p', 'folds', '2', '-p', 'output_dir', 'res']) == 0
        assert calls[-1]['data_root'] == str(tmp_path/name)
    assert cli.parse_params([('epochs', '0012'), ('batch_size', '1:30')]) == {'epochs': 12, 'batch_size': '1:30'}
    assert cli.main(['run', 'folder', '-p', 'data_root', '1', '-p', 'batch_size', '1:30']) == 2  # not 90
    assert _err(capsys)[-1].startswith("mvgg19 run: error: batch_size='1:30'")


# --- cases 5 and 6: a run publishes its page only when finished, and one run at a time per page
TEMPLATE = {  # a stand-in for nbs/_experiment.ipynb: the same parameters' names, a record, and a cell that can fail
    'parameters': "dataset = 'x'\ninput_size = None\noutput_dir = 'book/results'\nfail = False",
    'body': ["from mvgg19_nb.experiment import results_file\nresults_file(output_dir, dataset).write_text('{\"new\": 1}')",
             "if fail: raise ValueError('the run failed here')"]}


@pytest.fixture
def template(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# Experiment'),
                                         nbformat.v4.new_code_cell(TEMPLATE['parameters'], metadata={'tags': ['parameters']}),
                                         *[nbformat.v4.new_code_cell(s) for s in TEMPLATE['body']]])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, tmp_path/'template.ipynb')
    return tmp_path/'template.ipynb'


@pytest.fixture
def published(tmp_path):
    "An output folder holding a finished run's page and results."
    out = tmp_path/'res'; out.mkdir()
    (out/'x.ipynb').write_text('the finished page'); (out/'x.json').write_text('{"old": 1}')
    return out


def test_a_failed_run_leaves_the_published_page(template, published, tmp_path):
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match='the run failed here'):
        experiment.run_experiment('x', template=template, cwd=tmp_path, output_dir=str(published), fail=True)
    assert (published/'x.ipynb').read_text() == 'the finished page' and (published/'x.json').read_text() == '{"old": 1}'
    failed = nbformat.read(published/'x.failed.ipynb', as_version=4)
    assert failed.metadata.papermill.exception  # the notebook that shows where
    assert sorted(p.name for p in published.iterdir() if not p.name.startswith('.')) == \
        ['x.failed.ipynb', 'x.ipynb', 'x.json']  # no half-written record left
    experiment.run_experiment('x', template=template, cwd=tmp_path, output_dir=str(published))  # fixed: published
    assert json.loads((published/'x.json').read_text()) == {'new': 1} and not (published/'x.failed.ipynb').exists()
    assert nbformat.read(published/'x.ipynb', as_version=4).cells[0].source == '# Results: x'


def test_ctrl_c_leaves_the_published_page(template, published, tmp_path, monkeypatch):
    "Ctrl-C mid-run: papermill has written a partial notebook (cells marked done) and the template part of a record."
    import papermill as pm
    def interrupted(template, output, **kw):
        Path(output).write_text('partial'); Path(os.environ[experiment.RESULTS_ENV]).write_text('{"part')
        raise KeyboardInterrupt
    monkeypatch.setattr(pm, 'execute_notebook', interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiment.run_experiment('x', template=template, cwd=tmp_path, output_dir=str(published))
    assert (published/'x.ipynb').read_text() == 'the finished page' and (published/'x.json').read_text() == '{"old": 1}'
    assert not (published/'x.json.running').exists() and (published/'x.interrupted.ipynb').read_text() == 'partial'


def test_two_runs_on_one_page_the_second_is_refused(tiny_folder, published, tmp_path, capsys):
    "While another process writes res/folder.ipynb, `mvgg19 run` on the same page stops at once, before a kernel."
    page = published/'folder.ipynb'; page.write_text('the other run is writing this')
    code = textwrap.dedent(f'''
        from mvgg19_nb.experiment import _page_lock
        from pathlib import Path
        import time
        with _page_lock(Path({str(page)!r})): print('held', flush=True); time.sleep(60)''')
    holder = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, 'PYTHONPATH': str(REPO)})
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert cli.main(['run', 'folder', '-p', 'data_root', str(tiny_folder), '-p', 'folds', '2',
                         '-p', 'output_dir', str(published), '--no-progress']) == 1
    finally: holder.kill(); holder.wait()
    out = capsys.readouterr().out
    assert f"folder not run: results page {page} is in use by process {holder.pid} on " in out
    assert page.read_text() == 'the other run is writing this'


@pytest.fixture
def tiny_folder(tmp_path):
    return make_folder(tmp_path/'tiny', per_class=3)


# --- case 7: label conflicts stop the run (the real template, stopped at its audit before any extraction)
def test_label_conflicts_stop_the_run_naming_the_images(tmp_path, capsys):
    files = {f'{c}/{c}{i}.png': ('L', (40, 40)) for c in ('ok', 'defect') for i in range(4)}
    root = write_layout(tmp_path/'parts', files)
    for i in range(3): (root/'defect'/f'copy{i}.png').write_bytes((root/'ok'/f'ok{i}.png').read_bytes())
    res = tmp_path/'res'
    argv = ['run', 'folder', '-p', 'data_root', str(root), '-p', 'folds', '2', '-p', 'epochs', '1', '-p', 'views', '1',
            '-p', 'input_size', '32x32', '-p', 'output_dir', str(res), '-p', 'cache_dir', str(tmp_path/'cache'),
            '-p', 'runs_dir', str(tmp_path/'runs'), '-p', 'positive_class', 'defect', '--no-progress']
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if 'failed in cell' in l)
    assert 'DataError: folder: label conflicts (3), one image under two classes: ' in line
    assert ("defect/copy0.png = ok/ok0.png (defect, ok); defect/copy1.png = ok/ok1.png (defect, ok); "
            f"defect/copy2.png = ok/ok2.png (defect, ok) (in {root})") in line
    assert 'rerun with -p accept_label_conflicts true to keep them knowingly' in line
    assert not (res/'folder.ipynb').exists() and (res/'folder.failed.ipynb').exists()
    assert not (tmp_path/'cache').exists()  # stopped before any feature was extracted


# --- case 10: a full disk
def test_train_checks_room_for_the_model_before_training(tmp_path, capsys, monkeypatch):
    import shutil
    from mvgg19_nb import train
    root = make_folder(tmp_path/'parts', classes=('good', 'defect'), per_class=3)
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: shutil._ntuple_diskusage(10 << 20, 9 << 20, 1 << 20))
    monkeypatch.setattr(train, 'train_final_model', lambda *a, **k: pytest.fail('trained before the space check'))
    assert cli.main(['train', 'folder', '-p', 'data_root', str(root), '-p', 'input_size', '32x32', '-p', 'epochs', '1',
                     '-p', 'cache_dir', str(tmp_path/'cache'), '--out', str(tmp_path/'m.keras'), '--no-progress']) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith(f"mvgg19 train: error: --out {str(tmp_path/'m.keras')!r}: 1.0 MiB free")
    assert err[0].endswith('MiB needed; free some space there or choose another --out')
    assert not (tmp_path/'m.keras').exists()


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    "ENOSPC from a write (which names no file): `write_atomic` names it, `main` says what to do; the old file stays."
    from mvgg19_nb.images import write_atomic
    target = tmp_path/'view0.npy'; target.write_bytes(b'the previous view')
    def full(tmp): tmp.write_bytes(b'half'); raise OSError(errno.ENOSPC, 'No space left on device')
    def cmd(args, log=print): write_atomic(target, full)
    monkeypatch.setattr(cli, 'cmd_book', cmd)
    assert cli.main(['book']) == 1
    assert _err(capsys) == [f"mvgg19 book: error: No space left on device: {target}; free some space there, or write "
                            "elsewhere"]
    assert target.read_bytes() == b'the previous view' and [p.name for p in tmp_path.iterdir()] == ['view0.npy']


def test_permission_denied_is_one_line(capsys, monkeypatch):
    def cmd(args, log=print): raise PermissionError(errno.EACCES, 'Permission denied', '/data/model.keras')
    monkeypatch.setattr(cli, 'cmd_book', cmd)
    assert cli.main(['book']) == 1
    assert _err(capsys) == ['mvgg19 book: error: Permission denied: /data/model.keras; check its permissions']


# --- case 16: `mvgg19 ... | head -n 2`
def test_a_closed_pipe_ends_quietly(tmp_path):
    code = ("import sys; from mvgg19_nb import cli\n"
            "def cmd(args, log=print):\n    for i in range(100000): print(f'row {i},' + 'x' * 60)\n    return 0\n"
            "cli.cmd_book = cmd\nsys.exit(cli.main(['book']))")
    r = subprocess.run(f"{sys.executable} -c \"$CODE\" | head -n 2", shell=True, capture_output=True, text=True,
                       env={**os.environ, 'CODE': code, 'PYTHONPATH': str(REPO)}, timeout=120)
    assert r.stdout.splitlines() == ['row 0,' + 'x' * 60, 'row 1,' + 'x' * 60] and r.stderr == '', r.stderr
