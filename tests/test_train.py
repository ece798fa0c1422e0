"""cross_validate end to end on 42 magnetic tile images, or synthetic ones where they are absent (conftest's `ds`;
random backbone: no ImageNet download here): resume after a kill, determinism, stacked heads against the per-fold
reference, worker processes and backends, parameters refused before any work, the committed runs' identities."""
import inspect, json, os, pickle, re, signal, subprocess, sys, tempfile, textwrap, time, types
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
from pathlib import Path
import numpy as np, pytest
from sklearn.metrics import accuracy_score, f1_score
from mvgg19_nb import folds, train
from mvgg19_nb.runs import load_fold
from mvgg19_nb.data import Dataset
from mvgg19_nb.train import cross_validate

# Folds trained with other thread counts (worker processes with one thread each vs the main process's two) sum in
# another order: equal up to float32 rounding, ~1e-5 on these probabilities; a wrong seed, batch or fold differs by
# ~1e-2. Stacked and per-fold heads in the same process run the same kernels: they agree far closer than this.
FLOAT_TOL = 1e-4
ARGS = dict(input_size=(48, 48), folds=3, epochs=2, weights=None, views=2, seed=0, progress=False)
FOLD_FILE = re.compile(r'fold\d+\.npz')  # a finished fold; `fold1.npz.tmp123.npz` is one being written

@pytest.fixture(scope='module')
def cache(tmp_path_factory): return tmp_path_factory.mktemp('cache')

@pytest.fixture(scope='module')
def run(ds, cache, tmp_path_factory):
    # stacked heads, in STACKED_WORKERS process(es); the per-fold default is checked against them
    return cross_validate(ds, out_dir=tmp_path_factory.mktemp('runs'), cache_dir=cache, heads='stacked', **ARGS)

def same_results(a, b, tol=FLOAT_TOL):
    for m in b.runs:
        np.testing.assert_allclose(a.runs[m]['proba'], b.runs[m]['proba'], atol=tol)
        for ha, hb in zip(a.runs[m]['histories'], b.runs[m]['histories']):
            assert sorted(ha) == sorted(hb)
            for k in hb: np.testing.assert_allclose(ha[k], hb[k], rtol=tol, atol=tol)

def test_end_to_end_metrics_come_from_predictions(ds, run):
    assert sorted(run.runs) == ['mvgg19', 'vgg19'] and len(run.folds) == 3
    assert run.timings['heads'] == 'stacked'
    assert sorted(np.concatenate(run.folds)) == list(range(len(ds)))
    for m, r in run.runs.items():
        p, df = r['proba'], run.metrics(m)
        np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
        assert len(r['histories']) == 3 and len(r['histories'][0]['val_loss']) == 2
        assert [t['stacked'] for t in r['timings']] == [3, 3, 3]  # each model's three folds trained as one model
        for k, te in enumerate(run.folds):  # each fold's row is recomputed from its own predictions
            y, pred = ds.labels[te], p[te].argmax(1)
            assert df.loc[f'fold {k}', 'accuracy'] == pytest.approx(accuracy_score(y, pred))
            assert df.loc[f'fold {k}', 'f1'] == pytest.approx(f1_score(y, pred, average='macro', zero_division=0))
        shuffled = run.labels[np.random.default_rng(0).permutation(len(ds))]
        assert not np.allclose(df['accuracy'].values,
                               [accuracy_score(shuffled[te], p[te].argmax(1)) for te in run.folds])

def test_same_seed_same_folds_and_metrics(ds, cache, run, tmp_path):
    again = cross_validate(ds, out_dir=tmp_path, cache_dir=cache, **ARGS)
    assert [list(a) for a in again.folds] == [list(b) for b in run.folds]
    same_results(again, run)
    other = cross_validate(ds, out_dir=tmp_path/'s1', cache_dir=cache, **{**ARGS, 'seed': 1, 'views': 1})
    assert [list(a) for a in other.folds] != [list(b) for b in run.folds]

