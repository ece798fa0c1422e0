"Every parameter rule of `check_params`, through the API and through `mvgg19 run` (refused before papermill starts)."
import os, subprocess, sys, tempfile, zipfile
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
from pathlib import Path

import numpy as np
import pytest

from mvgg19_nb import cli
from mvgg19_nb.data import Dataset
from mvgg19_nb import params as P
from mvgg19_nb.params import (ALLOWED, HDF5_SIGNATURE, ParameterError, check_model_file, check_params, dataset_key,
                              model_constants)
from fixtures import make_folder

TOY = Dataset('toy', [f'{c}_{i}.png' for c, n in [('ok', 12), ('bad', 3)] for i in range(n)], [0] * 12 + [1] * 3,
              ['ok', 'bad'])


def fails(contains, **params):
    "check_params(**params) raises a ParameterError one of whose lines contains `contains`; returns its lines."
    with pytest.raises(ParameterError) as e: check_params(**params)
    assert any(contains in line for line in e.value.problems), (contains, e.value.problems)
    assert str(e.value).splitlines() == e.value.problems
    return e.value.problems


# --- the API: one test per rule ----------------------------------------------------------------------------------

def test_models():
    assert check_params(models='vgg19') == {'models': ['vgg19']}  # a single name is a list of one, not 5 letters
    assert check_params(models=('vgg19', 'mvgg19'))['models'] == ['vgg19', 'mvgg19']
    fails("models=['resnet50']: unknown model 'resnet50'; use a model name or a list of distinct names from "
          "mvgg19, vgg19", models=['resnet50'])
    fails("'vgg19' named more than once", models=['vgg19', 'mvgg19', 'vgg19'])
    fails('models=[]: use a model name', models=[])
    fails('models=None', models=None)


def test_folds():
    assert check_params(folds=3, dataset=TOY)['folds'] == 3
    fails('folds=1: use an integer >= 2', folds=1)
    fails('folds=True: use an integer >= 2, not a truth value', folds=True)
    fails("folds=4: toy: fewer images than folds=4 in class 'bad' (3 images); use at most 3 folds", folds=4,
          dataset=TOY)
    fails("(in the sample of max_images=10)", folds=4, max_images=10, dataset=TOY)


@pytest.mark.parametrize('name,low', [('epochs', 1), ('batch_size', 1), ('views', 1), ('seed', 0)])
def test_counts(name, low):
    assert check_params(**{name: np.int64(low)})[name] == low and type(check_params(**{name: low})[name]) is int
    fails(f'{name}={low - 1}: use an integer >= {low}', **{name: low - 1})
    fails(f'{name}=True: use an integer >= {low}' + (" or 'auto'" if name == 'epochs' else '') + ', not a truth value',
          **{name: True})
    fails(f'{name}=2.0: use an integer >= {low}', **{name: 2.0})
    fails(f"{name}='3'", **{name: '3'})


def test_val_split():
    assert check_params(val_split=0)['val_split'] == 0.0 and check_params(val_split=0.25)['val_split'] == 0.25
    for bad in (1, 1.5, -0.1, float('nan'), True, '0.1'):
        fails(f'val_split={bad!r}: use a number with 0 <= val_split < 1', val_split=bad)


def test_input_size():
    assert check_params(input_size=64)['input_size'] == [64, 64]
    assert check_params(input_size=(100, 205))['input_size'] == [100, 205]
    for bad in (31, [16, 100], [100], [100, 100, 3], [64.0, 64], [True, 64], '100x100', None):
        fails(f"input_size={bad!r}: use two integers >= 32 (VGG19's minimum)", input_size=bad)


@pytest.mark.parametrize('name,good,allowed', [
    ('freeze', 'finetune', "'frozen', 'finetune', 'scratch'"),
    ('preprocessing', 'unit_bgr', "'vgg', 'unit', 'unit_bgr'"),
    ('precision', 'bfloat16', "'float32', 'bfloat16', 'auto'"),
    ('bn_stats', 'ema', "'precise', 'ema'")])
