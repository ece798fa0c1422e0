"Grad-CAM maps and localisation scores (random backbones: no ImageNet download here)."
import os, tempfile
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
import numpy as np, pytest, keras
from mvgg19_nb.model import build_mvgg19, build_vgg19
from mvgg19_nb.model import with_classes
from mvgg19_nb.explain import (grad_cam, branch_cams, branch_taps, last_conv, pointing_game, cam_iou, binary_mask,
                               centre_cam, localisation_scores, plot_cams)
from fixtures import make_magnetic_tile
from mvgg19_nb.data import load_dataset

SIZE = (48, 48)


@pytest.fixture(scope='module')
def mvgg():
    return build_mvgg19(3, SIZE, weights=None, branches=('block2_pool', 'block3_pool'), trunk='block4_pool',
                        dense_units=8, seed=1)


@pytest.fixture(scope='module')
def images():
    return np.random.default_rng(0).integers(0, 256, (3, *SIZE, 3)).astype('uint8')


def test_cam_shape_and_range(mvgg, images):
    cam = grad_cam(mvgg, images)
    assert cam.shape == (3, *SIZE) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() <= 1 and np.isclose(cam.max(axis=(1, 2)), 1).any()
    assert last_conv(mvgg) == 'block4_conv4' and branch_taps(mvgg) == ['block2_pool', 'block3_pool']


def test_branch_cams_per_path(mvgg, images):
    cams = branch_cams(mvgg, images)
    assert list(cams) == ['block2_pool', 'block3_pool', 'trunk']
    for c in cams.values(): assert c.shape == (3, *SIZE) and 0 <= c.min() and c.max() <= 1
    np.testing.assert_allclose(cams['trunk'], grad_cam(mvgg, images), atol=1e-6)
    total = branch_cams(mvgg, images, through='all')  # the gradient also flows up the trunk: another map
    assert np.abs(total['block2_pool'] - cams['block2_pool']).max() > 1e-3
    vgg = build_vgg19(3, SIZE, weights=None, trunk='block4_pool', dense_units=8)
    assert list(branch_cams(vgg, images)) == ['trunk']


def test_map_changes_with_class_index(mvgg, images):
    a, b = grad_cam(mvgg, images, class_index=0), grad_cam(mvgg, images, class_index=2)
    assert np.abs(a - b).max() > 0.1
    per_image = grad_cam(mvgg, images, class_index=[0, 2, 0], batch_size=1)
    np.testing.assert_allclose(per_image[[0, 2]], a[[0, 2]], atol=1e-5)
    np.testing.assert_allclose(per_image[1], b[1], atol=1e-5)
    with pytest.raises(ValueError, match='outside'): grad_cam(mvgg, images, class_index=5)


def test_images_from_paths_and_arrays(mvgg, images, tmp_path):
    "`grad_cam` takes files and arrays at any size through `mvgg19_nb.images.as_batch`, not through `predict`."
    import mvgg19_nb.explain as explain, mvgg19_nb.images as imgs, mvgg19_nb.model as model
    assert explain.as_batch is imgs.as_batch and explain.model_input_size is model.model_input_size
    from PIL import Image
    Image.fromarray(images[0]).save(tmp_path/'a.png')
    big = np.kron(images[1], np.ones((2, 2, 1), np.uint8))  # 96x96: resized to the model's 48x48
    cams = grad_cam(mvgg, [tmp_path/'a.png', big], class_index=0)
    np.testing.assert_allclose(cams[0], grad_cam(mvgg, images[:1], class_index=0)[0], atol=1e-5)
    assert cams.shape == (2, *SIZE)


def test_pointing_game_and_iou_on_hand_made_masks():
    mask = np.zeros((10, 10), bool); mask[6:9, 1:4] = True  # 9 pixels, bottom left
    cam = np.zeros((10, 10)); cam[7, 2] = 1.0; cam[6:9, 1:5] = np.maximum(cam[6:9, 1:5], 0.7)
    assert pointing_game(cam, mask) == 1.0
    assert pointing_game(cam[::-1], mask) == 0.0
    assert pointing_game(cam[::-1], mask, tolerance=3) == 0.0  # the peak is 4 rows away
    assert pointing_game(cam[::-1], mask, tolerance=4) == 1.0
    assert np.isclose(pointing_game(np.zeros((10, 10)), mask), 0.09)  # a flat map: chance
    assert np.isclose(cam_iou(cam, mask), 9 / 12)
    assert np.isclose(cam_iou(cam, mask * 255), 9 / 12)  # 0-255 masks
    assert np.isclose(cam_iou(np.kron(cam, np.ones((3, 3))), mask), 9 / 12)  # a mask of another size is resized
    assert cam_iou(np.zeros((10, 10)), mask) == 0.0
    assert np.isnan(pointing_game(cam, np.zeros((10, 10))))
    assert binary_mask(np.full((4, 4), 0.6)).all() and not binary_mask(np.full((4, 4), 100, np.uint8)).any()
    c = centre_cam((9, 9))
    assert c.argmax() == 40 and c.max() == 1


def test_localisation_scores_on_defective_images(mvgg, tmp_path):
    root = make_magnetic_tile(tmp_path/'mt', {'Blowhole': 2, 'Crack': 2, 'Free': 2})
    ds = load_dataset('magnetic_tile', root)
    model = with_classes(mvgg, ['Blowhole', 'Crack', 'Free'])
    df = localisation_scores(model, ds)
    assert sorted(df['index'].unique()) == [i for i in range(len(ds)) if ds.classes[ds.labels[i]] != 'Free']
    assert set(df['map']) == {'block2_pool', 'block3_pool', 'trunk', 'combined', 'centre', 'border', 'uniform'}
    assert df.pointing.between(0, 1).all() and df.iou.between(0, 1).all()
    uni = df[df['map'] == 'uniform']
    np.testing.assert_allclose(uni.pointing, uni.mask_fraction)
    maps = {'a': np.random.default_rng(0).random((2, *SIZE))}
    fig = plot_cams(np.zeros((2, *SIZE, 3), np.uint8), maps, [np.ones(SIZE), None])
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match='no defective image'):
        localisation_scores(model, ds, idx=[i for i in range(len(ds)) if ds.classes[ds.labels[i]] == 'Free'])
