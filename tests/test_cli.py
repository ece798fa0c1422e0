"`mvgg19 run`, `predict` and `export` at their edges: paths, names, help, Ctrl-C, stale results, model files, counts."
import os, shutil, signal, subprocess, sys, tempfile, time
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import json
from pathlib import Path

import pytest

from mvgg19_nb import cli
from mvgg19_nb.cards import CARD_FORMAT
from mvgg19_nb.experiment import EXPERIMENT_DEFAULTS, INPUT_SIZES, repo_root
from fixtures import make_folder, make_magnetic_tile


@pytest.fixture
def fake_run(monkeypatch):
    "`run_experiment` replaced by a recorder; `epochs` 2 fails the notebook, 3 is Ctrl-C during the run."
    import papermill as pm
    calls = []
    def run(name, output=None, **kw):
        calls.append(dict(name=name, output=output, **kw))
        if kw.get('epochs') == 2: raise pm.PapermillExecutionError(12, 12, 'cv', 'ValueError', 'boom', [])
        if kw.get('epochs') == 3: raise KeyboardInterrupt
        return output
    monkeypatch.setattr(cli, 'run_experiment', run)
    return calls


@pytest.fixture
def tiny(tmp_path):
    return make_folder(tmp_path/'tiny', per_class=3)


def test_relative_paths_are_resolved_where_the_user_stands(fake_run, tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path/'w.h5').write_bytes(b'\x89HDF\r\n\x1a\n' + bytes(64))
    assert cli.main(['run', 'folder', '-p', 'data_root', 'tiny', '-p', 'folds', '2', '-p', 'output_dir', 'res',
                     '-p', 'runs_dir', 'r', '-p', 'cache_dir', '~/c', '-p', 'weights', 'w.h5', '--no-progress']) == 0
    c = fake_run[-1]
    assert (c['data_root'], c['output_dir'], c['runs_dir'], c['weights']) == \
        (str(tmp_path/'tiny'), str(tmp_path/'res'), str(tmp_path/'r'), str(tmp_path/'w.h5'))
    assert c['cache_dir'] == str(Path.home()/'c') and c['output'] == tmp_path/'res'/'folder.ipynb'
    assert (f"folder: wrote {tmp_path/'res'/'folder.ipynb'} and {tmp_path/'res'/'folder.json'}"
            in capsys.readouterr().out)


def test_relative_data_root_is_not_looked_for_in_the_repository(fake_run, tmp_path, monkeypatch, capsys):
    "A folder that exists only relative to the repository root is not found from elsewhere."
    monkeypatch.chdir(tmp_path)
    assert (repo_root()/'nbs').is_dir() and not (tmp_path/'nbs').exists()
    assert cli.main(['run', 'folder', '-p', 'data_root', 'nbs']) == 2
    assert str(tmp_path/'nbs') in capsys.readouterr().err and not fake_run


@pytest.mark.parametrize('given', ['CASTING', 'Casting', 'magnetic-tile', 'MAGNETIC_TILE'])
def test_dataset_name_normalised_once(fake_run, monkeypatch, tmp_path, capsys, given):
    monkeypatch.setattr('mvgg19_nb.data.load_dataset', lambda name, root=None: None)  # the data are not needed here
    assert cli.main(['run', given, '-p', 'output_dir', str(tmp_path)]) == 0
    key = 'casting' if 'ast' in given.lower() else 'magnetic_tile'
    c = fake_run[-1]
    assert (c['name'], c['input_size'], c['output'].name) == (key, INPUT_SIZES[key], f'{key}.ipynb')


def test_failed_run_leaves_the_previous_results(fake_run, tiny, tmp_path, capsys):
    res = tmp_path/'res'; res.mkdir()
    (res/'folder.json').write_text('{"old": true}')
    argv = ['run', 'folder', '-p', 'data_root', str(tiny), '-p', 'folds', '2', '-p', 'output_dir', str(res)]
    assert cli.main(argv + ['-p', 'epochs', '2']) == 1
    out = capsys.readouterr().out
    assert json.loads((res/'folder.json').read_text()) == {'old': True}
    assert (f"folder failed in cell 12: ValueError: boom. {res/'folder.failed.ipynb'} shows where; the previous "
            "folder.ipynb and results, if any, are unchanged") in out


def test_ctrl_c_is_one_line_and_status_130(fake_run, tiny, tmp_path, capsys):
    res = tmp_path/'res'; res.mkdir(); (res/'folder.json').write_text('{}')
    assert cli.main(['run', 'folder', '-p', 'data_root', str(tiny), '-p', 'folds', '2', '-p', 'output_dir', str(res),
                     '-p', 'runs_dir', str(tmp_path/'runs'), '-p', 'epochs', '3']) == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "mvgg19 run: interrupted; folder.interrupted.ipynb shows how far it got, the previous page and results are "
        f"unchanged; finished folds are kept in {tmp_path/'runs'}: rerun the same command to resume"]
    assert (res/'folder.json').read_text() == '{}'


