"""Data, parameters and the Python API at their edges: the positive-class guess reads negations and good-part words
(and refuses when the names do not tell), a file given as a dataset folder, model, augmentation, `load_dataset`,
`cross_validate` and `train_final_model` parameters refused in one line before any download, file access or work."""
import os, tempfile
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import inspect
from pathlib import Path

import numpy as np
import pytest

from mvgg19_nb import cli
from mvgg19_nb.classes import with_positive_class
from mvgg19_nb.data import DataError, Dataset, load_dataset, load_folder
from mvgg19_nb.params import ParameterError, augment_defaults, check_params
from fixtures import make_folder


def snapshot(root) -> dict:
    "Every file under `root` with its bytes and mtime: a test compares it after the command (nothing lost)."
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(Path(root).rglob('*')) if p.is_file()}


def one_error(capsys, cmd: str) -> str:
    "The single stderr line of a refused command, without its `mvgg19 <cmd>: error: ` prefix."
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f'mvgg19 {cmd}: error: '), err
    return err[0][len(f'mvgg19 {cmd}: error: '):]


@pytest.fixture
def no_papermill(monkeypatch):
    def started(*a, **k): raise AssertionError('papermill was started despite a bad parameter')
    monkeypatch.setattr(cli, 'run_experiment', started)


# --- the positive class ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('classes, positive, why', [
    (('defect_free', 'scratch'), 'scratch', "'scratch' reads as a defect, 'defect_free' reads as a good part"),
    (('crack', 'crack_free'), 'crack', "'crack' reads as a defect, 'crack_free' reads as a good part"),
    (('ok part', 'défaut ✗'), 'défaut ✗', "'défaut ✗' reads as a defect, 'ok part' reads as a good part (ok)"),
    (('no_crack', 'crack'), 'crack', "'no_crack' reads as a good part"),
    (('good', 'not_good'), 'not_good', "'not_good' reads as a defect, 'good' reads as a good part"),
    (('NG', 'OK'), 'NG', "'NG' reads as a defect, 'OK' reads as a good part"),
])
def test_positive_class_reads_negations_and_good_part_words(tmp_path, classes, positive, why):
    ds = load_folder(make_folder(tmp_path/'d', classes=classes, per_class=2))
    out, how = with_positive_class(ds)
    assert out.classes[1] == positive and out.meta['positive'] == positive
    assert how.startswith('guessed from the class names: ') and why in how, how
    assert out.counts()[positive] == 2 and sorted(out.paths) == sorted(ds.paths)
    assert [out.classes[k] for k in out.labels] == [ds.classes[k] for k in ds.labels]  # every image keeps its class


@pytest.mark.parametrize('classes, why', [(('a', 'b'), 'neither reads'), (('crack', 'scratch'), 'both read'),
                                          (('ok', 'good'), 'neither reads')])
def test_positive_class_refused_when_the_names_do_not_tell(tmp_path, classes, why):
    ds = load_folder(make_folder(tmp_path/'d', classes=classes, per_class=2))
    with pytest.raises(DataError) as e: with_positive_class(ds)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and f"({why} as a defect)" in msg, msg
    assert f"class names {ds.classes[0]!r} and {ds.classes[1]!r}" in msg and '-p positive_class NAME' in msg
    assert with_positive_class(ds, classes[0])[0].classes[1] == classes[0]  # given: no guess needed


def test_builtin_datasets_keep_their_published_positive_class():
    for name, classes in [('casting', ['ok', 'defective']), ('bridge_dbcc', ['no_crack', 'crack']),
                          ('elpv', ['ok', 'defective']), ('sdnet2018', ['uncracked', 'cracked'])]:
        ds = Dataset(name, ['0.png', '1.png'], [0, 1], classes, {'positive': classes[1]})
        out, how = with_positive_class(ds)
        assert out is ds and how == f'the defect class of the {name} dataset, as published'
        stripped = Dataset(name, ['0.png', '1.png'], [0, 1], classes)  # the guess agrees with the published class
        assert with_positive_class(stripped)[0].classes == classes


