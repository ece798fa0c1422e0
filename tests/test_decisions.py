"Tests for mvgg19_nb.decisions: each statistic against an independent computation, the record as JSON, the errors."
import json
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats
from scipy.special import softmax
from mvgg19_nb import decisions as dc
from mvgg19_nb.params import ParameterError


@pytest.fixture(scope='module')
def line():
    "1500 parts, 8 % defective, calibrated defect probabilities, 5 folds."
    rng = np.random.default_rng(7)
    y = (rng.random(1500) < 0.08).astype(int)
    logit = np.log(0.08 / 0.92) + 3 * (rng.normal(np.where(y == 1, 1.6, -1.6), 1.0))
    return y, 1 / (1 + np.exp(-logit)), rng.permutation(1500) % 5


def test_proportion_ci_is_clopper_pearson():
    for k, n in [(0, 20), (4, 20), (20, 20), (1, 1000)]:
        lo, hi = dc.proportion_ci(k, n)
        assert lo == pytest.approx(stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0, abs=1e-12)
        assert hi == pytest.approx(stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0, abs=1e-12)


def test_operating_point_is_the_kth_highest_defect_score(line):
    y, p, _ = line
    ops = dc.operating_points(y, p, recalls=(0.9, 0.95))
    top = np.sort(p[y == 1])[::-1]
    for row in ops.itertuples():
        k = int(np.ceil(row.target * y.sum() - 1e-9))
        assert row.threshold == top[k - 1]
        assert row.fp == ((p >= row.threshold) & (y == 0)).sum() and row.recall >= row.target


def test_targets_the_data_cannot_show_get_a_note(line):
    y, p, _ = line
    ops = dc.operating_points(y, p, recalls=(0.99, 0.999))  # ~120 defects: 0.99 needs 100, 0.999 needs 1000
    assert ops.note[0] == '' and ops.note[1] == f'needs >= 1000 defective parts, has {y.sum()}'
    assert np.isnan(ops.threshold[1])


def test_least_cost_matches_a_scan_of_every_threshold(line):
    y, p, _ = line
    lc = dc.least_cost_threshold(y, p, miss_cost=10)
    cands = np.append(np.unique(p), np.inf)
    costs = np.array([10 * ((p < t) & (y == 1)).sum() + ((p >= t) & (y == 0)).sum() for t in cands])
    assert lc['cost'] == pytest.approx(costs.min() / len(y))
    assert lc['threshold'] == cands[np.flatnonzero(costs == costs.min()).max()]


def test_review_band_sides_meet_their_targets_by_the_upper_bound(line):
    y, p, _ = line
    b = dc.review_band(y, p, max_error=0.02, max_false_reject=0.1)
    acc, rej = p < b['t_low'], p >= b['t_high']
    assert acc.sum() > 0 and rej.sum() > 0 and b['review'] > 0  # all three decisions occur: the checks mean something
    assert stats.beta.ppf(0.975, (acc & (y == 1)).sum() + 1, (acc & (y == 0)).sum()) <= 0.02
    assert stats.beta.ppf(0.975, (rej & (y == 0)).sum() + 1, (rej & (y == 1)).sum()) <= 0.1
    assert b['accepted'] + b['rejected'] + b['review'] == len(y)
    d = dc.decide(p, band=b)
    assert [(d == c).sum() for c in ('good', 'review', 'defective')] == [b['accepted'], b['review'], b['rejected']]


def test_confidence_threshold_meets_the_error_bound():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(3000, 3)) * 3
    p = softmax(z, axis=1)
    y = (p.cumsum(1) < rng.random((3000, 1))).sum(1)
    cf = dc.confidence_for(y, p, max_error=0.05)
    decided = p.max(1) >= cf['threshold']
    right = (p.argmax(1) == y)[decided]
    assert cf['decided'] == decided.sum() and 1 - stats.beta.ppf(0.025, right.sum(), (~right).sum() + 1) <= 0.05


def test_ece_by_hand_and_near_zero_when_calibrated():
    c = dc.calibration([0, 1, 1], np.array([[0.75, 0.25], [0.45, 0.55], [0.8, 0.2]]), bins=4)
    # confidences 0.75 (right, bin (0.5, 0.75]), 0.55 (right, same bin), 0.8 (wrong, bin (0.75, 1])
    assert c['ece'] == pytest.approx((2 * abs(1 - 0.65) + abs(0 - 0.8)) / 3)
    assert c['brier'] == pytest.approx(np.mean((np.array([0.25, 0.55, 0.2]) - [0, 1, 1]) ** 2))
    rng = np.random.default_rng(4)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert dc.calibration(y, np.stack([1 - p, p], 1))['ece'] < 0.015


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(8000, 5)) * 2
    y = (softmax(z, axis=1).cumsum(1) < rng.random((8000, 1))).sum(1)  # labels drawn at T = 1
    T = dc.fit_temperature(softmax(z * 3, axis=1), y)  # probabilities three times too sharp
    assert T == pytest.approx(3, rel=0.05)
    assert np.allclose(dc.apply_temperature(z * 3, T), softmax(z * 3 / T, axis=1))


