"""Nothing lost, nothing silently wrong: `mvgg19 predict` and `mvgg19 book` on the faults a production line meets.

Each test re-runs a case as a user would type it and checks the one line it answers, the exit status, and that
nothing was lost (the bytes and modification time of every file the user had). A tiny saved model (a VGG19 cut,
random weights, 32x32 input) keeps each test to a second or two."""
import os, tempfile
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import json, shutil, subprocess, sys, threading
from pathlib import Path
import pandas as pd
import pytest
from PIL import Image
from mvgg19_nb import cli, predict as predict_module
from mvgg19_nb.cards import CARD_FORMAT
from mvgg19_nb.images import file_digest, write_layout

ROOT = os.geteuid() == 0  # chmod does not stop root: there the tests make os.access say no


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    "A small saved model with two classes, ok and defect, at 32x32, and no card."
    from mvgg19_nb.model import build_mvgg19
    from mvgg19_nb.predict import save_model
    m = build_mvgg19(2, (32, 32), weights=None, seed=1, branches=('block2_pool',), trunk='block3_pool', dense_units=8)
    return save_model(m, tmp_path_factory.mktemp('model')/'model.keras', ['ok', 'defect'])


@pytest.fixture
def line(model_file, tmp_path, monkeypatch):
    "A folder as a user has it: model.keras with its card model.json, rgb.jpg, and imgs/ with three 40x40 images."
    monkeypatch.chdir(tmp_path)
    shutil.copy(model_file, 'model.keras')
    card = {'format': CARD_FORMAT, 'model_file': {'name': 'model.keras', 'sha1': file_digest('model.keras')},
            'classes': ['ok', 'defect'], 'positive_class': 'defect', 'dataset': 'folder', 'exports': [],
            'image_sizes': [{'size': [40, 40], 'images': 10}]}
    cli.write_json('model.json', card)
    write_layout(tmp_path, {'rgb.jpg': 'RGB', **{f'imgs/{i}.png': 'RGB' for i in range(3)}})
    return tmp_path


def state(*paths):
    "What must not change: each file's bytes and modification time (None where there is no file)."
    return {str(p): (Path(p).read_bytes(), os.stat(p).st_mtime_ns) if os.path.lexists(p) else None for p in paths}


def predict(capsys, *argv):
    "`mvgg19 predict ARGV --no-progress`: (status, standard error lines, standard output)."
    rc = cli.main(['predict', *map(str, argv), '--no-progress'])
    cap = capsys.readouterr()
    return rc, cap.err.splitlines(), cap.out


@pytest.fixture
def no_prediction(monkeypatch):
    "Fail the test if a prediction starts: the mistakes below must be answered before any work."
    def predicted(*a, **k): raise AssertionError('predicted before the mistake was reported')
    monkeypatch.setattr(predict_module, 'predict_images', predicted)  # what predict_files runs


def deny(monkeypatch, path, mode):
    "Make `path` not readable (`os.R_OK`) or not writable (`os.W_OK`): chmod for a user, os.access for root."
    if not ROOT:
        os.chmod(path, 0o444 if mode == os.W_OK else 0o000)
        return
    real, target = os.access, os.path.abspath(path)
    monkeypatch.setattr(os, 'access', lambda p, m, **kw: False if os.path.abspath(p) == target and m == mode
                        else real(p, m, **kw))


# --- case 3: --out an input; an existing CSV without --force ------------------------------------------------------

@pytest.mark.parametrize('out,what', [('model.onnx', 'the model file'), ('rgb.jpg', 'an input file'),
                                      ('model.json', "the model's card")])
def test_predict_never_writes_over_its_inputs(line, capsys, no_prediction, out, what):
    "`mvgg19 predict model.onnx rgb.jpg --out model.onnx` (or rgb.jpg, the card) once replaced it with a CSV."
    (line/'model.onnx').write_bytes(b'94 MB of ONNX')  # refused before the model is opened: its bytes do not matter
    before = state('model.onnx', 'model.json', 'rgb.jpg')
    rc, err, _ = predict(capsys, 'model.onnx', 'rgb.jpg', '--out', out, '--force')
    assert (rc, err) == (2, [f"mvgg19 predict: error: --out {out!r} is {what}: predict never writes over its inputs; "
                             "name another .csv file"])
    assert state('model.onnx', 'model.json', 'rgb.jpg') == before


def test_out_must_be_a_csv_name(line, capsys, no_prediction):
    rc, err, _ = predict(capsys, 'model.keras', 'rgb.jpg', '--out', 'p.txt')
    assert (rc, err) == (2, ["mvgg19 predict: error: --out 'p.txt': the predictions are a CSV table; name a .csv file "
                             "(e.g. p.csv)"])
    assert not os.path.lexists('p.txt')


