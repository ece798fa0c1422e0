"Tests for mvgg19_nb.plots: every function returns a Figure with the expected axes, lines and bars."
import os, tempfile
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
import numpy as np
import pandas as pd
import pytest
from mvgg19_nb.augment import build_augmenter
from mvgg19_nb.plots import plot_history, plot_roc, plot_confusion, plot_comparison, show_samples, show_augmentations

@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close('all')

def hist(n, with_val=True, seed=0):
    r = np.random.default_rng(seed).uniform(0, 0.1, n)
    h = {'accuracy': np.linspace(0.5, 0.9, n) + r, 'loss': np.linspace(1, 0.2, n) + r}
    if with_val: h.update(val_accuracy=h['accuracy'] - 0.05, val_loss=h['loss'] + 0.05)
    return h

def test_plot_history():
    hs = [hist(10, seed=i) for i in range(3)] + [hist(7, seed=9)]
    fig = plot_history(hs)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [len(a.lines) for a in fig.axes] == [2, 2] and [len(a.collections) for a in fig.axes] == [2, 2]
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata()[:7], np.mean([h['loss'][:7] for h in hs], 0))
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata()[7:], np.mean([h['loss'][7:] for h in hs[:3]], 0))
    fig = plot_history([hist(5, with_val=False)], metrics=('accuracy',), band='minmax')
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1 and len(fig.axes[0].collections) == 0

def test_plot_history_bands_stay_in_range():
    "A wide spread never draws accuracy outside [0, 1] or a loss below 0 (the band used to dip below 0 %)."
    acc = np.array([[0.0, 0.5, 1.0], [0.0, 0.9, 1.0], [0.9, 0.6, 0.7]])
    loss = np.array([[2.0, 0.1, 0.02], [0.1, 1.5, 0.02], [0.1, 0.3, 0.9]])
    assert (acc.mean(0) - acc.std(0)).min() < 0 < 1 < (acc.mean(0) + acc.std(0)).max()  # unclipped, it leaves [0, 1]
    assert (loss.mean(0) - loss.std(0)).min() < 0
    hs = [{'accuracy': a, 'val_accuracy': a[::-1], 'loss': l, 'val_loss': l[::-1]} for a, l in zip(acc, loss)]
    for band in ('std', 'minmax'):
        fig = plot_history(hs, band=band)
        ys = [np.concatenate([p.vertices[:, 1] for p in c.get_paths()]) for a in fig.axes for c in a.collections]
        assert len(ys) == 4
        for y in ys[:2]: assert 0 <= y.min() and y.max() <= 1
        for y in ys[2:]: assert y.min() >= 0
        if band == 'std':
            assert ys[0].min() == 0 and ys[0].max() == 1 and ys[2].min() == 0
            np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), acc.mean(0))  # the mean itself is not clipped
    pct = [{'accuracy': 100 * a} for a in acc]  # a history in percent keeps its own scale
    y = plot_history(pct, metrics='accuracy').axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert y.min() == 0 and 100 >= y.max() > 1
    with pytest.raises(ValueError, match="band='range'"): plot_history(hs, band='range')

def test_plot_history_given_axes():
    f, axs = plt.subplots(1, 2)
    assert plot_history([hist(5), hist(5, seed=1)], ax=axs) is f
    with pytest.raises(ValueError): plot_history([hist(5)], ax=axs[0])

def test_plot_roc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100); p1 = np.clip(0.3 * y + rng.uniform(0, 0.7, 100), 0, 1)
    fig = plot_roc(y, np.stack([1 - p1, p1], 1), ['normal', 'defect'])
    a = fig.axes[0]
    assert isinstance(fig, Figure) and len(a.lines) == 3  # both classes + diagonal
    assert [t.get_text().split(' (')[0] for t in a.get_legend().get_texts()] == ['normal', 'defect', 'chance']
    assert 'AUC' in a.get_legend().get_texts()[1].get_text()

def test_plot_confusion():
    y, pred = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0])
    fig = plot_confusion(y, pred, ['a', 'b', 'c'])
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and len(fig.axes[0].texts) == 9
    assert [t.get_text() for t in fig.axes[0].texts][:3] == ['1', '1', '0']
    fig = plot_confusion(y, np.eye(3)[pred], ['a', 'b', 'c'], normalize=True, colorbar=False)
    assert len(fig.axes) == 1 and fig.axes[0].texts[0].get_text() == '0.50'

def test_plot_comparison():
    t = pd.DataFrame({'dataset': ['A', 'A', 'B', 'B', 'C', 'C', 'D', 'D'], 'model': ['MVGG19', 'VGG19'] * 4,
                      'accuracy': [90, 85, 80, 70, 95, 93, 60, 59], 'accuracy_std': [1] * 8})
    fig = plot_comparison(t)
    a = fig.axes[0]
    assert isinstance(fig, Figure) and len(a.patches) == 8
    bars = [c for c in a.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and all(b.errorbar is not None for b in bars)
    assert [b.get_label() for b in bars] == ['MVGG19', 'VGG19']
    assert [x.get_text() for x in a.get_xticklabels()] == ['A', 'B', 'C', 'D']
    fig = plot_comparison(t.drop(columns='accuracy_std').assign(f1=0.5), metric='f1')
    assert len(fig.axes[0].containers) == 2 and fig.axes[0].get_ylabel() == 'f1'

def test_show_samples():
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (9, 8, 8, 3)).astype('uint8'), np.array([0, 0, 0, 0, 0, 1, 1, 2, 2])
    fig = show_samples(imgs, labels, ['x', 'y', 'z'], per_class=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 9
    assert sum(len(a.images) for a in fig.axes) == 3 + 2 + 2

def test_show_augmentations():
    imgs = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3)).astype('uint8')
    fig = show_augmentations(imgs, build_augmenter(), n_views=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 12
    np.testing.assert_array_equal(fig.axes[4].images[0].get_array(), imgs[1])
    assert fig.axes[1].get_title() == 'view 1'