def test_names_from_a_list(name, good, allowed):
    assert check_params(**{name: good})[name] == good
    for bad in ('nope', good.upper(), None, [good]):
        fails(f'{name}={bad!r}: use one of {allowed}', **{name: bad})


def test_max_images():
    assert check_params(max_images=None, dataset=TOY)['max_images'] is None
    assert check_params(max_images=8, dataset=TOY)['max_images'] == 8  # 5 + 3: what Dataset.sample keeps at least
    fails('max_images=1: use None (every image) or an integer >= 2', max_images=1)
    fails('max_images=3: use None (every image) or an integer >= 4 (2 per class, 2 classes in toy)', max_images=3,
          dataset=TOY)
    fails('max_images=True', max_images=True)
    six = Dataset('six', [f'{i}.png' for i in range(60)], np.arange(60) % 6, list('abcdef'))
    fails('max_images=12: six: max_images=12 cannot keep 5 images of each of 6 classes', max_images=12, dataset=six)


def test_weights(tmp_path):
    (tmp_path/'w.h5').write_bytes(HDF5_SIGNATURE + bytes(64)); (tmp_path/'text.h5').write_text('hello')
    assert check_params(weights=None)['weights'] is None and check_params(weights='imagenet')['weights'] == 'imagenet'
    assert check_params(weights=tmp_path/'w.h5')['weights'] == str(tmp_path/'w.h5')
    name = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
    lines = fails('no such file; use None', weights=str(tmp_path/'missing.h5'))
    assert (name in lines[0] and model_constants()['VGG19_NOTOP_URL'] in lines[0]
            and str(tmp_path/'missing.h5') in lines[0])
    fails('not an HDF5 weights file', weights=tmp_path/'text.h5')
    fails('a folder, not a weights file', weights=tmp_path)
    fails('weights=3: use None', weights=3)


def test_workers():
    assert check_params(workers=None)['workers'] is None and check_params(workers=2)['workers'] == 2
    fails('workers=0: use an integer >= 1', workers=0)
    fails('workers=False', workers=False)


def test_augment():
    for good in (True, False, None, {'noise_std': 5}):
        assert check_params(augment=good)['augment'] == good
    for bad in ('yes', 1):
        fails(f'augment={bad!r}: use True or None (the default augmentations), False (none) or a dict', augment=bad)
    fails("augment={1: 2}: unknown setting 1; use noise_std, rotation", augment={1: 2})  # names checked (`mvgg19_nb.augment`)


def test_positive_class():
    assert check_params(positive_class=None)['positive_class'] is None
    assert check_params(positive_class='bad', dataset=TOY)['positive_class'] == 'bad'
    fails('positive_class=1: use None or a class name', positive_class=1)
    fails("positive_class='crack': not a class of toy; use one of ['ok', 'bad']", positive_class='crack', dataset=TOY)


def test_dataset_names():
    assert ([dataset_key(n) for n in ('CASTING', 'magnetic-tile', 'Magnetic_Tile')]
            == ['casting', 'magnetic_tile', 'magnetic_tile'])
    assert check_params(dataset='ELPV')['dataset'] == 'elpv' and check_params(dataset=TOY)['dataset'] is TOY
    fails("dataset='nosuch': unknown dataset 'nosuch'; use one of casting, ", dataset='nosuch')
    with pytest.raises(ParameterError, match="dataset='x': unknown dataset"): dataset_key('x')


def test_every_problem_at_once_and_unknown_names_pass():
    with pytest.raises(ParameterError) as e:
        check_params(models='resnet50', epochs=0, batch_size=0, val_split=1.5, views=0, cache_dir='x',
                     anything=object())
    assert [p.split('=')[0] for p in e.value.problems] == ['models', 'epochs', 'batch_size', 'val_split', 'views']
    assert check_params(note='x', other=None) == {'note': 'x', 'other': None}
    assert isinstance(e.value, ValueError)


