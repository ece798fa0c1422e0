"cross_validate end to end on real magnetic tile images (random backbone: no ImageNet download here), resume after a kill, determinism."
import os, signal, subprocess, sys, tempfile, time, textwrap
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
from pathlib import Path
import numpy as np, pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from mvgg19_nb.data import load_dataset
from mvgg19_nb.train import cross_validate

# Folds trained with other thread counts (one worker per core vs the main process's two threads) sum in another order:
# equal up to float32 rounding, ~1e-5 here; a wrong seed or fold would differ by ~1e-2.
FLOAT_TOL = 1e-4
ARGS = dict(input_size=(48, 48), folds=3, epochs=2, weights=None, views=2, seed=0, progress=False)

@pytest.fixture(scope='module')
def ds():
    try: return load_dataset('magnetic_tile').sample(42, seed=0, min_per_class=6)
    except Exception as e: pytest.skip(f'magnetic tile data not found ({e}); set MVGG19_DATA')

@pytest.fixture(scope='module')
def cache(tmp_path_factory): return tmp_path_factory.mktemp('cache')

@pytest.fixture(scope='module')
def run(ds, cache, tmp_path_factory): return cross_validate(ds, out_dir=tmp_path_factory.mktemp('runs'), cache_dir=cache, **ARGS)

def test_end_to_end_metrics_come_from_predictions(ds, run):
    assert sorted(run.runs) == ['mvgg19', 'vgg19'] and len(run.folds) == 3
    assert sorted(np.concatenate(run.folds)) == list(range(len(ds)))
    for m, r in run.runs.items():
        p, df = r['proba'], run.metrics(m)
        np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
        assert len(r['histories']) == 3 and len(r['histories'][0]['val_loss']) == 2
        for k, te in enumerate(run.folds):  # each fold's row is recomputed from its own predictions
            y, pred = ds.labels[te], p[te].argmax(1)
            assert df.loc[f'fold {k}', 'accuracy'] == pytest.approx(accuracy_score(y, pred))
            assert df.loc[f'fold {k}', 'f1'] == pytest.approx(f1_score(y, pred, average='macro', zero_division=0))
        shuffled = run.labels[np.random.default_rng(0).permutation(len(ds))]
        assert not np.allclose(df['accuracy'].values, [accuracy_score(shuffled[te], p[te].argmax(1)) for te in run.folds])

def test_same_seed_same_folds_and_metrics(ds, cache, run, tmp_path):
    again = cross_validate(ds, out_dir=tmp_path, cache_dir=cache, **ARGS)
    assert [list(a) for a in again.folds] == [list(b) for b in run.folds]
    for m in run.runs: np.testing.assert_allclose(again.runs[m]['proba'], run.runs[m]['proba'], atol=FLOAT_TOL)
    other = cross_validate(ds, out_dir=tmp_path/'s1', cache_dir=cache, **{**ARGS, 'seed': 1, 'views': 1})
    assert [list(a) for a in other.folds] != [list(b) for b in run.folds]

SCRIPT = textwrap.dedent('''
    import sys
    from mvgg19_nb.data import load_dataset
    from mvgg19_nb.train import cross_validate
    ds = load_dataset('magnetic_tile').sample(42, seed=0, min_per_class=6)
    cross_validate(ds, out_dir=sys.argv[1], cache_dir=sys.argv[2], **{ARGS!r})
''').replace('{ARGS!r}', repr(ARGS))

def test_killed_run_resumes_to_same_result(ds, cache, run, tmp_path):
    script = tmp_path/'run.py'; script.write_text(SCRIPT)
    out = tmp_path/'runs'
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(cache)], env={**os.environ, 'KERAS_HOME': os.environ['KERAS_HOME']},
                            start_new_session=True)  # its own process group: the kill takes the fold workers too
    deadline = time.time() + 240
    while not list(out.glob('*/vgg19/fold1.npz')) and time.time() < deadline and proc.poll() is None: time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    done = sorted(p.name for p in out.glob('*/*/fold*.npz'))
    assert 'fold1.npz' in done and len(done) < 6, f'the kill should land mid-run, found {done}'
    assert not list(out.rglob('*.tmp*npz')) or all(p.stat().st_size >= 0 for p in out.rglob('*.tmp*npz'))
    resumed = cross_validate(ds, out_dir=out, cache_dir=cache, **ARGS)
    for m in run.runs: np.testing.assert_allclose(resumed.runs[m]['proba'], run.runs[m]['proba'], atol=FLOAT_TOL)

def test_workers_do_not_change_results(ds, cache, run, tmp_path):
    one = cross_validate(ds, out_dir=tmp_path, cache_dir=cache, workers=1, **ARGS)
    assert one.timings['workers'] == 1 and run.timings['workers'] == min(2, os.cpu_count())  # the fixture ran with the default
    for m in run.runs:
        np.testing.assert_allclose(one.runs[m]['proba'], run.runs[m]['proba'], atol=FLOAT_TOL)
        np.testing.assert_allclose(one.runs[m]['histories'][0]['loss'], run.runs[m]['histories'][0]['loss'], rtol=FLOAT_TOL)