def test_an_existing_csv_is_replaced_only_with_force(line, capsys):
    assert predict(capsys, 'model.keras', 'imgs', '--out', 'p.csv')[0] == 0
    (line/'p.csv').write_text('path,predicted,confidence\nyesterday.png,ok,0.9\n')
    before = state('p.csv')
    rc, err, _ = predict(capsys, 'model.keras', 'imgs', '--out', 'p.csv')
    assert (rc, err) == (2, ["mvgg19 predict: error: --out 'p.csv' exists; pass --force to overwrite it"])
    assert state('p.csv') == before
    rc, _, out = predict(capsys, 'model.keras', 'imgs', '--out', 'p.csv', '--force')
    assert rc == 0 and out.strip() == 'wrote 3 predictions and 0 failures to p.csv'
    assert len(pd.read_csv('p.csv')) == 3


def test_data_inside_an_input_folder_is_never_replaced(line, capsys, no_prediction):
    "A file of an input folder is an input, even with --force; only an earlier predictions table there may go."
    (line/'imgs'/'labels.csv').write_text('file,label\n0.png,ok\n')
    before = state('imgs/labels.csv')
    rc, err, _ = predict(capsys, 'model.keras', 'imgs', '--out', 'imgs/labels.csv', '--force')
    assert (rc, err) == (2, ["mvgg19 predict: error: --out 'imgs/labels.csv' is a file of the input folder 'imgs', not a "
                             "predictions table: predict never writes over its inputs; name another .csv file"])
    assert state('imgs/labels.csv') == before


# --- case 4: a non-UTF-8 file name; the previous table kept whole --------------------------------------------------

def _odd_name_folder(line):
    "imgs/ with a file whose name is not UTF-8 (the byte 0xff), and keep.csv, a 21-line table from before."
    shutil.copy(line/'imgs'/'1.png', os.fsencode(line/'imgs') + b'/bad\xff.png')
    (line/'keep.csv').write_text('path,predicted,confidence\n' + ''.join(f'{i}.png,ok,0.9\n' for i in range(20)))


def test_non_utf8_names_round_trip_in_the_csv(line, capsys):
    _odd_name_folder(line)
    rc, err, out = predict(capsys, 'model.keras', 'imgs', '--out', 'keep.csv', '--force')
    assert rc == 0 and out.strip() == 'wrote 4 predictions and 0 failures to keep.csv', err
    assert b'imgs/bad\xff.png,' in (line/'keep.csv').read_bytes()  # the name's own bytes
    back = pd.read_csv('keep.csv', encoding_errors='surrogateescape')
    assert os.path.isfile(next(p for p in back.path if 'bad' in p))  # each path names its file


def test_non_utf8_names_on_the_standard_output(line, capsysbinary):
    _odd_name_folder(line)
    assert cli.main(['predict', 'model.keras', 'imgs', '--no-progress']) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b'path,predicted,confidence,ok,defect,p_positive,error,note') and b'imgs/bad\xff.png,' in out


@pytest.mark.parametrize('fault', [KeyboardInterrupt, UnicodeEncodeError])
def test_a_failed_write_leaves_the_previous_csv_whole(line, capsys, monkeypatch, fault):
    "Ctrl+C or an encoding error half-way through the table: keep.csv as it was, no temporary file left."
    _odd_name_folder(line)
    before, real = state('keep.csv'), pd.DataFrame.to_csv
    def half(self, path=None, **kw):
        Path(path).write_text('path,predicted,confidence\n0.png,ok,')
        raise fault() if fault is KeyboardInterrupt else fault('utf-8', 'x', 0, 1, 'surrogates not allowed')
    monkeypatch.setattr(pd.DataFrame, 'to_csv', half)
    try: rc = cli.main(['predict', 'model.keras', 'imgs', '--out', 'keep.csv', '--force', '--no-progress'])
    except UnicodeEncodeError: rc = 'raised'  # (how `main` reports an unexpected error is not this test's subject)
    assert rc == (130 if fault is KeyboardInterrupt else rc) and rc != 0
    assert state('keep.csv') == before and sorted(os.listdir(line)) == ['imgs', 'keep.csv', 'model.json',
                                                                          'model.keras', 'rgb.jpg']


# --- case 9: a named pipe among the images -------------------------------------------------------------------------