def test_model_constants_are_the_model_modules():
    "Defined once, in params: the model and augmentation modules use the same objects, and build what it names."
    import mvgg19_nb.augment as a, mvgg19_nb.features as f, mvgg19_nb.heads as h, mvgg19_nb.model as m
    assert tuple(m.MODELS) == model_constants()['MODELS'] == P.MODEL_NAMES
    assert all(getattr(m, k) is getattr(P, k) for k in ('PREPROCESSING', 'MIN_SIZE', 'VGG19_NOTOP_URL', 'VGG19_CONVS',
                                                        'FREEZE'))
    assert a.AUGMENT_DEFAULTS is P.AUGMENT_DEFAULTS and f.PRECISIONS is P.PRECISIONS and h.BN_STATS is P.BN_STATS
    import ast
    tree = ast.parse(Path(P.__file__).read_text())
    imported = ({n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
                | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names})
    assert not imported & {'model', 'mvgg19_nb.model', 'augment', 'mvgg19_nb.augment', 'ast'}, imported  # none read
    assert set(ALLOWED) >= {'models', 'folds', 'epochs', 'batch_size', 'val_split', 'views', 'input_size', 'freeze',
                            'preprocessing', 'max_images', 'weights', 'seed', 'workers', 'augment', 'precision',
                            'bn_stats', 'positive_class'}


def test_model_files(tmp_path):
    with zipfile.ZipFile(tmp_path/'m.keras', 'w') as z: z.writestr('config.json', '{}')
    (tmp_path/'text.keras').write_text('hi'); (tmp_path/'text.h5').write_text('hi')
    (tmp_path/'m.onnx').write_bytes(b'x')
    assert check_model_file(tmp_path/'m.keras') == tmp_path/'m.keras'
    with pytest.raises(FileNotFoundError, match='not found'): check_model_file(tmp_path/'missing.keras')
    for bad, why in [('text.keras', 'not a .keras archive'), ('text.h5', 'not an HDF5 file'),
                     ('m.onnx', 'must end in .keras'), ('', 'a folder')]:
        with pytest.raises(ParameterError) as e: check_model_file(tmp_path/bad)
        assert str(e.value).startswith(f'not a Keras model file: {tmp_path/bad} (') and why in str(e.value)
        assert len(str(e.value).splitlines()) == 1


# --- the command line: every template parameter refused before papermill starts -----------------------------------

@pytest.fixture
def tiny(tmp_path, monkeypatch):
    "A two-class folder dataset (3 images a class), and `run_experiment` replaced by a test failure: nothing may start."
    def started(*a, **k): raise AssertionError('papermill was started despite a bad parameter')
    monkeypatch.setattr(cli, 'run_experiment', started)
    return make_folder(tmp_path/'tiny', per_class=3)


def run_cli(capsys, *argv):
    "`mvgg19 run folder ...` in-process: (exit status, stderr lines)."
    rc = cli.main(['run', *argv])
    return rc, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize('name,value,message', [
    ('models', 'resnet50', "models='resnet50': unknown model 'resnet50'"),
    ('models', '[resnet50]', "models=['resnet50']: unknown model 'resnet50'"),
    ('models', '[vgg19, vgg19]', "'vgg19' named more than once"),
    ('models', '[]', 'models=[]: use a model name'),
    ('folds', '1', 'folds=1: use an integer >= 2'),
    ('folds', '4', "folds=4: folder: fewer images than folds=4 in class 'defect' (3 images)"),
    ('epochs', '0', 'epochs=0: use an integer >= 1'),
    ('epochs', '-1', 'epochs=-1: use an integer >= 1'),
    ('epochs', 'Auto', "epochs='Auto': use an integer >= 1 or 'auto'"),
    ('check_augmentation', 'sometimes', "check_augmentation='sometimes': use 'auto'"),
    ('check_augmentation', '1', "check_augmentation=1: use 'auto'"),
    ('epochs', 'true', "epochs=True: use an integer >= 1 or 'auto', not a truth value"),
    ('batch_size', '0', 'batch_size=0: use an integer >= 1'),
    ('val_split', '1.5', 'val_split=1.5: use a number with 0 <= val_split < 1'),
    ('val_split', '-0.1', 'val_split=-0.1: use a number'),
    ('views', '0', 'views=0: use an integer >= 1'),
    ('input_size', '[16, 16]', 'input_size=[16, 16]: use two integers >= 32'),
    ('input_size', '10x10', 'input_size=[10, 10]: use two integers >= 32'),
    ('input_size', 'big', "input_size='big': use two integers >= 32"),
    ('freeze', 'frozn', "freeze='frozn': use one of 'frozen', 'finetune', 'scratch'"),
    ('preprocessing', 'caffe', "preprocessing='caffe': use one of 'vgg', 'unit', 'unit_bgr'"),
    ('max_images', '3', 'max_images=3: use None (every image) or an integer >= 4 (2 per class, 2 classes in folder)'),
    ('weights', 'missing.h5', 'no such file; use None'),
    ('seed', '-1', 'seed=-1: use an integer >= 0'),
    ('augment', '3', 'augment=3: use True or None'),
])
def test_cli_refuses_each_rule(tiny, capsys, name, value, message):
    rc, err = run_cli(capsys, 'folder', '-p', 'data_root', str(tiny), '-p', 'folds', '2', '-p', name, value)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith('mvgg19 run: error: ') and message in err[0], err