SCRIPT = textwrap.dedent('''
    import pickle, sys
    from mvgg19_nb.train import cross_validate
    with open(sys.argv[3], 'rb') as f: ds = pickle.load(f)  # the test's own dataset
    cross_validate(ds, out_dir=sys.argv[1], cache_dir=sys.argv[2], **{ARGS!r})
''').replace('{ARGS!r}', repr(ARGS))

def test_killed_run_resumes_to_same_result(ds, cache, run, tmp_path):
    script = tmp_path/'run.py'; script.write_text(SCRIPT)
    out, data = tmp_path/'runs', tmp_path/'ds.pkl'
    data.write_bytes(pickle.dumps(ds))
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(cache), str(data)],
                            env={**os.environ, 'KERAS_HOME': os.environ['KERAS_HOME']},
                            start_new_session=True)  # its own process group: the kill takes the fold workers too
    deadline = time.time() + 240
    while not list(out.glob('*/vgg19/fold1.npz')) and time.time() < deadline and proc.poll() is None: time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    done = sorted(p for p in out.glob('*/*/*.npz') if FOLD_FILE.fullmatch(p.name))
    assert 'fold1.npz' in [p.name for p in done] and len(done) < 6, f'the kill should land mid-run, found {done}'
    for p in done:  # written under a temporary name, then renamed: a fold file is whole, or absent
        te, proba, history, timing = load_fold(p)
        assert len(proba) == len(te) and len(history['loss']) == ARGS['epochs'] and timing['n_test'] == len(te)
    resumed = cross_validate(ds, out_dir=out, cache_dir=cache, **ARGS)
    same_results(resumed, run)

def test_heads_workers_and_backends_do_not_change_results(ds, cache, run, tmp_path, monkeypatch):
    # the per-fold reference in this process ('serial' even with workers=2), and in default_workers processes
    serial = cross_validate(ds, out_dir=tmp_path/'serial', cache_dir=cache, heads='per_fold', backend='serial',
                            workers=2, **ARGS)
    assert serial.timings['workers'] == 1 and serial.timings['heads'] == 'per_fold'
    assert {t['pid'] for r in serial.runs.values() for t in r['timings']} == {os.getpid()}
    assert all('stacked' not in t for r in serial.runs.values() for t in r['timings'])
    same_results(serial, run)
    # by default one process per core (at most 8, at most one per fold) on a CPU: on a 3-core CPU, 3 for 6 folds
    monkeypatch.setattr(folds, 'cpu_cores', lambda: 3)
    monkeypatch.setattr(folds.keras.distribution, 'list_devices', lambda *a: ['cpu:0'])
    parallel = cross_validate(ds, out_dir=tmp_path/'loky', cache_dir=cache, heads='per_fold', **ARGS)
    assert parallel.timings['workers'] == 3  # the fixture's 2 models x 3 folds, on 3 cores
    assert os.getpid() not in {t['pid'] for r in parallel.runs.values() for t in r['timings']}  # in the workers
    same_results(parallel, run)
    # stacked heads, one stack per model, in two processes
    two = cross_validate(ds, out_dir=tmp_path/'two', cache_dir=cache, heads='stacked', workers=2, **ARGS)
    assert run.timings['workers'] == min(folds.STACKED_WORKERS, 2) and two.timings['workers'] == 2
    assert len({t['pid'] for r in two.runs.values() for t in r['timings']}) == 2
    same_results(two, run)

def test_heads_and_backend_leave_the_run_folder_alone(ds, cache, run):
    "Neither `heads` nor `backend` (nor how a parameter is spelt) is part of the run: a rerun reuses every fold."
    out, files = Path(run.params['run_dir']).parent, sorted(Path(run.params['run_dir']).glob('*/fold*.npz'))
    stamps = [p.stat().st_mtime_ns for p in files]
    # 48: a square; True: the default augmentations
    again = cross_validate(ds, out_dir=out, cache_dir=cache, heads='per_fold', backend='serial',
                           **{**ARGS, 'input_size': 48, 'augment': True})
    assert again.params['run_dir'] == run.params['run_dir'] and len(files) == 6
    assert [p.stat().st_mtime_ns for p in files] == stamps  # nothing retrained
    assert (run.timings['folds_reused'], again.timings['folds_reused']) == (0, 6)  # what the page says it read back
    same_results(again, run, tol=0)