@pytest.fixture
def watchdog():
    "Unblock, after 60 s, a read of the named pipes given: a hang becomes a failed test, not a stuck suite."
    pipes = []
    def unblock():
        for p in pipes:
            try: os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))  # lets a blocked reader go on (to EOF)
            except OSError: pass
    t = threading.Timer(60, unblock)
    t.start()
    yield pipes
    t.cancel()


def test_a_named_pipe_in_a_folder_is_skipped_and_said(line, capsys, watchdog):
    os.mkfifo(line/'imgs'/'cam.jpg'); watchdog.append(line/'imgs'/'cam.jpg')
    rc, err, _ = predict(capsys, 'model.keras', 'imgs', '--out', 'p.csv')
    assert rc == 0
    assert err[0] == "skipped 1 file: 1 not a regular file, never read (e.g. imgs/cam.jpg: a named pipe (FIFO))"
    assert pd.read_csv('p.csv').path.tolist() == [f'imgs/{i}.png' for i in range(3)]


def test_a_named_pipe_named_alone_is_one_row(line, capsys, watchdog):
    os.mkfifo(line/'cam.jpg'); watchdog.append(line/'cam.jpg')
    rc, err, out = predict(capsys, 'model.keras', 'cam.jpg', 'rgb.jpg', '--out', 'p.csv')
    assert rc == 0 and out.strip() == 'wrote 1 prediction and 1 failure to p.csv'
    t = pd.read_csv('p.csv', keep_default_na=False)
    assert t.error.tolist() == ['a named pipe (FIFO), not a regular file: only regular files are read as images', '']


def test_training_data_skips_named_pipes_too(tmp_path, watchdog):
    "The same rule where training finds its images (`scan_folder`): the pipe is ignored, with the reason."
    from mvgg19_nb.data import load_dataset
    root = write_layout(tmp_path/'data', {f'{c}/{i}.png': 'L' for c in ('ok', 'defect') for i in range(3)})
    os.mkfifo(root/'ok'/'cam.png'); watchdog.append(root/'ok'/'cam.png')
    ds = load_dataset('folder', root=root)
    assert len(ds) == 6 and [str(root/'ok'/'cam.png'), 'not a regular file (a named pipe (FIFO))'] in \
        [list(i) for i in ds.meta['ignored']]


# --- case 11: --out in a missing folder, --out read-only: said before predicting -----------------------------------

def test_out_in_a_missing_folder(line, capsys, no_prediction):
    rc, err, _ = predict(capsys, 'model.keras', 'imgs', '--out', 'missing/dir/p.csv')
    assert (rc, err) == (2, ["mvgg19 predict: error: --out 'missing/dir/p.csv': the folder 'missing/dir' does not exist "
                             "(predict creates no folders): create it (mkdir -p 'missing/dir') or name a .csv file in "
                             "another folder"])
    assert not os.path.lexists('missing')


def test_out_a_read_only_file(line, capsys, monkeypatch, no_prediction):
    (line/'ro.csv').write_text('path,predicted,confidence\n')
    deny(monkeypatch, 'ro.csv', os.W_OK)
    before = state('ro.csv')
    rc, err, _ = predict(capsys, 'model.keras', 'imgs', '--out', 'ro.csv', '--force')
    assert (rc, err) == (2, ["mvgg19 predict: error: --out 'ro.csv' is read-only: make it writable (chmod u+w) or name "
                             "another .csv file"])
    assert state('ro.csv') == before


# --- cases 12-14: the model file and its card ----------------------------------------------------------------------

def test_a_model_file_the_user_cannot_read(line, capsys, monkeypatch, no_prediction):
    deny(monkeypatch, 'model.keras', os.R_OK)
    rc, err, _ = predict(capsys, 'model.keras', 'imgs')
    assert (rc, err) == (2, ["mvgg19 predict: error: model file model.keras cannot be read (permission denied): make "
                             "it readable (chmod u+r 'model.keras'), or ask its owner for a copy"])