def test_train_refuses_unclear_class_names_before_any_work(tmp_path, capsys):
    data = make_folder(tmp_path/'ab', classes=('a', 'b'), per_class=3)
    before = snapshot(tmp_path)
    rc = cli.main(['train', 'folder', '-p', 'data_root', str(data), '--out', str(tmp_path/'m.keras'), '--no-progress'])
    line = one_error(capsys, 'train')
    assert rc == 2 and line == ("positive_class=None: folder: cannot tell the positive (defective) class from the class "
                                "names 'a' and 'b' (neither reads as a defect); pass positive_class=NAME (mvgg19: -p "
                                "positive_class NAME) naming one of them")
    assert snapshot(tmp_path) == before  # no model, no card


def test_run_refuses_unclear_class_names_before_papermill(tmp_path, capsys, no_papermill):
    data = make_folder(tmp_path/'ab', classes=('crack', 'scratch'), per_class=3)
    rc = cli.main(['run', 'folder', '-p', 'data_root', str(data), '-p', 'folds', '2', '-p', 'output_dir',
                   str(tmp_path/'res')])
    assert rc == 2 and '(both read as a defect); pass positive_class=NAME' in one_error(capsys, 'run')
    assert not (tmp_path/'res').exists()


def test_train_names_the_guessed_class_and_why(tmp_path, capsys, monkeypatch):
    "`train` on defect_free/scratch trains for 'scratch' and says why (training itself stubbed: only the choice)."
    import mvgg19_nb.train
    def stop(ds, *a, **k): raise cli.CLIError(f'stopped before training; classes {ds.classes}')
    monkeypatch.setattr(mvgg19_nb.train, 'train_final_model', stop)
    data = make_folder(tmp_path/'d', classes=('defect_free', 'scratch'), per_class=3)
    rc = cli.main(['train', 'folder', '-p', 'data_root', str(data), '--out', str(tmp_path/'m.keras'), '--no-progress'])
    out, err = capsys.readouterr()
    assert rc == 2 and err.strip() == "mvgg19 train: error: stopped before training; classes ['defect_free', 'scratch']"
    assert ("folder: 6 images (defect_free 3, scratch 3); positive class 'scratch' (guessed from the class names: "
            "'scratch' reads as a defect, 'defect_free' reads as a good part)") in out


# --- a file where a dataset folder is expected ---------------------------------------------------------------------

def test_run_with_a_file_as_data_root(tmp_path, capsys, no_papermill):
    (tmp_path/'afile').write_text('not a dataset')
    before = snapshot(tmp_path)
    rc = cli.main(['run', 'folder', '-p', 'data_root', str(tmp_path/'afile')])
    assert rc == 2 and one_error(capsys, 'run') == (f"folder: root '{tmp_path/'afile'}' is a file, not a folder; "
                                                    "pass the folder holding one sub-folder per class as root=")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('name', ['casting', 'magnetic_tile', 'bridge_dbcc', 'gc10det', 'sdnet2018', 'itodd'])
def test_builtin_loaders_with_a_file_as_root(tmp_path, name):
    (tmp_path/'afile').write_text('x')
    with pytest.raises(DataError, match=f"^{name}: root '{tmp_path/'afile'}' is a file, not a folder; pass the "
                                        "dataset folder as root=$"):
        load_dataset(name, root=tmp_path/'afile')


def test_manifest_paths_of_the_wrong_kind(tmp_path):
    (tmp_path/'list.csv').write_text('path,label\n')
    with pytest.raises(DataError, match='is a folder, not a CSV file'): load_dataset('manifest', tmp_path)
    with pytest.raises(DataError, match="image root .*list.csv' is not a folder"):
        from mvgg19_nb.data import load_manifest
        load_manifest(tmp_path/'list.csv', root=tmp_path/'list.csv')