def test_probes_are_shared_by_the_runs_of_one_feature_cache(ds, cache, tmp_path, monkeypatch):
    "Runs that differ only in their heads (here epochs) read the linear probes back from the feature cache."
    first = cross_validate(ds, out_dir=tmp_path/'a', cache_dir=cache, **ARGS)
    kept = set(cache.glob('features-*/baselines-*.npz'))  # beside the features
    assert kept
    def computed(*a, **k): raise AssertionError('the probes were computed again')
    monkeypatch.setattr(train, 'compute_baselines', computed)
    other_heads = cross_validate(ds, out_dir=tmp_path/'b', cache_dir=cache, **{**ARGS, 'epochs': 1})
    assert other_heads.params['run_dir'] != first.params['run_dir']
    for k in first.baselines: np.testing.assert_array_equal(other_heads.baselines[k], first.baselines[k])
    assert set(cache.glob('features-*/baselines-*.npz')) == kept  # read back, not written anew
    with pytest.raises(AssertionError, match='computed again'):  # the same features, other folds: other probes
        cross_validate(ds, out_dir=tmp_path/'c', cache_dir=cache, **{**ARGS, 'epochs': 1, 'folds': 2})

def test_ray_backend_delegates_to_the_cluster_module(ds, cache, run, tmp_path, monkeypatch):
    calls = []
    def run_folds_ray(tasks, shared, workers, address=None):
        calls.append(([(t[0], t[1]) for t in tasks], workers, address))
        for t in tasks: yield folds.run_fold(t, shared)
    monkeypatch.setitem(sys.modules, 'mvgg19_nb.cluster', types.SimpleNamespace(run_folds_ray=run_folds_ray))
    res = cross_validate(ds, out_dir=tmp_path, cache_dir=cache, backend='ray', workers=3, **ARGS)
    assert calls == [([(m, k) for m in ('vgg19', 'mvgg19') for k in range(3)], 3, None)]  # one fold per Ray task
    assert res.timings['fold_backend'] == 'ray' and res.timings['heads'] == 'per_fold'
    same_results(res, run)
    monkeypatch.setitem(sys.modules, 'mvgg19_nb.cluster', None)  # as if the module were missing: `import` fails
    with pytest.raises(ImportError, match="backend='ray' needs mvgg19_nb.cluster.run_folds_ray"):
        cross_validate(ds, out_dir=tmp_path/'missing', cache_dir=cache, backend='ray', **ARGS)
    assert not (tmp_path/'missing').exists()  # refused before any work

@pytest.mark.parametrize('bad, says', [
    (dict(epochs=0), 'epochs=0: use an integer >= 1'),
    (dict(folds=100), 'folds=100'),
    (dict(models=['resnet']), "unknown model 'resnet'"),
    (dict(bn_stats='batch'), "bn_stats='batch'"),
    (dict(heads='both'), "heads='both': use one of 'stacked', 'per_fold'"),
    (dict(backend='dask'), "backend='dask': use one of 'loky', 'serial', 'ray'"),
])
def test_parameters_refused_before_any_work(ds, tmp_path, bad, says, monkeypatch):
    def expensive(*a, **k): raise AssertionError('work began before the parameters were refused')
    for name in ('digests', 'load', 'load_valid'): monkeypatch.setattr(Dataset, name, expensive)  # reading the files
    for name in ('extract_features', 'make_folds', 'run_folds'): monkeypatch.setattr(train, name, expensive)
    with pytest.raises(ValueError, match=re.escape(says)):
        cross_validate(ds, out_dir=tmp_path/'runs', cache_dir=tmp_path/'cache', **{**ARGS, **bad})
    assert not list(tmp_path.iterdir())  # no run folder, no cache