def test_ctrl_c_signal_in_a_real_process(tiny, tmp_path):
    "SIGINT while the (stand-in) notebook runs: one line on the standard error, no traceback, exit status 130."
    code = ("import os, signal, sys, time; from mvgg19_nb import cli\n"
            # a shell's background job (nohup ... &) starts with SIGINT ignored, and Python keeps that: restore Ctrl+C
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "def run(*a, **k): os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n"
            "cli.run_experiment = run\nsys.exit(cli.main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, '-c', code, 'run', 'folder', '-p', 'data_root', str(tiny), '-p', 'folds', '2',
                        '-p', 'output_dir', str(tmp_path/'res'), '-p', 'runs_dir', str(tmp_path/'runs')],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 130 and r.stderr.splitlines() == [
        "mvgg19 run: interrupted; folder.interrupted.ipynb shows how far it got, the previous page and results are "
        f"unchanged; finished folds are kept in {tmp_path/'runs'}: rerun the same command to resume"], r.stderr


def test_help_lists_every_template_parameter_with_its_default(capsys):
    with pytest.raises(SystemExit) as e: cli.main(['run', '--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for k, v in EXPERIMENT_DEFAULTS.items():
        line = next((l for l in out.splitlines() if l.startswith(f'  {k} = ')), None)
        assert line is not None, k
        default, _, description = line.split(' = ', 1)[1].partition('  ')
        assert eval(default) == v and description.strip(), line  # the default, then a description
    assert "the parameters cell of nbs/_experiment.ipynb" in out
    assert "'frozen' (paper), 'finetune' or 'scratch'" in out  # the template's own comment


def test_help_follows_the_template(tmp_path):
    "A parameter added to the template shows up in the help, with its comment, without touching the CLI."
    nb = json.loads((repo_root()/'nbs'/'_experiment.ipynb').read_text())
    cell = next(c for c in nb['cells'] if 'parameters' in c.get('metadata', {}).get('tags', []))
    cell['source'] = ''.join(cell['source']) + "\nworkers = None  # processes for the folds\n"
    (tmp_path/'t.ipynb').write_text(json.dumps(nb))
    h = cli.parameters_help(tmp_path/'t.ipynb', width=120)
    assert any(l.startswith('  workers = None') and l.endswith('processes for the folds') for l in h.splitlines())


def test_main_reports_unexpected_errors_with_their_traceback_in_a_file(monkeypatch, tiny, tmp_path, capsys):
    "A bug (here a ValueError inside the run) is not disguised as a user mistake: one line, exit 1, its traceback kept."
    def bug(*a, **k): raise ValueError('a bug, not a user mistake')
    monkeypatch.setattr(cli, 'check_run', bug)
    monkeypatch.setattr(cli.tempfile, 'gettempdir', lambda: str(tmp_path))
    assert cli.main(['run', 'folder', '-p', 'data_root', str(tiny)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('mvgg19 run: internal error: ValueError: a bug, not a user mistake; '
                                               f'the traceback is in {tmp_path}/mvgg19-run-'), err
    log = Path(err[0].split('the traceback is in ')[1].split(' (please')[0])
    assert 'Traceback (most recent call last)' in log.read_text() and 'in bug' in log.read_text()


def test_missing_files_are_user_mistakes(capsys, tmp_path):
    assert cli.main(['run', 'folder', '-p', 'data_root', str(tmp_path/'nowhere')]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


# --- predict ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    "A small saved model (a VGG19 cut, random weights) that classifies 32x32 images into Blowhole, Free."
    from mvgg19_nb.model import build_mvgg19
    from mvgg19_nb.predict import save_model
    m = build_mvgg19(2, (32, 32), weights=None, seed=1, branches=('block2_pool',), trunk='block3_pool', dense_units=8)
    return save_model(m, tmp_path_factory.mktemp('model')/'tile.keras', ['Blowhole', 'Free'])


def test_predict_missing_model_answers_before_tensorflow(tmp_path):
    (tmp_path/'a.png').write_bytes(b'x')
    code = ("import sys; from mvgg19_nb.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules)); sys.exit(rc)")
    r = subprocess.run([sys.executable, '-c', code, 'predict', str(tmp_path/'missing.keras'), str(tmp_path)],
                       capture_output=True, text=True)
    # answered before TensorFlow: neither Keras nor TensorFlow was imported (what makes it fast; a wall-clock bound
    # would depend on the machine and on its load)
    assert r.returncode == 2 and r.stdout.strip() == '[]', (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [f"mvgg19 predict: error: model file '{tmp_path/'missing.keras'}' not found"]


@pytest.mark.parametrize('name,why', [('text.keras', 'not a .keras archive'), ('text.h5', 'not an HDF5 file'),
                                      ('folder', 'a folder')])
def test_predict_refuses_what_is_not_a_model(tmp_path, capsys, name, why):
    (tmp_path/'text.keras').write_text('hello'); (tmp_path/'text.h5').write_text('hello'); (tmp_path/'folder').mkdir()
    (tmp_path/'a.png').write_bytes(b'x')
    assert cli.main(['predict', str(tmp_path/name), str(tmp_path/'a.png')]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f'mvgg19 predict: error: not a Keras model file: {tmp_path/name} ({why}')


def test_predict_argument_mistakes(model_file, tmp_path, capsys):
    assert cli.main(['predict', str(model_file), str(tmp_path/'nowhere')]) == 2
    assert "nowhere': no such file or folder" in capsys.readouterr().err
    (tmp_path/'a.png').write_bytes(b'x')
    assert cli.main(['predict', str(model_file), str(tmp_path/'a.png'), '--batch-size', '0']) == 2
    assert 'batch_size=0: use an integer >= 1' in capsys.readouterr().err
    assert cli.main(['predict', str(model_file), str(tmp_path/'a.png'), '--out', str(tmp_path)]) == 2
    assert 'is a folder' in capsys.readouterr().err


def test_predict_counts_predictions_and_failures(model_file, tmp_path, capsys):
    from mvgg19_nb.images import write_layout
    d = write_layout(tmp_path/'in', {f'{i}.png': 'L' for i in range(3)})
    (d/'bad1.png').write_bytes(b'not an image'); (d/'bad2.jpg').write_bytes(b'')
    assert cli.main(['predict', str(model_file), str(d), '--out', str(tmp_path/'out.csv'), '--no-progress']) == 0
    assert capsys.readouterr().out.strip() == f"wrote 3 predictions and 2 failures to {tmp_path/'out.csv'}"
    # the table on stdout, the note on stderr
    assert cli.main(['predict', str(model_file), str(d/'0.png'), '--no-progress']) == 0
    cap = capsys.readouterr()
    assert (cap.out.splitlines()[0].startswith('path,predicted,confidence,Blowhole,Free')
            and len(cap.out.splitlines()) == 2)
    assert cap.err.splitlines() == [  # the image is 40x40, the model takes 32x32: said once, then the count
        "resized 1 of 1 image to 32x32 (bilinear, as in training): not 32x32, the model's input size, "
        f"e.g. {d/'0.png'} "
        "(40x40); check that they show the parts at the training images' scale", '1 prediction and 0 failures']


def test_predict_exits_non_zero_when_nothing_was_predicted(model_file, tmp_path, capsys):
    (tmp_path/'in').mkdir(); (tmp_path/'in'/'a.png').write_text('x'); (tmp_path/'in'/'b.jpg').write_text('y')
    assert cli.main(['predict', str(model_file), str(tmp_path/'in'), '--out', str(tmp_path/'o.csv'),
                     '--no-progress']) == 1
    cap = capsys.readouterr()
    assert cap.out.strip() == f"wrote 0 predictions and 2 failures to {tmp_path/'o.csv'}"
    assert 'nothing was predicted' in cap.err


def test_predict_skips_masks_and_excluded_files(model_file, tmp_path, capsys):
    root = make_magnetic_tile(tmp_path/'magnetic_tile', {'Blowhole': 2, 'Free': 3})
    assert cli.main(['predict', str(model_file), str(root/'MT_Free'), '--out', str(tmp_path/'o.csv'),
                     '--no-progress']) == 0
    cap = capsys.readouterr()
    assert cap.err.splitlines()[0] == 'skipped 3 files: 3 magnetic tile ground-truth masks'
    assert len(cap.err.splitlines()) == 2 and cap.err.splitlines()[1].startswith('resized 3 of 3 images to 32x32')
    assert cap.out.strip() == f"wrote 3 predictions and 0 failures to {tmp_path/'o.csv'}"
    assert cli.main(['predict', str(model_file), str(root), '--exclude', 'MT_Blowhole/*', '--exclude', '*num_2.jpg',
                     '--out', str(tmp_path/'o.csv'), '--force', '--no-progress']) == 0  # (o.csv exists)
    cap = capsys.readouterr()
    assert cap.err.splitlines()[0] == ("skipped 8 files: 3 magnetic tile ground-truth masks and 5 matching "
                                       "'MT_Blowhole/*' or '*num_2.jpg'")
    assert 'wrote 2 predictions' in cap.out
    assert cli.main(['predict', str(model_file), str(root), '--exclude', '*']) == 2
    assert 'no image files to predict' in capsys.readouterr().err


# --- export (a small model: fast to export) ------------------------------------------------------------------------

def test_export_savedmodel_checks_on_random_pixels_without_a_card(model_file, tmp_path, capsys):
    pytest.importorskip('tensorflow')
    assert cli.main(['export', str(model_file), '--format', 'savedmodel', '--out', str(tmp_path/'sm')]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'checking on random pixels: no model card beside the model; pass --images to check on real images'
    line = next(l for l in out if l.startswith('largest probability difference'))
    assert line.startswith('largest probability difference between tile.keras and its savedmodel export: ')
    assert line.endswith(', on 8 random-pixel images') and float(line.split(': ')[1].split(',')[0]) <= 1e-4
    assert out[-1] == f"wrote {tmp_path/'sm'}; no model card beside tile.keras to copy"
    assert (tmp_path/'sm'/'saved_model.pb').is_file() and json.loads((tmp_path/'sm'/'classes.json').read_text()) == \
        ['Blowhole', 'Free']
    assert cli.main(['export', str(model_file), '--format', 'savedmodel', '--out', str(tmp_path/'sm')]) == 2
    assert (capsys.readouterr().err.strip()
            == f"mvgg19 export: error: --out {str(tmp_path/'sm')!r} exists; pass --force to overwrite it, or choose "
               "another --out")
    assert cli.main(['predict', str(tmp_path/'sm'), str(tmp_path)]) == 2
    assert 'is a TF SavedModel: predict takes the .keras model or its ONNX export' in capsys.readouterr().err


def test_export_that_differs_is_not_written(model_file, tmp_path, capsys, monkeypatch):
    "Above the tolerance (here made negative, so that any export fails the check): exit 1, one line, nothing left."
    pytest.importorskip('tensorflow')
    monkeypatch.setattr(cli, 'EXPORT_TOLERANCE', -1.0)
    assert cli.main(['export', str(model_file), '--format', 'savedmodel', '--out', str(tmp_path/'sm')]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('mvgg19 export: error: the export differs from the Keras model by ')
    assert err[0].endswith(f"> -1: {tmp_path/'sm'} not written") and list(tmp_path.iterdir()) == []


def test_export_onnx_copies_the_card_and_checks_on_given_images(model_file, tmp_path, capsys):
    pytest.importorskip('tf2onnx'); pytest.importorskip('onnxruntime')
    from mvgg19_nb.images import file_digest, write_layout
    model = Path(shutil.copy(model_file, tmp_path/'tile.keras'))
    card = {'format': CARD_FORMAT, 'model_file': {'name': 'tile.keras', 'sha1': file_digest(model)},
            'classes': ['Blowhole', 'Free'], 'positive_class': None, 'dataset': 'magnetic_tile', 'exports': [],
            'image_sizes': [{'size': [40, 40], 'images': 10}]}
    cli.write_json(tmp_path/'tile.json', card)
    imgs = write_layout(tmp_path/'imgs', {f'{i}.png': 'RGB' for i in range(3)})
    assert cli.main(['export', str(model), '--format', 'onnx', '--out', str(tmp_path/'ship'/'tile.onnx'),
                     '--images', str(imgs)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith('largest'))
    assert line.endswith(', on 3 images given with --images'), line
    copied = json.loads((tmp_path/'ship'/'tile.json').read_text())  # the card, beside the export, with its entry
    assert {**copied, 'exports': []} == card
    assert [(e['file'], e['sha1'], e['source']) for e in copied['exports']] == \
        [('tile.onnx', file_digest(tmp_path/'ship'/'tile.onnx'), {'name': 'tile.keras', 'sha1': file_digest(model)})]
    assert cli.main(['predict', str(tmp_path/'ship'/'tile.onnx'), str(imgs), '--no-progress']) == 0
    cap = capsys.readouterr()  # 40x40 images, as the card's training images: no resize note
    assert cap.out.splitlines()[0] == 'path,predicted,confidence,Blowhole,Free,error,note' and len(cap.out.splitlines()) == 4
    assert cap.err.splitlines() == ['3 predictions and 0 failures']
    assert cli.main(['predict', str(tmp_path/'ship'/'tile.onnx'), str(imgs), '--threshold', '0.5']) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"mvgg19 predict: error: --threshold needs the positive class of a binary model: the model card "
        f"{tmp_path/'ship'/'tile.json'} names none"]