# --- the model's parameters --------------------------------------------------------------------------------------

@pytest.fixture
def nothing_built(monkeypatch):
    "No ImageNet download and no VGG19: a check that lets a bad parameter through fails the test."
    import keras
    def built(*a, **k): raise AssertionError('a download or a layer was started despite a bad parameter')
    monkeypatch.setattr(keras.utils, 'get_file', built)
    monkeypatch.setattr(keras.applications, 'VGG19', built)


@pytest.mark.parametrize('kwargs, says', [
    (dict(num_classes='3', weights=None), "num_classes='3': use an integer >= 2"),
    (dict(num_classes=2.5, weights=None), 'num_classes=2.5: use an integer >= 2'),
    (dict(num_classes=2.5), 'num_classes=2.5: use an integer >= 2'),  # the default weights: no download first
    (dict(num_classes=True), 'num_classes=True: use an integer >= 2, not a truth value'),
    (dict(num_classes=1), 'num_classes=1: use an integer >= 2'),
    (dict(num_classes=2, input_size=(16, 16)), "input_size=[16, 16]: use two integers >= 32 (VGG19's minimum)"),
    (dict(num_classes=2, input_size='100x100'), "input_size='100x100': pass (height, width) in pixels"),
    (dict(num_classes=2, weights='ImageNet'), "weights file ImageNet not found"),
    (dict(num_classes=2, dropout=1.0), 'dropout=1.0: use a number with 0 <= dropout < 1'),
    (dict(num_classes=2, bd_dropout=-0.1), 'bd_dropout=-0.1: use a number with 0 <= bd_dropout < 1'),
    (dict(num_classes=2, dense_units=0), 'dense_units=0: use an integer >= 1'),
    (dict(num_classes=2, dense_units=2.5), 'dense_units=2.5: use an integer >= 1'),
    (dict(num_classes=2, dense_activation='rleu'), "dense_activation='rleu': use a Keras activation"),
    (dict(num_classes=2, branches=['block9_pool']), "branches=['block9_pool']: not VGG19 layers: 'block9_pool'"),
    (dict(num_classes=2, branches='block3_pool'), "branches='block3_pool': use a list of distinct VGG19 layers"),
    (dict(num_classes=2, trunk='block3_pool'), "'block4_pool' not before the trunk 'block3_pool'"),
    (dict(num_classes=2, freeze='frozn'), "freeze='frozn': use one of 'frozen', 'finetune', 'scratch'"),
    (dict(num_classes=2, finetune_from='block6'), "finetune_from='block6': use one of 'block1'"),
    (dict(num_classes=2, preprocessing='caffe'), "preprocessing='caffe': use one of 'vgg', 'unit', 'unit_bgr'"),
    (dict(num_classes=2, seed=-1), 'seed=-1: use an integer >= 0'),
    (dict(num_classes=2, standardize_trunk='yes'), "standardize_trunk='yes': use True or False"),
    (dict(num_classes=2, units=3), 'units=3: not a parameter of the models; use one of dense_units'),
])
def test_model_parameters_refused_before_any_download_or_layer(nothing_built, kwargs, says):
    from mvgg19_nb.model import build_mvgg19
    with pytest.raises((ValueError, FileNotFoundError)) as e: build_mvgg19(**kwargs)  # a missing weights file: not found
    assert any(line.startswith(says) or says in line for line in str(e.value).splitlines()), str(e.value)
    assert len(str(e.value).splitlines()) == 1, str(e.value)


def test_every_model_parameter_problem_at_once(nothing_built):
    from mvgg19_nb.model import build_model, build_vgg19
    with pytest.raises(ParameterError) as e: build_vgg19('3', (16, 16), dropout=2, dense_units=0)
    assert [p.split('=')[0] for p in e.value.problems] == ['num_classes', 'input_size', 'dropout', 'dense_units']
    with pytest.raises(ParameterError, match=r"^name='resnet': unknown model; use one of mvgg19, vgg19$"):
        build_model('resnet', 2)
    with pytest.raises(ParameterError, match='^num_classes=2.5: use an integer >= 2$'): build_model('vgg19', 2.5)


