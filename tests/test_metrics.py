"Tests for mvgg19_nb.metrics against direct scikit-learn calls and hand-checked cases."
import os, tempfile, warnings
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from mvgg19_nb.metrics import (to_pred, classification_metrics, fold_metrics, summarize, format_mean_std,
                               per_class_report, confusion, roc_curves)

def random_data(n=300, k=4, seed=0, signal=0.3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(k), n); p[np.arange(n), y] += signal
    return y, p / p.sum(1, keepdims=True)

def test_binary_by_hand():
    y = [0, 0, 0, 1, 1, 1]
    p1 = np.array([0.1, 0.2, 0.7, 0.6, 0.9, 0.3])
    m = classification_metrics(y, np.stack([1 - p1, p1], 1), ['normal', 'defect'])
    assert m == pytest.approx(dict(accuracy=4/6, precision=2/3, recall=2/3, f1=2/3, balanced_accuracy=2/3, auc=7/9))
    assert classification_metrics(y, p1) == m  # 1-D proba = P(class 1)

def test_binary_matches_sklearn():
    y, p = random_data(k=2, seed=1)
    m, pred = classification_metrics(y, p), p.argmax(1)
    assert m['precision'] == pytest.approx(skm.precision_score(y, pred))
    assert m['recall'] == pytest.approx(skm.recall_score(y, pred))
    assert m['f1'] == pytest.approx(skm.f1_score(y, pred))
    assert m['auc'] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert 'precision_weighted' not in m

def test_multiclass_matches_sklearn():
    y, p = random_data(k=5, seed=2)
    m, pred = classification_metrics(y, p), p.argmax(1)
    assert m['accuracy'] == pytest.approx(skm.accuracy_score(y, pred))
    for avg, sfx in (('macro', ''), ('weighted', '_weighted')):
        assert m[f'precision{sfx}'] == pytest.approx(skm.precision_score(y, pred, average=avg))
        assert m[f'recall{sfx}'] == pytest.approx(skm.recall_score(y, pred, average=avg))
        assert m[f'f1{sfx}'] == pytest.approx(skm.f1_score(y, pred, average=avg))
    assert m['auc'] == pytest.approx(skm.roc_auc_score(y, p, multi_class='ovr', average='macro'))

def test_absent_class_and_single_class_folds():
    y, p = random_data(k=4, seed=3)
    keep = y != 1
    m = classification_metrics(y[keep], p[keep])
    assert m['auc'] == pytest.approx(np.mean([skm.roc_auc_score(y[keep] == k, p[keep, k]) for k in (0, 2, 3)]))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        m1 = classification_metrics([2, 2, 2], p[:3, :])
    assert np.isnan(m1['auc']) and 0 <= m1['accuracy'] <= 1
    with pytest.raises(ValueError): classification_metrics(y, p, classes=['a', 'b'])

def test_metrics_follow_predictions():
    y, p = random_data(k=3, seed=4)
    good, bad = classification_metrics(y, p), classification_metrics(y, p[:, ::-1])
    assert all(good[k] > bad[k] for k in ('accuracy', 'f1', 'auc'))
    perfect = classification_metrics(y, np.eye(3)[y])
    assert perfect['accuracy'] == perfect['f1'] == perfect['auc'] == 1.0

def test_folds_summary_and_format():
    y, p = random_data(k=3, seed=5)
    folds = np.arange(len(y)) % 10
    df = fold_metrics(y, p, folds)
    assert list(df.index) == [f'fold {i}' for i in range(10)]
    assert df.loc['fold 4', 'f1'] == pytest.approx(
        skm.f1_score(y[folds == 4], p[folds == 4].argmax(1), average='macro'))
    s = summarize(df)
    assert list(s.index) == ['mean', 'std'] and list(s.columns) == list(df.columns)
    assert s.loc['std', 'accuracy'] == pytest.approx(np.std(df['accuracy'], ddof=1))
    f = format_mean_std(pd.DataFrame({'accuracy': [0.9, 0.95], 'auc': [1.0, 1.0]}))
    assert f['accuracy'] == '92.50 +/- 3.54' and f['auc'] == '100.00 +/- 0.00'
    assert (format_mean_std(s) == format_mean_std(df)).all()

def test_per_class_report_and_confusion():
    y, p = random_data(k=3, seed=6)
    names, pred = ['a', 'b', 'c'], p.argmax(1)
    rep = per_class_report(y, p, names)
    assert list(rep.index) == names + ['accuracy', 'macro avg', 'weighted avg']
    np.testing.assert_allclose(rep.loc[names, 'precision'], skm.precision_score(y, pred, average=None))
    assert rep.loc['accuracy', 'f1-score'] == pytest.approx(skm.accuracy_score(y, pred))
    assert rep.loc[names, 'support'].tolist() == np.bincount(y).tolist()
    cm = confusion(y, p, names)
    np.testing.assert_array_equal(cm.values, skm.confusion_matrix(y, pred))
    assert list(cm.index) == names and cm.index.name == 'true' and cm.columns.name == 'predicted'
    np.testing.assert_allclose(confusion(y, pred, names, normalize='true').sum(axis=1), 1)
    np.testing.assert_array_equal(confusion([0, 0], [0, 1], names).values, [[1, 1, 0], [0, 0, 0], [0, 0, 0]])

def test_roc_curves():
    y, p = random_data(k=2, seed=7)
    rc = roc_curves(y, p, ['normal', 'defect'])
    assert list(rc) == ['normal', 'defect']
    fpr, tpr, auc = rc['defect']
    assert auc == pytest.approx(skm.roc_auc_score(y, p[:, 1])) and fpr[0] == 0 and tpr[-1] == 1
    assert rc['normal'][2] == pytest.approx(auc)
    y3, p3 = random_data(k=3, seed=8)
    rc3 = roc_curves(y3, p3, ['a', 'b', 'c'])
    np.testing.assert_allclose([rc3[c][2] for c in 'abc'], skm.roc_auc_score(y3, p3, multi_class='ovr', average=None))
    assert list(roc_curves(y3[y3 != 0], p3[y3 != 0], ['a', 'b', 'c'])) == ['b', 'c']

def test_to_pred():
    np.testing.assert_array_equal(to_pred([[0.2, 0.8], [0.7, 0.3]]), [1, 0])
    np.testing.assert_array_equal(to_pred(np.array([1.0, 0.0])), [1, 0])
