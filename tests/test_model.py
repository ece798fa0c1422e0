"""Model construction: widths, names, weights options and their errors, freeze policy.
weights=None or a file the test writes: no download here."""
import os, tempfile
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
import warnings
import numpy as np, pytest, keras
from mvgg19_nb.model import (VGG19_NOTOP_URL, WeightsUnavailable, build_backbone, build_model, build_mvgg19,
                             build_vgg19, check_weights, model_input_size)
from mvgg19_nb.features import feature_extractor

CONV = [f'block{b}_conv{i}' for b, n in zip(range(1, 6), (2, 2, 4, 4, 4)) for i in range(1, n + 1)]
HEAD = ['fusion', 'head_dense', 'head_bn', 'head_dropout', 'predictions']

@pytest.mark.parametrize('num_classes', [2, 6])
@pytest.mark.parametrize('size', [(100, 100), (100, 205)])
def test_mvgg19_shapes_and_names(num_classes, size):
    m = build_mvgg19(num_classes, size, weights=None)
    names = [l.name for l in m.layers]
    assert m.input.shape[1:] == (*size, 3)
    assert m.get_layer('fusion').output.shape[-1] == 128 + 256 + 512 + 512
    assert m.output.shape[-1] == num_classes
    for name in CONV + [f'block{b}_pool' for b in range(1, 6)] + HEAD: assert name in names
    for b in (2, 3, 4):
        for part in ('bn', 'dropout', 'gap'): assert f'block{b}_bd_{part}' in names
        assert m.get_layer(f'block{b}_bd_bn').input is m.get_layer(f'block{b}_pool').output
    assert m.get_layer('trunk_gap').input is m.get_layer('block5_pool').output
    assert not any(m.get_layer(n).trainable for n in CONV)
    p = m.predict(np.random.default_rng(0).integers(0, 256, (3, *size, 3)).astype('uint8'), verbose=0)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)

def test_vgg19_baseline_same_head():
    v, m = build_vgg19(6, (100, 100), weights=None), build_mvgg19(6, (100, 100), weights=None)
    assert [l.name for l in v.layers][-4:] == [l.name for l in m.layers][-4:] == HEAD[1:]
    assert v.get_layer('head_dense').input.shape[-1] == 512
    assert not any('_bd_' in l.name for l in v.layers)

# what keras.utils.get_file raises with no network (tried offline: a bare Exception, within a second)
OFFLINE = Exception(f'URL fetch failure on {VGG19_NOTOP_URL}: None -- [Errno -2] Name or service not known')

def raises(error):
    def f(*args, **kwargs): raise error
    return f

def test_imagenet_download_failure_is_explained(monkeypatch):
    monkeypatch.setattr(keras.utils, 'get_file', raises(OFFLINE))
    with pytest.raises(WeightsUnavailable, match="weights='/path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        build_mvgg19(2, (64, 64), weights='imagenet')

@pytest.mark.parametrize('error', [KeyError('a bug in the caller'), ValueError('bad cache_subdir')])
def test_other_get_file_errors_are_not_download_failures(monkeypatch, error):
    monkeypatch.setattr(keras.utils, 'get_file', raises(error))
    with pytest.raises(type(error)) as e: build_vgg19(2, (64, 64), weights='imagenet')
    assert not isinstance(e.value, WeightsUnavailable)

def test_build_errors_are_not_download_failures(monkeypatch):
    monkeypatch.setattr(keras.applications, 'VGG19', raises(MemoryError('cannot allocate the convolutions')))
    with pytest.raises(MemoryError, match='cannot allocate'): build_vgg19(2, (64, 64), weights=None)

def test_weights_file_errors_name_the_file(tmp_path):
    missing = tmp_path/'vgg19_notop.h5'
    with pytest.raises(FileNotFoundError) as e: build_mvgg19(2, (64, 64), weights=missing)
    assert f'{missing} not found' in str(e.value) and VGG19_NOTOP_URL in str(e.value)
    text = tmp_path/'notes.h5'
    text.write_text('these are not weights')
    with pytest.raises(ValueError, match=f'not an HDF5 weights file: {text}'): build_mvgg19(2, (64, 64), weights=text)
    vgg16 = tmp_path/'vgg16.weights.h5'
    keras.applications.VGG16(weights=None, include_top=False).save_weights(vgg16)
    with pytest.raises(ValueError) as e: build_mvgg19(2, (64, 64), weights=vgg16)
    assert str(e.value).startswith(f'{vgg16} holds weights for 13 layers, VGG19 has 16')
    assert 'Layer count mismatch' not in str(e.value) and VGG19_NOTOP_URL in str(e.value)

def test_weights_id_checks_before_hashing(tmp_path):
    from mvgg19_nb.features import weights_id  # the feature cache's key: a missing file is named, not Errno 2
    with pytest.raises(FileNotFoundError, match=f'weights file {tmp_path}/w.h5 not found; a valid weights file is'):
        weights_id(tmp_path/'w.h5')

def test_keras_legacy_h5_loads(tmp_path):
    "Keras's own notop file is in the legacy .h5 format: a whole-model .h5 save has the same layout."
    src = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # Keras warns that .h5 is a legacy format
        src.save(tmp_path/'legacy.h5')
    assert check_weights(tmp_path/'legacy.h5') == tmp_path/'legacy.h5'
    m = build_vgg19(2, (32, 32), weights=tmp_path/'legacy.h5', dense_units=4)
    kernel = lambda model: model.get_layer('block5_conv4').get_weights()[0]
    np.testing.assert_array_equal(kernel(m), kernel(src))

def test_input_size_and_deprecated_input_shape():
    assert model_input_size(build_vgg19(2, input_size=(64, 80), weights=None, dense_units=4)) == (64, 80)
    for build in (lambda: build_vgg19(2, input_shape=(64, 80), weights=None, dense_units=4),
                  lambda: build_mvgg19(2, input_shape=(64, 80), weights=None, dense_units=4),
                  lambda: build_model('vgg19', 2, input_shape=(64, 80), weights=None, dense_units=4),
                  lambda: build_backbone(input_shape=(64, 80, 3), weights=None)):
        with pytest.warns(DeprecationWarning, match='input_shape=...\\) is deprecated: pass input_size'):
            assert model_input_size(build()) == (64, 80)
    with pytest.warns(DeprecationWarning, match='feature_extractor\\(input_shape=...\\) is deprecated'):
        ext, _ = feature_extractor(input_shape=(64, 80), weights=None)
    assert model_input_size(ext) == (64, 80)
    with pytest.raises(ValueError, match='pass \\(height, width\\)'): build_vgg19(2, (64,), weights=None)

def test_local_weights_file(tmp_path):
    src = build_vgg19(2, (64, 64), weights=None, seed=3)
    path = tmp_path/'backbone.weights.h5'
    keras.Model(src.input, src.get_layer('block5_pool').output).save_weights(path)
    m = build_mvgg19(2, (64, 64), weights=path)
    kernel = lambda model: model.get_layer('block5_conv4').get_weights()[0]
    np.testing.assert_array_equal(kernel(m), kernel(src))
