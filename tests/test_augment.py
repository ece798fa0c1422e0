"Tests for mvgg19_nb.augment: the paper's augmentations as Keras preprocessing layers."
import os, tempfile
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
import numpy as np
import pytest
import keras
from mvgg19_nb.augment import AUGMENT_DEFAULTS, build_augmenter, augment_views, augmenter_summary

OFF = dict(noise_std=0, rotation=0, flip=None, height_shift=0, width_shift=0)

@pytest.fixture(scope='module')
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 20, 20, 3)).astype('uint8')

def np_(t): return keras.ops.convert_to_numpy(t)

def test_layer_names_and_switches():
    names = [l.name for l in build_augmenter().layers]
    assert names == ['augment_to_unit', 'augment_flip', 'augment_rotation', 'augment_shift', 'augment_noise',
                     'augment_clip', 'augment_to_pixels']
    assert [l.name for l in build_augmenter(**OFF).layers] == ['augment_to_unit', 'augment_clip', 'augment_to_pixels']
    assert 'augment_noise' not in [l.name for l in build_augmenter(noise_std=None).layers]
    assert build_augmenter(name='aug2').name == 'aug2'
    with pytest.raises(ValueError, match='pixel units'): build_augmenter(noise_std=1000)

def test_inference_is_identity_training_changes(images):
    aug, x = build_augmenter(seed=0), images.astype('float32')
    np.testing.assert_allclose(np_(aug(x, training=False)), x, atol=1e-3)
    y = np_(aug(x, training=True))
    assert y.shape == x.shape and np.abs(y - x).mean() > 1
    assert y.min() >= 0 and y.max() <= 255

def test_noise_in_pixel_units_and_clipped():
    mid = np.full((1000, 4, 4, 3), 128, 'float32')
    y = np_(build_augmenter(**{**OFF, 'noise_std': 20}, seed=1)(mid, training=True))
    assert abs(y.std() - 20) < 1
    white = np.full((10, 4, 4, 3), 250, 'float32')
    y = np_(build_augmenter(**{**OFF, 'noise_std': 30}, seed=1)(white, training=True))
    assert y.max() == pytest.approx(255, abs=1e-3) and y.min() < 250

def test_flip_only_gives_a_flip():
    g = np.arange(12 * 12, dtype='float32').reshape(1, 12, 12, 1).repeat(3, -1)
    for seed in range(4):
        f = np_(build_augmenter(**{**OFF, 'flip': 'horizontal_and_vertical'}, seed=seed)(g, training=True))
        assert any(np.allclose(f, c, atol=1e-3) for c in (g, g[:, ::-1], g[:, :, ::-1], g[:, ::-1, ::-1]))

def test_summary_round_trip():
    assert augmenter_summary(build_augmenter()) == AUGMENT_DEFAULTS
    s = dict(noise_std=3.0, rotation=0.02, flip='vertical', height_shift=0.05, width_shift=0.0, fill_mode='nearest')
    assert augmenter_summary(build_augmenter(**s)) == s

def test_augment_views_shape_original_and_determinism(images):
    v = augment_views(images, 4, build_augmenter(), seed=0, batch_size=2)
    assert v.shape == (4, *images.shape) and v.dtype == np.uint8
    np.testing.assert_array_equal(v[0], images)
    for i in range(1, 4): assert not np.array_equal(v[i], images)
    assert not np.array_equal(v[1], v[2])
    # same seed -> same views, even with a differently seeded or unseeded augmenter
    np.testing.assert_array_equal(augment_views(images, 4, build_augmenter(seed=99), seed=0, batch_size=2), v)
    assert not np.array_equal(augment_views(images, 4, build_augmenter(), seed=1, batch_size=2)[1], v[1])

def test_augment_views_restores_augmenter_state(images):
    a, b = build_augmenter(seed=7), build_augmenter(seed=7)
    x = images.astype('float32')
    a(x, training=False); b(x, training=False)
    augment_views(images, 3, a, seed=0)
    np.testing.assert_allclose(np_(a(x, training=True)), np_(b(x, training=True)), atol=1e-4)

def test_augment_views_edges(images):
    np.testing.assert_array_equal(augment_views(images, 1), images[None])
    assert augment_views(images[:0], 2).shape == (2, 0, 20, 20, 3)
    np.testing.assert_array_equal(augment_views(images, 2, build_augmenter(**OFF))[1], images)
    np.testing.assert_array_equal(augment_views(images.astype('float64'), 2, seed=3), augment_views(images, 2, seed=3))
    with pytest.raises(ValueError): augment_views(images[0], 2)
    with pytest.raises(ValueError): augment_views(images, 0)
