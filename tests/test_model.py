"Model construction: widths, names, weights options, freeze policy (weights=None or a file the test writes: no download here)."
import os, tempfile
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
import numpy as np, pytest, keras
from mvgg19_nb.model import build_mvgg19, build_vgg19, WeightsUnavailable

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

def test_imagenet_download_failure_is_explained(monkeypatch):
    def offline(*a, **k): raise OSError('network unreachable')
    monkeypatch.setattr(keras.utils, 'get_file', offline)
    monkeypatch.setattr('keras.src.applications.vgg19.file_utils.get_file', offline)
    with pytest.raises(WeightsUnavailable, match="weights='/path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'"):
        build_mvgg19(2, (64, 64), weights='imagenet')

def test_local_weights_file(tmp_path):
    src = build_vgg19(2, (64, 64), weights=None, seed=3)
    path = tmp_path/'backbone.weights.h5'
    keras.Model(src.input, src.get_layer('block5_pool').output).save_weights(path)
    m = build_mvgg19(2, (64, 64), weights=path)
    np.testing.assert_array_equal(m.get_layer('block5_conv4').get_weights()[0], src.get_layer('block5_conv4').get_weights()[0])
