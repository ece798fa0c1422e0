"The cached path computes what the full model computes: random backbone weights (no download here), real images."
import os, tempfile
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
import numpy as np, pytest, keras
from mvgg19_nb.data import load_dataset
from mvgg19_nb.features import feature_extractor, build_cached_head, transfer_head, extract_features
from mvgg19_nb.model import build_mvgg19, build_vgg19

@pytest.fixture(scope='module')
def real_images():
    try: ds = load_dataset('magnetic_tile').sample(24, seed=1, min_per_class=3)
    except Exception as e: pytest.skip(f'magnetic tile data not found ({e}); set MVGG19_DATA')
    return ds.load((72, 88)), ds.labels % 3

@pytest.mark.parametrize('name,build', [('mvgg19', build_mvgg19), ('vgg19', build_vgg19)])
def test_cached_head_equals_full_model(real_images, name, build):
    imgs, y = real_images
    ext, layout = feature_extractor((72, 88), weights=None, seed=5)
    F = ext.predict(imgs, verbose=0)
    head = build_cached_head(name, 3, layout, seed=2)
    head.compile('adam', 'sparse_categorical_crossentropy')
    head.fit(F, y, epochs=2, batch_size=8, verbose=0)  # BatchNorm statistics move away from their initial values
    if name == 'mvgg19': assert np.abs(head.get_layer('block3_bd').moving_mean.numpy()).max() > 0
    full = transfer_head(head, build(3, (72, 88), weights=None, seed=5))
    p_full, p_head = full.predict(imgs, verbose=0), head.predict(F, verbose=0)
    assert np.abs(p_full - p_head).max() < 1e-4
    assert p_head.std(0).max() > 1e-3  # not a constant output that would match trivially

def test_training_batch_statistics_match(real_images):
    "One training step from identical weights: BatchNorm's moving statistics move the same way on map and moments."
    imgs, y = real_images
    ext, layout = feature_extractor((72, 88), weights=None, seed=5)
    head = build_cached_head('mvgg19', 3, layout, bd_dropout=0.0, dropout=0.0, seed=2)
    full = transfer_head(head, build_mvgg19(3, (72, 88), weights=None, seed=5, bd_dropout=0.0, dropout=0.0))
    head(ext.predict(imgs, verbose=0), training=True); full(imgs.astype('float32'), training=True)
    for b in (2, 3, 4):
        h, f = head.get_layer(f'block{b}_bd'), full.get_layer(f'block{b}_bd_bn')
        np.testing.assert_allclose(h.moving_mean.numpy(), f.moving_mean.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(h.moving_variance.numpy(), f.moving_variance.numpy(), rtol=1e-3, atol=1e-5)

def test_cache_reused_and_atomic(real_images, tmp_path):
    imgs, _ = real_images
    calls = []
    def images(): calls.append(1); return imgs
    a = extract_features(images, tmp_path, 'k', (72, 88), weights=None, views=3, progress=False)
    b = extract_features(images, tmp_path, 'k', (72, 88), weights=None, views=3, progress=False)
    assert len(calls) == 1 and b.extract_s == 0.0
    np.testing.assert_array_equal(np.asarray(a.views), np.asarray(b.views))
    assert not list(tmp_path.rglob('*.tmp*'))
    assert len({np.asarray(a.views[v]).tobytes() for v in range(3)}) == 3  # each view is a different augmentation