# --- augment -----------------------------------------------------------------------------------------------------

def test_run_refuses_unknown_augment_settings_before_any_work(tmp_path, capsys, no_papermill):
    rc = cli.main(['run', 'casting', '-p', 'augment', '{bogus: 1}', '-p', 'output_dir', str(tmp_path/'res')])
    assert rc == 2 and one_error(capsys, 'run') == ("augment={'bogus': 1}: unknown setting 'bogus'; use noise_std, "
                                                    "rotation, flip, height_shift, width_shift, fill_mode")
    assert not (tmp_path/'res').exists()


@pytest.mark.parametrize('settings, says', [
    ({'noise_std': 300}, 'noise_std=300: use a number from 0 to 255'),
    ({'rotation': '0.1'}, "rotation='0.1': use a number from 0 to 1"),
    ({'flip': 'both'}, "flip='both': use None or one of 'horizontal', 'vertical', 'horizontal_and_vertical'"),
    ({'height_shift': 1.5}, 'height_shift=1.5: use a number from 0 to 1'),
    ({'width_shift': True}, 'width_shift=True: use a number from 0 to 1'),
    ({'fill_mode': 'mirror'}, "fill_mode='mirror': use one of 'reflect', 'wrap', 'constant', 'nearest'"),
    ({'seed': 3}, "unknown setting 'seed'; use noise_std"),
])
def test_augment_values_checked(settings, says):
    with pytest.raises(ParameterError) as e: check_params(augment=settings)
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(f"augment={settings!r}: {says}")