def test_corrected_t_and_mcnemar_by_hand():
    d = np.array([0.02, -0.01, 0.04, 0.01])
    r = dc.corrected_t(d, 1 / 3)
    se = np.sqrt((1 / 4 + 1 / 3) * np.var(d, ddof=1))
    assert r['p'] == pytest.approx(2 * stats.t.sf(d.mean() / se, 3))
    assert (r['low'], r['high']) == pytest.approx((d.mean() - stats.t.ppf(0.975, 3) * se, d.mean() + stats.t.ppf(0.975, 3) * se))
    m = dc.mcnemar_exact([1] * 10 + [0] * 2 + [1] * 5, [0] * 10 + [1] * 2 + [1] * 5)  # a only 10, b only 2
    assert (m['a_only'], m['b_only']) == (10, 2) and m['p'] == pytest.approx(2 * stats.binom.cdf(2, 12, 0.5))


def test_paired_comparison_and_its_sentence():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(2000, 3)) * 3
    y = (softmax(z, axis=1).cumsum(1) < rng.random((2000, 1))).sum(1)
    folds = rng.permutation(2000) % 10
    pa, pb = (softmax(z + rng.normal(scale=s, size=z.shape), axis=1) for s in (2.5, 1.0))
    cmp = dc.paired_comparison(y, pa, pb, folds)
    per = [(pb.argmax(1) == y)[folds == k].mean() - (pa.argmax(1) == y)[folds == k].mean() for k in range(10)]
    assert cmp['accuracy']['diff'] == pytest.approx(np.mean(per))
    assert cmp['accuracy']['boot_low'] < cmp['accuracy']['diff'] < cmp['accuracy']['boot_high']
    assert cmp == dc.paired_comparison(y, pa, pb, folds)  # the bootstrap's seed is fixed
    s = dc.comparison_sentence(cmp)
    assert s.startswith(f"MVGG19 is ahead of VGG19 by {100 * np.mean(per):.2f} points of accuracy (95 % CI ")
    assert s.endswith("outside the folds' noise.")
    assert dc.comparison_sentence(dc.paired_comparison(y, pa, pa, folds)).startswith('MVGG19 and VGG19 are level')


def test_decision_record_is_json_and_decide_reads_it(line):
    y, p, folds = line
    rec = dc.decision_record(y, np.stack([1 - p, p], 1), folds, miss_cost=20, max_error=0.02)
    assert json.loads(json.dumps(rec, allow_nan=False)) == rec
    assert rec['defective'] == y.sum() and rec['least_cost']['cost'] > 0
    assert [r['target'] for r in rec['operating_points']] == [0.9, 0.95, 0.99, 0.999]
    assert rec['operating_points'][3]['threshold'] is None and isinstance(rec['operating_points'][0]['tp'], int)
    assert (dc.decide(p, band=rec['review_band']) == dc.decide(p, band=dc.review_band(y, p, 0.02))).all()
    assert (dc.decide(p, rec['operating_points'][2]['threshold']) == 'defective').sum() == rec['operating_points'][2]['tp'] + rec['operating_points'][2]['fp']


def test_plots_mark_the_points(line):
    y, p, _ = line
    ax = dc.plot_operating_points(y, p, dc.operating_points(y, p))
    assert len(ax.lines) == 1 + 3 and len(ax.get_legend().get_texts()) == 4
    cal = dc.calibration(y, np.stack([1 - p, p], 1))
    ax = dc.plot_reliability(cal)
    assert len(ax.patches) == len(cal['table'])
    P = np.stack([1 - p, p], 1)
    ax = dc.plot_risk_coverage(dc.risk_coverage(y, P), dc.confidence_for(y, P, 0.02))
    assert len(ax.lines) == 2
    plt.close('all')


@pytest.mark.parametrize('call, message', [
    (lambda y, p, f: dc.operating_points(y, p, recalls=(0.9, 1.2)), 'recalls: 1.2 must be a rate between 0 and 1'),
    (lambda y, p, f: dc.operating_points(y[:10], p), 'p_pos: needs one defect probability per label'),
    (lambda y, p, f: dc.least_cost_threshold(y, p, -1), 'miss_cost: -1 must be a positive number'),
    (lambda y, p, f: dc.review_band(y, p, max_error=1), 'max_error: 1 must be a rate'),
    (lambda y, p, f: dc.review_band(np.zeros_like(y), p), 'y: needs both good (0) and defective (1) parts'),
    (lambda y, p, f: dc.calibration(y, p), 'proba: needs shape (N, K)'),
    (lambda y, p, f: dc.decision_record(y, np.stack([1 - p, p], 1), f[:3]), 'fold_of: needs one fold index per label'),
    (lambda y, p, f: dc.decision_record(y, np.stack([1 - p, p], 1), f, positive=3), 'positive: 3 must be the defective'),
    (lambda y, p, f: dc.apply_temperature(np.stack([1 - p, p], 1), -2), 'T: -2 must be a positive temperature'),
    (lambda y, p, f: dc.paired_comparison(y, np.stack([1 - p, p], 1), np.stack([1 - p, p], 1), np.zeros_like(f)),
     'fold_of: the corrected t-test needs at least 2 folds'),
    (lambda y, p, f: dc.decide(p, band=(0.9, 0.1)), 'band: t_low 0.9 is above t_high 0.1'),
])
def test_mistakes_answer_with_one_line_naming_the_parameter(line, call, message):
    with pytest.raises(ParameterError) as e:
        call(*line)
    assert message in str(e.value) and '\n' not in str(e.value)