def test_a_damaged_keras_file_is_one_line_before_tensorflow(line):
    "16 flipped bytes inside a complete zip: said from the archive's checksums, before TensorFlow is imported."
    data = bytearray((line/'model.keras').read_bytes())
    for i in range(16): data[len(data) // 2 + i] ^= 0xFF
    (line/'model.keras').write_bytes(bytes(data)); (line/'model.json').unlink()
    code = ("import sys; from mvgg19_nb.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules)); sys.exit(rc)")
    r = subprocess.run([sys.executable, '-c', code, 'predict', 'model.keras', 'imgs'], capture_output=True, text=True,
                       timeout=300)
    assert (r.returncode, r.stdout.strip()) == (2, '[]'), (r.stdout, r.stderr[-2000:])
    assert r.stderr.splitlines() == ["mvgg19 predict: error: model file model.keras is damaged (model.weights.h5 fails "
                                     "its CRC-32 check): copy it again, or export or train it again"]


@pytest.mark.parametrize('edit,says', [
    ({'positive_class': 'bogus'}, "positive_class 'bogus' is not one of ['ok', 'defect']"),
    ({'classes': 'ok'}, "classes 'ok' is not a list of two or more different class names"),
    ({'image_sizes': [{'size': 40}]}, 'image_sizes is not a list of {"size": [height, width], "images": count}')])
def test_an_edited_card_is_one_line_before_predicting(line, capsys, no_prediction, edit, says):
    card = json.loads((line/'model.json').read_text())
    cli.write_json('model.json', {**card, **edit})
    rc, err, _ = predict(capsys, 'model.keras', 'imgs', '--out', 'p.csv')
    assert (rc, err) == (2, [f"mvgg19 predict: error: model card model.json: {says}; fix the field, or remove the card "
                             "(mvgg19 train writes it)"])
    assert not os.path.lexists('p.csv')


def test_a_card_with_another_number_of_classes(line, capsys, no_prediction):
    card = json.loads((line/'model.json').read_text())
    cli.write_json('model.json', {**card, 'classes': ['ok', 'scratch', 'dent'], 'positive_class': None})
    rc, err, _ = predict(capsys, 'model.keras', 'imgs')  # the model has two outputs: the card is another model's
    assert (rc, err) == (2, ["mvgg19 predict: error: model card model.json names 3 classes for a model with 2 outputs: "
                             "the card is not this model's; remove it, or train the model again"])


# --- case 19: images far from the training images' size and shape --------------------------------------------------

def test_odd_sizes_are_predicted_with_a_note_in_their_row(line, capsys):
    Image.new('RGB', (20, 20), (200, 10, 10)).save(line/'tiny.png')  # Pillow sizes are (width, height)
    Image.new('RGB', (20, 5000), (10, 200, 10)).save(line/'tall.png')
    rc, err, _ = predict(capsys, 'model.keras', 'tiny.png', 'tall.png', 'imgs/0.png', '--out', 'p.csv')
    t = pd.read_csv('p.csv', keep_default_na=False)
    assert rc == 0 and t.columns.tolist()[:3] == ['path', 'predicted', 'confidence'] and t.columns[-1] == 'note'
    assert (t.predicted != '').all()  # still predicted
    assert t.note.tolist() == [
        '20x20, resized to 32x32: a side under 32 px; far from the images the model learnt on, check this prediction',
        '5000x20, resized to 32x32: a side under 32 px and an aspect ratio (width/height) 0.004, 250 times off the '
        'nearest training image shape; far from the images the model learnt on, check this prediction', '']
    assert ('2 images far from the images the model learnt on, predicted with a note in the note column: e.g. tiny.png '
            '(20x20, resized to 32x32: a side under 32 px)') in err


# --- the standard output: one write, flushed once ------------------------------------------------------------------

def test_the_table_goes_to_the_standard_output_in_one_write(line, monkeypatch):
    class Buffer:
        def __init__(self): self.writes = []
        def write(self, b): self.writes.append(b)
        def flush(self): pass
    class Out:
        buffer = Buffer()
        def write(self, s): raise AssertionError('text write: the table goes to the buffer in one write')
        def flush(self): pass
    monkeypatch.setattr(sys, 'stdout', Out())
    assert cli.main(['predict', 'model.keras', 'imgs', '--no-progress']) == 0
    assert len(Out.buffer.writes) == 1 and Out.buffer.writes[0].count(b'\n') == 4


# --- case 15: mvgg19 book with a truncated results file ------------------------------------------------------------

def test_book_names_a_truncated_results_file(tmp_path, capsys):
    (tmp_path/'results').mkdir()
    (tmp_path/'results'/'casting.json').write_text('{"dataset": "casting", "models": {"vgg19": {"mean"')
    (tmp_path/'summary.md').write_text('# the previous summary\n')
    before = state(tmp_path/'summary.md')
    rc = cli.main(['book', '--no-build', '--results-dir', str(tmp_path/'results'), '--page', str(tmp_path/'summary.md')])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"mvgg19 book: error: results file {tmp_path/'results'/'casting.json'} cannot be read (")
    assert err[0].endswith(f"): rerun its experiment (mvgg19 run casting), or move the file out of {tmp_path/'results'}")
    assert state(tmp_path/'summary.md') == before