def test_augment_settings_are_the_augmenters():
    "The names the rule allows are build_augmenter's settings (seed and name are set by the caller), read without Keras."
    import subprocess, sys
    from mvgg19_nb.augment import AUGMENT_DEFAULTS, build_augmenter
    assert augment_defaults() == AUGMENT_DEFAULTS
    params = inspect.signature(build_augmenter).parameters
    assert [*AUGMENT_DEFAULTS, 'seed', 'name'] == list(params)
    assert {k: params[k].default for k in AUGMENT_DEFAULTS} == AUGMENT_DEFAULTS
    check_params(augment={k: v for k, v in AUGMENT_DEFAULTS.items()})  # the defaults pass their own checks
    code = ("import sys; from mvgg19_nb.params import check_params; check_params(augment={'noise_std': 1}); "
            "print('keras' in sys.modules)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, 'False'), r.stderr[-2000:]


# --- load_dataset, cross_validate, train_final_model -------------------------------------------------------------

@pytest.mark.parametrize('args, kwargs, says', [
    ((3,), {}, 'unknown dataset 3; known datasets: casting'),
    (('folder',), dict(root=5), 'folder: root=5: pass the path'),
    (('casting',), dict(root=['x']), "casting: root=['x']: pass the path"),
    (('casting',), dict(splt='train'), 'casting: unknown argument splt of load_casting; it takes split'),
    (('elpv',), dict(label='binary', x=1), 'elpv: unknown arguments label, x of load_elpv; it takes labels'),
])
def test_load_dataset_arguments(monkeypatch, args, kwargs, says):
    looked = []
    monkeypatch.setattr(os.path, 'isdir', lambda p: looked.append(p) or False)  # no file is looked at first
    with pytest.raises(DataError) as e: load_dataset(*args, **kwargs)
    assert says in str(e.value) and len(str(e.value).splitlines()) == 1 and not looked, (str(e.value), looked)


TOY = Dataset('toy', [f'/nowhere/{i}.png' for i in range(12)], [0] * 6 + [1] * 6, ['ok', 'defect'])


@pytest.fixture
def no_work(monkeypatch):
    "No digest, image or feature: a check that lets a bad parameter through fails the test."
    import mvgg19_nb.train as train
    def worked(*a, **k): raise AssertionError('work started despite a bad parameter')
    monkeypatch.setattr(Dataset, 'digests', worked)
    monkeypatch.setattr(train, 'extract_features', worked)
    monkeypatch.setattr(train, 'build_model', worked)
    return train


@pytest.mark.parametrize('bad, says', [
    (dict(folds='3'), "folds='3': use an integer >= 2"),
    (dict(epochs=-1), 'epochs=-1: use an integer >= 1'),
    (dict(input_size=(16, 16)), 'input_size=(16, 16): use two integers >= 32'),
    (dict(augment={'bogus': 1}), "augment={'bogus': 1}: unknown setting 'bogus'"),
    (dict(model_kwargs={'bogus': 1}), "model_kwargs={'bogus': 1}: use None or a dict of dense_units"),
    (dict(model_kwargs={'dropout': 1.5}), 'dropout=1.5: use a number with 0 <= dropout < 1'),
    (dict(model_kwargs={'branches': ['block5_pool']}), "'block5_pool' not before the trunk 'block5_pool'"),
    (dict(cached='yes'), "cached='yes': use None, True or False"),
    (dict(heads='both'), "heads='both': use one of"),
    (dict(out_dir=5), 'out_dir=5: use a folder path'),
    (dict(cache_dir=3), 'cache_dir=3: use a folder path'),
])
def test_cross_validate_refuses_before_any_work(no_work, tmp_path, bad, says):
    args = dict(models=['vgg19'], folds=3, epochs=1, weights=None, input_size=(32, 32), out_dir=tmp_path/'runs',
                progress=False)
    with pytest.raises(ParameterError) as e: no_work.cross_validate(TOY, **{**args, **bad})
    assert len(e.value.problems) == 1 and says in e.value.problems[0], e.value.problems
    assert not list(tmp_path.iterdir())  # no run folder, no cache


@pytest.mark.parametrize('where', ['out_dir', 'cache_dir'])
def test_cross_validate_refuses_a_file_as_a_folder(no_work, tmp_path, where):
    (tmp_path/'afile').write_text('keep me')
    before = snapshot(tmp_path)
    with pytest.raises(ParameterError) as e:
        no_work.cross_validate(TOY, models=['vgg19'], folds=3, weights=None, progress=False,
                               **{'out_dir': tmp_path/'runs', where: tmp_path/'afile'/'sub'})
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(f'{where}=')
    assert e.value.problems[0].endswith(f"'{tmp_path/'afile'}' is a file, not a folder; choose another")
    assert snapshot(tmp_path) == before


def test_cross_validate_needs_a_dataset(no_work):
    with pytest.raises(ParameterError, match=r"^ds='casting': pass a Dataset \(mvgg19_nb.data.load_dataset\)$"):
        no_work.cross_validate('casting')


@pytest.mark.parametrize('bad, says', [
    (dict(model=['vgg19', 'mvgg19']), "model=['vgg19', 'mvgg19']: name one model"),
    (dict(model='resnet'), "models='resnet': unknown model 'resnet'"),
    (dict(epochs=0), 'epochs=0: use an integer >= 1'),
    (dict(views=0), 'views=0: use an integer >= 1'),
    (dict(cache_dir=7), 'cache_dir=7: use a folder path'),
    (dict(model_kwargs={'finetune_from': 'block4'}), "model_kwargs={'finetune_from': 'block4'}: use None or a dict"),
    (dict(model_kwargs={'dense_units': '8'}), "dense_units='8': use an integer >= 1"),
])
def test_train_final_model_refuses_before_any_work(no_work, bad, says):
    with pytest.raises(ParameterError) as e: no_work.train_final_model(TOY, **{'weights': None, **bad})
    assert len(e.value.problems) == 1 and says in e.value.problems[0], e.value.problems
