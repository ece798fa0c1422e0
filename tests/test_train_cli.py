"""`mvgg19 train`, `export` and `predict` end to end on a small real subset: casting, 24 images, 48 px, 1 epoch."""
import os, subprocess, sys, tempfile, time
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mvgg19_nb import cli
from mvgg19_nb.classes import with_positive_class
from mvgg19_nb.data import DataNotFoundError, load_dataset
from mvgg19_nb.experiment import EXPERIMENT_DEFAULTS
from mvgg19_nb.images import file_digest

TRAIN = ['-p', 'max_images', '24', '-p', 'input_size', '48', '-p', 'epochs', '1', '-p', 'views', '1', '--no-progress']
PARITY = 1e-4  # the largest probability difference between the Keras model and its ONNX export (the bound)


def _casting():
    try: return load_dataset('casting')
    except DataNotFoundError as e: pytest.skip(f'casting data not found: {e}')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Train once, beside a results file of the same images and recipe (as `mvgg19 run` would have written it);
    the images to predict: six real ones, one smaller than the training images, one that is not an image."""
    ds = _casting()
    d = tmp_path_factory.mktemp('train')
    dirs = ['-p', 'cache_dir', str(d/'cache'), '-p', 'output_dir', str(d/'res')]
    sample, _ = with_positive_class(ds.sample(24, seed=0))
    from mvgg19_nb.features import content_digest
    params = {**EXPERIMENT_DEFAULTS, 'input_size': [48, 48], 'epochs': 1, 'views': 1, 'max_images': 24}
    stats = lambda acc: {'mean': {'accuracy': acc}, 'std': {'accuracy': 0.05}}
    (d/'res').mkdir()
    cli.write_json(d/'res'/'casting.json', dict(
        dataset='casting', classes=sample.classes, n_images=24, parameters={**params, 'folds': 3},
        cross_validation={'content': content_digest(sample.digests())}, metric_units='fraction',
        models={'mvgg19': stats(0.7), 'vgg19': stats(0.6)}, baselines={'majority': stats(0.58)}))
    t = time.perf_counter()
    assert cli.main(['train', 'casting', *TRAIN, *dirs, '--out', str(d/'m.keras')]) == 0
    train_s = time.perf_counter() - t
    (d/'in').mkdir()
    paths = [ds.paths[i] for k in (0, 1) for i in np.flatnonzero(ds.labels == k)[-3:]]  # the last 3 of each class
    from PIL import Image
    Image.open(paths[0]).resize((64, 80)).save(d/'in'/'small.png')
    (d/'in'/'broken.jpg').write_bytes(b'not an image')
    return dict(dir=d, dirs=dirs, paths=paths, inputs=[*paths, str(d/'in')], sample=sample, train_s=train_s)


def _csv(capsys, argv):
    "Run `mvgg19 predict` with `--out`; returns (status, table, standard error lines, standard output lines)."
    out = Path(argv[argv.index('--out') + 1])
    rc = cli.main(['predict', *argv, '--no-progress'])
    cap = capsys.readouterr()
    table = pd.read_csv(out, keep_default_na=False, na_values=['']) if out.exists() else None
    return rc, table, cap.err.splitlines(), cap.out.splitlines()


def test_train_writes_the_model_and_its_card(run, capsys):
    d, s = run['dir'], run['sample']
    card = json.loads((d/'m.json').read_text())
    assert (card['format'], card['model'], card['dataset'], card['classes'], card['positive_class']) == \
        ('mvgg19 model card', 'mvgg19', 'casting', ['ok', 'defective'], 'defective')
    assert (card['input']['size'], card['preprocessing'], card['weights'], card['weights_id']) == \
        ([48, 48], 'vgg', None, 'random-seed0')
    assert card['model_file'] == {'name': 'm.keras', 'sha1': file_digest(d/'m.keras'),
                                  'bytes': (d/'m.keras').stat().st_size}
    assert (card['n_images'], card['counts'], card['image_sizes']) == \
        (24, s.counts(), [{'size': [300, 300], 'images': 24}])
    assert {k: card['parameters'][k] for k in ('epochs', 'views', 'max_images', 'bn_stats')} == \
        {'epochs': 1, 'views': 1, 'max_images': 24, 'bn_stats': 'precise'}
    assert card['provenance']['wall_s'] > 0 and card['provenance']['packages']['keras']
    cv = card['cross_validation']  # the results file is of the same images and recipe: its metrics are in the card
    assert (cv['folds'], cv['models']['mvgg19']['mean'], cv['baselines']['majority']['mean']) == \
        (3, {'accuracy': 0.7}, {'accuracy': 0.58})
    print(f"train: {run['train_s']:.1f} s")


def test_train_mistakes_answer_in_a_line_before_tensorflow(tmp_path):
    "Unknown dataset, bad parameter, a results file in the card's place: one line, exit 2, neither Keras nor TF."
    code = ("import sys; from mvgg19_nb.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules)); sys.exit(rc)")
    (tmp_path/'casting.json').write_text('{"models": {}, "cross_validation": {}}')
    cases = [(['train', 'nosuch', '--out', str(tmp_path/'a.keras')], "dataset='nosuch': unknown dataset 'nosuch'"),
             (['train', 'casting', '-p', 'epochs', '0', '--out', str(tmp_path/'a.keras')],
              'epochs=0: use an integer >= 1'),
             (['train', 'casting', '--out', str(tmp_path/'a.h5')], "name a .keras file"),
             (['train', 'casting', '--force', '--out', str(tmp_path/'casting.keras')], 'is not a model card'),
             (['train', 'casting', '-p', 'freeze', 'finetune', '--out', str(tmp_path/'a.keras')],
              "needs freeze='frozen'")]
    for argv, says in cases:
        r = subprocess.run([sys.executable, '-c', code, *argv], capture_output=True, text=True, timeout=60)
        # before TensorFlow: neither Keras nor TensorFlow imported (a wall-clock bound would depend on the machine)
        assert r.returncode == 2 and r.stdout.strip() == '[]', (argv, r.stdout, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and says in r.stderr and r.stderr.startswith('mvgg19 train: error: ')
    assert not list(tmp_path.glob('*.keras'))


def test_predict_with_the_card_matches_the_python_api(run, capsys):
    from mvgg19_nb.predict import load_model, predict
    d = run['dir']
    rc, cli_df, err, out = _csv(capsys, [str(d/'m.keras'), *run['inputs'], '--out', str(d/'keras.csv')])
    assert rc == 0
    assert list(cli_df.columns) == ['path', 'predicted', 'confidence', 'ok', 'defective', 'p_positive', 'error',
                                   'note']
    assert err[0] == "p_positive: the probability of 'defective', the positive class (model card)"
    resized = [l for l in err if l.startswith('resized')]  # the smaller image: resized as in training, said once
    assert resized == [f"resized 1 of 8 images to 48x48 (bilinear, as in training): a size the training images did not "
                       f"have (300x300), e.g. {d/'in'/'small.png'} (80x64); check that they show the parts at the "
                       "training images' scale"]
    assert len(err) == 2 and out == [f"wrote 7 predictions and 1 failure to {d/'keras.csv'}"]
    bad = cli_df[cli_df.path.str.endswith('broken.jpg')].iloc[0]  # reported with its reason; the others predicted
    assert bad.error.startswith('not an image file') and pd.isna(bad.predicted) and pd.isna(bad.p_positive)
    model, classes = load_model(d/'m.keras')
    api = predict(model, list(cli_df.path), on_error='skip', progress=False)
    assert cli_df.predicted.fillna('').tolist() == api.predicted.fillna('').tolist()
    np.testing.assert_allclose(cli_df[classes].values, api[classes].values, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(cli_df.p_positive.values, cli_df.defective.values)


def test_threshold_decides_for_the_positive_class(run, capsys):
    d = run['dir']
    rc, df, err, _ = _csv(capsys, [str(d/'m.keras'), *run['paths'], '--threshold', '0.999', '--out', str(d/'t.csv')])
    assert rc == 0 and "predicted 'defective' where p_positive >= 0.999" in err[0]
    assert (df.predicted == np.where(df.p_positive >= 0.999, 'defective', 'ok')).all()
    assert np.allclose(df.confidence, np.where(df.p_positive >= 0.999, df.p_positive, df.ok))
    assert cli.main(['predict', str(d/'m.keras'), run['paths'][0], '--threshold', '1.5']) == 2
    assert capsys.readouterr().err.splitlines() == [
        'mvgg19 predict: error: --threshold 1.5: use a number from 0 to 1, the positive class\'s probability from '
        'which an image is called positive']


def test_export_onnx_then_predict_without_tensorflow(run, capsys):
    d = run['dir']
    t = time.perf_counter()
    assert cli.main(['export', str(d/'m.keras'), '--format', 'onnx', '--out', str(d/'m.onnx')]) == 0
    export_s = time.perf_counter() - t
    out = capsys.readouterr().out.splitlines()
    line = next(l for l in out if l.startswith('largest probability difference'))
    assert line.endswith('on 8 images of casting (the dataset the model card names)'), line
    entry = json.loads((d/'m.json').read_text())['exports'][-1]  # m.onnx beside m.keras: one card, with the export
    assert (entry['format'], entry['file'], entry['sha1']) == ('onnx', 'm.onnx', file_digest(d/'m.onnx'))
    assert 0 <= entry['max_probability_difference'] <= PARITY
    # predict with the ONNX file in a fresh process: the same table, and neither TensorFlow nor Keras imported
    code = ("import sys; from mvgg19_nb.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules)); sys.exit(rc)")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-c', code, 'predict', str(d/'m.onnx'), *run['inputs'], '--no-progress',
                        '--out', str(d/'onnx.csv')], capture_output=True, text=True, timeout=120)
    onnx_s = time.perf_counter() - t
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == '[]', (r.stdout, r.stderr)
    if not (d/'keras.csv').exists():
        assert cli.main(['predict', str(d/'m.keras'), *run['inputs'], '--no-progress',
                         '--out', str(d/'keras.csv')]) == 0
    k, o = (pd.read_csv(d/f, keep_default_na=False, na_values=['']) for f in ('keras.csv', 'onnx.csv'))
    assert list(o.columns) == list(k.columns) and o.path.tolist() == k.path.tolist()
    assert o.error.fillna('').tolist() == k.error.fillna('').tolist()
    diff = np.nanmax(np.abs(o[['ok', 'defective', 'p_positive']].values - k[['ok', 'defective', 'p_positive']].values))
    assert diff <= PARITY, diff
    decided = np.abs(k.p_positive.values - 0.5) > PARITY  # a class can only flip where the two are that close to 0.5
    assert (o.predicted[decided] == k.predicted[decided]).all()
    print(f"export {export_s:.1f} s (difference {entry['max_probability_difference']:.1e}), ONNX predict process "
          f"{onnx_s:.1f} s, ONNX vs Keras on {len(k)} files: {diff:.1e}")


@pytest.mark.parametrize('name,says', [
    ('missing.keras', "model file '{p}' not found"), ('missing.onnx', "model file '{p}' not found"),
    ('text.onnx', 'not an ONNX model file: {p} (Protobuf parsing failed.)'),
    ('notes.txt', 'not a model file: {p} (the name must end in .keras, .h5 or .onnx, not .txt)'),
    ('text.keras', 'not a Keras model file: {p} (not a .keras archive')])
def test_predict_bad_model_files_in_one_line(run, tmp_path, capsys, name, says):
    for f in ('text.onnx', 'notes.txt', 'text.keras'): (tmp_path/f).write_text('hello')
    p = tmp_path/name
    assert cli.main(['predict', str(p), run['paths'][0]]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('mvgg19 predict: error: ' + says.format(p=p)), err


def test_export_mistakes_in_one_line(run, tmp_path, capsys):
    d = run['dir']
    cases = [(['export', str(tmp_path/'missing.keras'), '--format', 'onnx', '--out', str(tmp_path/'a.onnx')],
              f"model file '{tmp_path/'missing.keras'}' not found"),
             (['export', str(d/'m.keras'), '--format', 'onnx', '--out', str(tmp_path/'a.keras')], 'name an .onnx file'),
             (['export', str(d/'m.keras'), '--format', 'savedmodel', '--out', str(tmp_path/'a.onnx')], 'is a folder'),
             (['export', str(d/'m.keras'), '--format', 'onnx', '--out', str(tmp_path/'old.onnx')],
              f"--out {str(tmp_path/'old.onnx')!r} exists; pass --force to overwrite it")]
    (tmp_path/'old.onnx').write_text('an earlier export')
    for argv, says in cases:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and says in err[0], (argv, err)


def test_train_force_overwrites_and_the_old_export_is_refused(run, capsys):
    "Retraining over m.keras needs --force; the new card no longer lists m.onnx, which predict then refuses."
    d = run['dir']
    assert cli.main(['train', 'casting', *TRAIN, *run['dirs'], '--out', str(d/'m.keras')]) == 2
    assert capsys.readouterr().err.splitlines() == [f"mvgg19 train: error: --out {str(d/'m.keras')!r} exists; pass "
                                                    "--force to overwrite it, or choose another --out"]
    before = (d/'m.keras').stat().st_mtime_ns
    assert cli.main(['train', 'casting', *TRAIN, *run['dirs'], '--out', str(d/'m.keras'), '--force']) == 0
    card = json.loads((d/'m.json').read_text())
    assert (d/'m.keras').stat().st_mtime_ns > before and card['model_file']['sha1'] == file_digest(d/'m.keras')
    assert card['exports'] == [] and not list(d.glob('.m*.tmp*'))
    if (d/'m.onnx').exists():
        assert cli.main(['predict', str(d/'m.onnx'), run['paths'][0]]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"describes another file than {d/'m.onnx'}" in err[0]