RESULTS = Path(__file__).resolve().parents[1]/'book'/'results'

@pytest.mark.parametrize('page', ['casting', 'elpv', 'magnetic_tile', 'bridge_dbcc'])
def test_committed_runs_keep_their_identity(page):
    "The parameters of each committed results page, resolved as `cross_validate` resolves them, name its run folder."
    rec = json.loads((RESULTS/f'{page}.json').read_text())
    p, cv = rec['parameters'], rec['cross_validation']
    # the template's call: `augment=True` means the defaults; `standardize_trunk` goes in `model_kwargs`
    given = dict(models=p['models'], input_size=tuple(p['input_size']), folds=p['folds'], epochs=p['epochs'],
                 batch_size=p['batch_size'], weights=p['weights'], freeze=p['freeze'], preprocessing=p['preprocessing'],
                 val_split=p['val_split'], seed=p['seed'], bn_stats=p['bn_stats'], precision=p['precision'],
                 model_kwargs=dict(standardize_trunk=p['standardize_trunk']),
                 augment=None if p['augment'] is True else p['augment'], views=p['views'],
                 calibrate=p.get('calibrate', 'none'), engine=p.get('engine', 'keras'))  # absent before they existed
    defaults = {k: v.default for k, v in inspect.signature(cross_validate).parameters.items() if k != 'ds'}
    labels = np.repeat(np.arange(len(rec['classes'])), [rec['counts'][c] for c in rec['classes']])
    data = Dataset(rec['dataset'], [f'{i}.png' for i in range(len(labels))], labels, rec['classes'])  # no files read
    o = train.cv_options(data, **{**defaults, **given})
    facts = {k: cv[k] for k in ('dataset', 'n', 'content', 'classes', 'labels')}  # digests of the data, as recorded
    params = train.run_params(facts, o, cv['epochs'], backend=cv['backend'], keras_version=cv['keras'])
    assert params == cv
    assert f"{rec['dataset']}-{train.run_identity(params)}" == Path(rec['run_dir']).name

def test_temperature_calibration_fits_each_fold_on_its_own_validation_part(ds, cache, run, tmp_path):
    from mvgg19_nb.decisions import fit_temperature
    from mvgg19_nb.runs import fold_file, fold_validation
    for heads in ('per_fold', 'stacked'):
        cal = cross_validate(ds, out_dir=tmp_path/heads, cache_dir=cache, heads=heads, calibrate='temperature', **ARGS)
        assert cal.params['calibrate'] == 'temperature' and cal.params['run_dir'] != run.params['run_dir']
        same_results(cal, run)  # the heads train as in the uncalibrated run: only the rescaled copy is new
        for m, r in cal.runs.items():
            assert len(r['temperatures']) == 3 and all(t > 0 for t in r['temperatures'])
            np.testing.assert_array_equal(r['calibrated'].argmax(1), r['proba'].argmax(1))  # T keeps the ranking
            for k, te in enumerate(cal.folds):
                val, val_proba = fold_validation(fold_file(cal.params['run_dir'], m, k))
                assert set(val).isdisjoint(te) and len(val) == r['timings'][k]['n_val']  # the fold's own part
                assert fit_temperature(val_proba, ds.labels[val]) == pytest.approx(r['temperatures'][k])
                if abs(np.log(r['temperatures'][k])) > 0.05:  # a temperature that rescales: the test rows change
                    assert not np.allclose(r['calibrated'][te], r['proba'][te], atol=1e-4)
    assert 'calibrate' not in run.params  # the default keeps the identity of runs made before the option
    with pytest.raises(ValueError, match="calibrate=temperature: .*use val_split > 0"):
        cross_validate(ds, out_dir=tmp_path/'no_val', cache_dir=cache, calibrate='temperature',
                       **{**ARGS, 'val_split': 0})
    assert not (tmp_path/'no_val').exists()
