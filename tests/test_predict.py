"Saving, loading, predicting and exporting shipped models (random backbones: no ImageNet download here)."
import os, json, tempfile
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
import numpy as np, pandas as pd, pytest, keras
from mvgg19_nb.model import build_mvgg19
from mvgg19_nb.features import feature_extractor, build_cached_head, transfer_head
from mvgg19_nb.images import find_images, write_layout
from mvgg19_nb.predict import mask_files, select_images
from mvgg19_nb.model import ClassNames, with_classes, classes_of
from mvgg19_nb.predict import (save_model, load_model, predict, predict_files,
                               export_saved_model, export_onnx)
from mvgg19_nb.params import ParameterError
from fixtures import make_magnetic_tile

CLASSES = ['Blowhole', 'Crack', 'Free']
# a small VGG19 cut: fast to build and export
SMALL = dict(branches=('block2_pool',), trunk='block3_pool', dense_units=8)


@pytest.fixture(scope='module')
def model():
    return with_classes(build_mvgg19(3, (32, 32), weights=None, seed=3, **SMALL), CLASSES)


@pytest.fixture(scope='module')
def images():
    return np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype('uint8')


def test_round_trip_keeps_class_names(model, images, tmp_path):
    path = save_model(model, tmp_path/'m.keras')
    loaded, classes = load_model(path)
    assert classes == CLASSES and classes_of(loaded) == CLASSES
    assert 'predictions' in [l.name for l in loaded.layers] and isinstance(loaded.layers[-1], ClassNames)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match='no class names'):
        save_model(build_mvgg19(2, (32, 32), weights=None, **SMALL), tmp_path/'x.keras')
    with pytest.raises(ValueError, match='2 class names'):
        save_model(model, tmp_path/'y.keras', ['a', 'b'])


def test_cached_head_on_its_backbone_survives_save_load(images, tmp_path):
    ext, layout = feature_extractor((32, 32), weights=None, branches=SMALL['branches'], trunk=SMALL['trunk'], seed=5)
    feats = ext.predict(images, verbose=0)
    head = build_cached_head('mvgg19', 3, layout, dense_units=8)
    head.compile('adam', 'sparse_categorical_crossentropy')
    head.fit(feats, np.arange(4) % 3, epochs=2, batch_size=2, verbose=0)  # moves the BatchNorm statistics
    full = transfer_head(head, build_mvgg19(3, (32, 32), weights=None, seed=5, **SMALL))
    loaded, classes = load_model(save_model(full, tmp_path/'shipped.keras', CLASSES))
    assert classes == CLASSES
    np.testing.assert_allclose(loaded.predict(images, verbose=0), head.predict(feats, verbose=0), atol=1e-4)


def test_predict_any_mode_and_size_from_a_folder(model, tmp_path):
    files = {'grey.png': ('L', (70, 33)), 'alpha.png': ('RGBA', (32, 32)), 'palette.png': ('P', (45, 45)),
             'deep/cam16.tif': ('I;16', (61, 37)), 'deep/er/photo.jpg': ('RGB', (32, 80)), 'notes.txt': b'not an image'}
    root = write_layout(tmp_path/'in', files)
    (root/'broken.bmp').write_bytes(b'BMgarbage')
    path = save_model(model, tmp_path/'m.keras')
    (tmp_path/'out').mkdir()  # predict creates no folders
    df = predict_files(path, root, out=tmp_path/'out'/'results.csv', batch_size=2, progress=False)
    assert len(df) == 6 and not any(p.endswith('notes.txt') for p in df.path)  # 5 images + the broken one; text ignored
    assert list(df.columns) == ['path', 'predicted', 'confidence', *CLASSES, 'error', 'note']
    good = df[df.error == '']
    assert len(good) == 5 and set(good.predicted) <= set(CLASSES)
    np.testing.assert_allclose(good[CLASSES].sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(good.confidence, good[CLASSES].max(axis=1), atol=1e-7)
    bad = df[df.path.str.endswith('broken.bmp')].iloc[0]
    assert bad.error and pd.isna(bad.predicted) and np.isnan(bad.Crack)
    csv = pd.read_csv(tmp_path/'out'/'results.csv')
    assert csv.columns.tolist() == df.columns.tolist() and len(csv) == 6
    # the same answers for the same files through predict(), any batch size, given as paths
    again = predict(model, list(good.path), batch_size=3, progress=False)
    np.testing.assert_allclose(again[CLASSES].values, good[CLASSES].values, atol=1e-5)
    with pytest.raises(FileNotFoundError, match='no such file'):
        find_images([tmp_path/'missing'])


def test_files_that_are_not_a_keras_model(model, tmp_path):
    (tmp_path/'text.keras').write_text('not a model'); (tmp_path/'text.h5').write_text('not a model')
    (tmp_path/'d').mkdir()
    for bad, why in [('text.keras', 'not a .keras archive'), ('text.h5', 'not an HDF5 file'), ('d', 'a folder')]:
        with pytest.raises(ParameterError, match=f'not a Keras model file: .*{bad} \\({why}'): load_model(tmp_path/bad)
    with pytest.raises(FileNotFoundError, match='not found'): load_model(tmp_path/'missing.keras')
    with pytest.raises(ParameterError, match='not a Keras model file'): predict_files(tmp_path/'text.keras', tmp_path)


def test_batch_size_checked(model, images):
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ParameterError, match=f'batch_size={bad!r}: use an integer >= 1'):
            predict(model, images, batch_size=bad, progress=False)