def test_cli_reports_every_problem_one_line_each(tiny, capsys):
    rc, err = run_cli(capsys, 'folder', '-p', 'data_root', str(tiny), '-p', 'epochs', '0', '-p', 'views', '0',
                      '-p', 'models', 'resnet50')
    assert rc == 2 and [e.split(': ')[2].split('=')[0] for e in err] == ['models', 'epochs', 'views']


def test_cli_dataset_name_and_output_dir(tiny, capsys, tmp_path):
    rc, err = run_cli(capsys, 'nosuch')
    assert rc == 2 and err == [f"mvgg19 run: error: dataset='nosuch': unknown dataset 'nosuch'; use one of "
                               f"{', '.join(__import__('mvgg19_nb.data', fromlist=['DATASETS']).DATASETS)}"]
    (tmp_path/'afile').write_text('x')
    rc, err = run_cli(capsys, 'folder', '-p', 'data_root', str(tiny), '-p', 'folds', '2', '-p', 'output_dir',
                      str(tmp_path/'afile'/'o'))
    assert (rc == 2 and len(err) == 1
            and f"'{tmp_path/'afile'}' is a file, not a folder; choose another output_dir" in err[0])


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='needs /proc (a folder nobody can create files in)')
def test_cli_output_dir_not_writable(tiny, capsys):
    rc, err = run_cli(capsys, 'folder', '-p', 'data_root', str(tiny), '-p', 'folds', '2', '-p', 'output_dir',
                      '/proc/mvgg19_out')
    assert rc == 2 and len(err) == 1 and "output_dir '/proc/mvgg19_out': cannot write in '/proc'" in err[0]


def test_cli_output_dir_without_permission(tiny, capsys, tmp_path):
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK): pytest.skip('running as a user who can write anywhere (root)')
        rc, err = run_cli(capsys, 'folder', '-p', 'data_root', str(tiny), '-p', 'folds', '2', '-p', 'output_dir',
                          str(ro/'out'))
        assert rc == 2 and len(err) == 1 and 'cannot write in' in err[0]
    finally: ro.chmod(0o755)


def test_cli_refuses_fast_without_keras_or_papermill(tmp_path):
    "The real command in a fresh process: one line, exit 2, neither Keras, TensorFlow nor papermill imported."
    ds = make_folder(tmp_path/'tiny', per_class=3)
    code = ("import sys; from mvgg19_nb.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'papermill') if m in sys.modules)); sys.exit(rc)")
    for args in (['-p', 'epochs', '0'], ['-p', 'models', '[resnet50]'], ['-p', 'batch_size', '0'],
                 ['-p', 'folds', '9']):
        r = subprocess.run([sys.executable, '-c', code, 'run', 'folder', '-p', 'data_root', str(ds), *args],
                           capture_output=True, text=True, cwd=tmp_path)
        # fast: nothing heavy imported (a wall-clock bound would depend on the machine and on its load)
        assert r.returncode == 2 and r.stdout.strip() == '[]', (r.stdout, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith('mvgg19 run: error: '), r.stderr