def test_magnetic_tile_masks_are_skipped(model, tmp_path):
    root = make_magnetic_tile(tmp_path/'mt', {'Blowhole': 2, 'Free': 3})
    notes = []
    df = predict_files(model, root/'MT_Free', progress=False, log=notes.append)
    assert len(df) == 3 and all(p.endswith('.jpg') for p in df.path) and (df.error == '').all()
    assert notes[0] == 'skipped 3 files: 3 magnetic tile ground-truth masks'  # (then: resized to the input size)
    pngs = sorted(str(p) for p in root.rglob('*.png'))
    assert mask_files(pngs + sorted(str(p) for p in root.rglob('*.jpg')), log=notes.append) == set(pngs)
    # masks kept if asked
    assert len(predict_files(model, root, progress=False, skip_masks=False, log=notes.append)) == 10


def test_exclude_globs(model, tmp_path):
    root = make_magnetic_tile(tmp_path/'mt', {'Blowhole': 2, 'Free': 3})
    notes = []
    assert len(select_images(root, exclude=['MT_Free/*'], log=notes.append)) == 2
    assert notes == ["skipped 8 files: 2 magnetic tile ground-truth masks and 6 matching 'MT_Free/*'"]
    assert (select_images(root, exclude='*.jpg', skip_masks=False, log=notes.append)
            == sorted(map(str, root.rglob('*.png'))))
    with pytest.raises(FileNotFoundError, match='no image files'):
        predict_files(model, root, exclude=['*'], log=notes.append)


def test_predict_arrays_resized_like_files(model, images):
    big = np.kron(images[0], np.ones((2, 2, 1), np.uint8))  # 64x64: resized to 32x32
    df = predict(model, [images[0], big, images[0][..., 0]], progress=False)
    assert df.path.isna().all() and len(df) == 3
    assert np.abs(df.loc[0, CLASSES].values - df.loc[1, CLASSES].values).max() < 0.2  # nearly the same picture


@pytest.mark.skipif(keras.backend.backend() != 'tensorflow', reason='SavedModel export needs the tensorflow backend')
def test_saved_model_export_gives_same_probabilities(model, images, tmp_path):
    import tensorflow as tf
    path = export_saved_model(model, tmp_path/'sm')
    reloaded = tf.saved_model.load(str(path))
    x = images.astype('float32')
    np.testing.assert_allclose(reloaded.serve(tf.constant(x)).numpy(), model.predict(x, verbose=0), atol=1e-5)
    assert json.loads((path/'classes.json').read_text()) == CLASSES


@pytest.mark.skipif(keras.backend.backend() != 'tensorflow', reason='ONNX export goes through tensorflow')
def test_onnx_export_gives_same_probabilities(model, images, tmp_path):
    pytest.importorskip('tf2onnx', reason='tf2onnx not installed (pip install tf2onnx onnx)')
    ort = pytest.importorskip('onnxruntime', reason='onnxruntime not installed (pip install onnxruntime)')
    path = export_onnx(model, tmp_path/'m.onnx')
    sess = ort.InferenceSession(str(path))
    x = images.astype('float32')
    out = sess.run(['probabilities'], {'image': x})[0]
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-5)
    assert json.loads(sess.get_modelmeta().custom_metadata_map['classes']) == CLASSES


def test_export_without_tf2onnx_says_how_to_install(model, tmp_path, monkeypatch):
    import builtins
    real = builtins.__import__
    def no_tf2onnx(name, *a, **k):
        if name == 'tf2onnx': raise ImportError('No module named tf2onnx')
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, '__import__', no_tf2onnx)
    if keras.backend.backend() != 'tensorflow':
        with pytest.raises(RuntimeError, match='tensorflow backend'): export_onnx(model, tmp_path/'m.onnx')
    else:
        with pytest.raises(ImportError, match='pip install tf2onnx onnx'): export_onnx(model, tmp_path/'m.onnx')


def test_export_needs_tensorflow_backend(model, tmp_path, monkeypatch):
    monkeypatch.setattr(keras.backend, 'backend', lambda: 'jax')
    with pytest.raises(RuntimeError, match='KERAS_BACKEND=tensorflow'):
        export_saved_model(model, tmp_path/'sm')
