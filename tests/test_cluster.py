"""Ray as the fold runner and as the sweep engine, on a local Ray instance started here (no external service):
the same probabilities as loky, retries, a sweep's results files, and a sweep killed mid-way that resumes."""
import os, signal, subprocess, sys, tempfile, time, uuid
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.pop('RAY_ADDRESS', None)  # a local instance, whatever the environment names
import json
from pathlib import Path

import numpy as np
import pytest

from mvgg19_nb import cluster, folds, train
from mvgg19_nb.cluster import init_ray, run_folds_ray, sweep
from mvgg19_nb.data import DataNotFoundError, load_dataset
from mvgg19_nb.train import cross_validate

# Ray's workers train with the thread count loky's would (cores // workers), so the probabilities usually agree
# exactly; a reused Ray worker may keep another count, and another count sums in another order. Softmax turns an
# absolute error e on the logits into a relative error ~e on every probability, and float32 rounding accumulated
# over one epoch of Adam steps stays far below 1e-4 (~1000 float32 epsilons); a wrong fold or seed differs by ~1e-2.
PROBA_RTOL, PROBA_ATOL = 1e-4, 1e-7  # the absolute floor only for probabilities that underflow towards 0
CV = dict(input_size=(48, 48), folds=2, epochs=1, weights=None, views=1, workers=2, progress=False, baselines=False)
SMALL = dict(max_images=36, input_size=[48, 48], folds=2, epochs=1, views=1)  # the sweep runs' protocol


@pytest.fixture(scope='module')
def ray():
    r = init_ray()
    yield r
    r.shutdown()


@pytest.fixture(scope='module')
def ds():
    try: return load_dataset('magnetic_tile').sample(36, seed=0)
    except DataNotFoundError as e: pytest.skip(f'magnetic tile data not found ({e}); set MVGG19_DATA')


def _cv_on_ray(ds, out_dir, cache_dir, **ray_kwargs):
    "`cross_validate(..., backend='ray')`; with `ray_kwargs`, the registry's Ray backend given them for this call."
    if not ray_kwargs: return cross_validate(ds, out_dir=out_dir, cache_dir=cache_dir, backend='ray', **CV), None
    calls = []
    def runner(tasks, shared, workers):
        calls.append(len(tasks))
        return run_folds_ray(tasks, shared, workers, **ray_kwargs)
    saved = folds.BACKENDS['ray']
    folds.register_fold_backend('ray', runner)
    try: return cross_validate(ds, out_dir=out_dir, cache_dir=cache_dir, backend='ray', **CV), calls
    finally: folds.register_fold_backend('ray', saved)


def test_folds_on_ray_match_loky(ray, ds, tmp_path, monkeypatch):
    from mvgg19_nb import features, shards
    cache = tmp_path/'cache'
    loky = cross_validate(ds, out_dir=tmp_path/'loky', cache_dir=cache, **CV)
    extracted = []  # the Ray run's own cache is extracted on Ray (one shard, one actor), the same features
    def on_ray(x, view_path, *args, **kwargs):
        extracted.append(Path(view_path).name)
        return shards.extract_view_ray(x, view_path, *args, **kwargs)
    monkeypatch.setitem(features.EXTRACTORS, 'ray', on_ray)
    for label, kwargs in [('files', {}), ('object store', dict(cache='object_store'))]:
        res, calls = _cv_on_ray(ds, tmp_path/label, tmp_path/'ray cache' if label == 'files' else cache, **kwargs)
        assert calls is None or len(calls) == 1, calls  # every fold in one call of the Ray runner
        pids = {t['pid'] for m in res.runs for t in res.runs[m]['timings']}
        assert os.getpid() not in pids, f'{label}: folds trained in the test process, not in Ray workers'
        for m in loky.runs:
            np.testing.assert_allclose(res.runs[m]['proba'], loky.runs[m]['proba'], rtol=PROBA_RTOL, atol=PROBA_ATOL,
                                       err_msg=f'{m}, cache in {label}')
            np.testing.assert_allclose(res.runs[m]['histories'][0]['loss'], loky.runs[m]['histories'][0]['loss'],
                                       rtol=PROBA_RTOL)
    assert extracted == ['view0.npy']  # cross_validate(backend='ray') extracted its features on Ray


def flaky(task, shared, threads):
    "Fails on a fold's first attempt (a marker file remembers it), succeeds on the next."
    marker = Path(shared['run_dir'])/f'{task[0]}-{task[1]}.tried'
    if marker.exists(): return task[0], task[1], 0.0
    marker.touch()
    raise OSError(f'first attempt at {task[0]} fold {task[1] + 1} fails')


def test_failed_fold_is_retried_then_named(ray, tmp_path):
    import ray.cloudpickle as cp
    cp.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module: `flaky` goes by value
    tasks = [('vgg19', 0, None, None, None), ('mvgg19', 1, None, None, None)]
    (tmp_path/'a').mkdir(); (tmp_path/'b').mkdir()
    done = sorted(run_folds_ray(tasks, dict(run_dir=str(tmp_path/'a')), 2, fn=flaky))
    assert done == [('mvgg19', 1, 0.0), ('vgg19', 0, 0.0)]
    with pytest.raises(RuntimeError, match='2 of 2 fold task.*after 1 try: .*mvgg19 fold 2: OSError: first attempt'):
        list(run_folds_ray(tasks, dict(run_dir=str(tmp_path/'b')), 2, retries=0, fn=flaky))


def _check_results(path: Path, seed: int):
    "A results file of the small protocol with `seed`, both models over 2 folds, and its notebook run to the end."
    r = json.loads(path.read_text())
    assert {k: r['parameters'][k] for k in (*SMALL, 'seed')} == {**SMALL, 'seed': seed}, r['parameters']
    assert r['n_images'] == 36 and r['run_dir']
    for m in ('vgg19', 'mvgg19'):
        folds = r['models'][m]['per_fold']
        assert len(folds) == 2 and all(0 <= f['accuracy'] <= 1 for f in folds), folds
    nb = json.loads(path.with_suffix('.ipynb').read_text())
    assert nb['metadata']['papermill']['end_time'] and not nb['metadata']['papermill']['exception']
    errors = [o for c in nb['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors, errors
    assert ''.join(nb['cells'][0]['source']).startswith('# Results: Magnetic')  # retitled, as `mvgg19 run` does


@pytest.fixture(scope='module')
def swept(ray, tmp_path_factory):
    "A finished sweep of two runs (two parameter sets, each its own folder) and its output lines."
    root = tmp_path_factory.mktemp('sweep')
    common = {**SMALL, 'runs_dir': str(root/'runs'), 'cache_dir': str(root/'cache')}
    sets = [{'seed': 0, 'output_dir': str(root/'a')}, {'seed': 1, 'output_dir': str(root/'b')}]
    lines, t0 = [], time.perf_counter()
    report = sweep(['magnetic_tile'], sets, params=common, log=lines.append)
    print(f'two-run sweep: {time.perf_counter() - t0:.0f} s')
    return root, common, sets, report, lines


def test_sweep_writes_both_results_and_skips_them_after(swept):
    root, common, sets, report, lines = swept
    assert [r['status'] for r in report] == ['done', 'done'], lines
    assert sum(l.startswith(('[1/2] magnetic_tile (set', '[2/2] magnetic_tile (set')) and ': done in ' in l
               for l in lines) == 2, lines  # one progress line per finished run
    for seed, d in enumerate('ab'): _check_results(root/d/'magnetic_tile.json', seed)
    lines = []
    again = sweep(['magnetic_tile'], sets, params=common, log=lines.append)
    assert [r['status'] for r in again] == ['skipped', 'skipped'] and len(lines) == 2, lines
    changed = cluster.plan_sweep(['magnetic_tile'], sets, params={**common, 'epochs': 2})  # another protocol: to run
    assert [cluster.is_finished(r) for r in changed] == [False, False]
    moved = cluster.plan_sweep(['magnetic_tile'], sets, params={**common, 'cache_dir': str(root/'elsewhere')})
    assert [cluster.is_finished(r) for r in moved] == [True, True]  # where the cache lives does not change results


def _marked(mark: str) -> list:
    "Processes (pid, command) whose environment holds `mark`: the sweep, Ray's processes, workers and kernels."
    found = []
    for p in Path('/proc').iterdir():
        if not p.name.isdigit(): continue
        try:
            if mark.encode() in (p/'environ').read_bytes():
                cmdline = (p/'cmdline').read_bytes().replace(b'\0', b' ')[:100]
                found.append((int(p.name), cmdline.decode(errors='replace')))
        except OSError: pass
    return found


@pytest.mark.skipif(not Path('/proc/self/environ').exists(), reason='finds the processes left behind through /proc')
def test_killed_sweep_resumes_and_skips_finished_runs(swept, tmp_path):
    root, common, sets, _, _ = swept
    third = {'seed': 2, 'output_dir': str(root/'c')}
    (tmp_path/'sets.yaml').write_text(''.join(f'- {json.dumps(s)}\n' for s in [*sets, third]))
    mark = f'MVGG19_TEST_MARK_{uuid.uuid4().hex}'
    cmd = [sys.executable, '-m', 'mvgg19_nb.cluster', 'sweep', '--datasets', 'magnetic_tile',
           '--params-file', str(tmp_path/'sets.yaml')]
    for k, v in common.items(): cmd += ['-p', k, json.dumps(v) if isinstance(v, list) else str(v)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, 'MVGG19_TEST_MARK': mark})
    out, notebook = [], root/'c'/'magnetic_tile.running.ipynb'  # the page of a run that has not finished
    try:
        for line in proc.stdout:  # the two finished runs are skipped, the third starts
            out.append(line)
            if line.startswith('running 1 of 3 runs'): break
        deadline = time.time() + 120
        started = lambda: notebook.exists() and '"completed"' in notebook.read_text(errors='replace')  # a cell ran
        while not started() and time.time() < deadline:
            assert proc.poll() is None, ''.join(out)
            time.sleep(0.5)
        assert notebook.exists(), f'the third run did not start in 120 s: {"".join(out)}'
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep, its local Ray instance and the run's notebook kernel
        proc.wait()
    assert sum('skipped' in l for l in out) == 2, out
    assert not (root/'c'/'magnetic_tile.json').exists(), 'the third run should have been killed mid-way'
    assert not (root/'c'/'magnetic_tile.ipynb').exists()  # nothing published by the killed run
    deadline, left = time.time() + 60, _marked(mark)
    while left and time.time() < deadline: time.sleep(1); left = _marked(mark)
    for pid, _ in left: os.kill(pid, signal.SIGKILL)
    assert not left, f'processes left running after the kill: {left}'
    lines = []
    report = sweep(['magnetic_tile'], tmp_path/'sets.yaml', params=common, log=lines.append)
    assert [r['status'] for r in report] == ['skipped', 'skipped', 'done'], lines
    _check_results(root/'c'/'magnetic_tile.json', 2)


def test_param_set_files_read_yaml_1_2_scalars(tmp_path):
    from mvgg19_nb.cluster import read_param_sets
    f = tmp_path/'sets.yaml'
    f.write_text('- {epochs: 0012, sample_reason: 1:30, data_root: "0001"}\n- {augment: no}\n')
    assert read_param_sets(f) == [{'epochs': 12, 'sample_reason': '1:30', 'data_root': '0001'}, {'augment': 'no'}]


# Feature extraction on Ray (mvgg19_nb.shards): tiny images, shards of 8, two actors of the module's local instance.
# The actors run the backbone on one thread each, the local path on the process's threads: another summation order.
# VGG19's 16 convolutions each add float32 rounding of ~1e-7 relative to sums of magnitude ~|features|: 1e-4
# relative (and 1e-5 of the largest feature, for those near 0) is far above it and far below a wrong image (~1).
FEAT_RTOL, FEAT_ATOL = 1e-4, 1e-5
TINY = dict(input_size=(32, 32), weights=None, seed=0, views=2, progress=False)


def _tiny_images(n=40):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype='uint8')


def _same_cache(a, b):
    "Two `extract_features` results: the same folder name, files, description entries' shapes, features."
    assert a.folder.name == b.folder.name  # the same key: the backend is not part of it
    assert sorted(p.name for p in a.folder.iterdir()) == sorted(p.name for p in b.folder.iterdir())
    da, db = (json.loads((f.folder/'layout.json').read_text()) for f in (a, b))
    assert da['spec'] == db['spec'] and da['layout'] == db['layout'] and da['format'] == db['format']
    assert {k: e['shape'] for k, e in da['views'].items()} == {k: e['shape'] for k, e in db['views'].items()}
    va, vb = np.asarray(a.views), np.asarray(b.views)
    np.testing.assert_allclose(va, vb, rtol=FEAT_RTOL, atol=FEAT_ATOL * np.abs(vb).max())


@pytest.fixture
def ray_shards_of_8(monkeypatch):
    "`extract_features(backend='ray')` in shards of 8 images on two actors, for this test."
    from functools import partial
    from mvgg19_nb import features, shards
    monkeypatch.setitem(features.EXTRACTORS, 'ray', partial(shards.extract_view_ray, shard_size=8, workers=2))


def test_extraction_on_ray_equals_the_local_one(ray, ray_shards_of_8, tmp_path):
    from mvgg19_nb.features import extract_features
    imgs = _tiny_images()
    local = extract_features(imgs, tmp_path/'local', 'tiny', **TINY)
    on_ray = extract_features(imgs, tmp_path/'ray', 'tiny', **TINY, backend='ray')
    _same_cache(on_ray, local)
    assert not list(on_ray.folder.glob('*.shards'))  # the extraction's temporary data is gone
    again = extract_features(imgs, tmp_path/'ray', 'tiny', **TINY, backend='ray')
    assert again.extract_s == 0.0  # a cache written on Ray is read back as any other


_KILLED = '''
import sys, time
from functools import partial
import numpy as np
from mvgg19_nb import features, shards
from mvgg19_nb.features import extract_features
slow = shards.write_atomic
def write_slowly(path, content):  # one shard a second, so that the kill lands mid-way
    slow(path, content); time.sleep(1.0)
shards.write_atomic = write_slowly
features.EXTRACTORS['ray'] = partial(shards.extract_view_ray, shard_size=8, workers=2)
extract_features(np.load(sys.argv[1]), sys.argv[2], 'tiny', input_size=(32, 32), weights=None, seed=0, views=1,
                 progress=False, backend='ray')
'''


def test_killed_extraction_resumes_from_its_finished_shards(ray, ray_shards_of_8, tmp_path, monkeypatch):
    from mvgg19_nb import shards
    from mvgg19_nb.features import extract_features
    imgs = _tiny_images()
    np.save(tmp_path/'imgs.npy', imgs)
    (tmp_path/'killed.py').write_text(_KILLED)
    env = {**os.environ, 'RAY_ADDRESS': ray.get_runtime_context().gcs_address}  # this module's instance, and token
    proc = subprocess.Popen([sys.executable, str(tmp_path/'killed.py'), str(tmp_path/'imgs.npy'), str(tmp_path/'c')],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found, deadline = [], time.time() + 180
    try:
        while len(found) < 2 and time.time() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
            found = list(tmp_path.glob('c/features-*/view0.npy.shards/*.npy'))
    finally:
        proc.send_signal(signal.SIGKILL); proc.wait()
    assert 2 <= len(found) < 5, f'{len(found)} shards when the extraction was killed'
    folder = found[0].parent.parent
    assert not (folder/'view0.npy').exists()  # killed before the view was assembled
    kept = {p.name: p.stat().st_mtime_ns for p in folder.glob('view0.npy.shards/*.npy')}
    written, at_end = [], {}
    real_write, real_remove = shards.write_atomic, shards.remove_shards
    monkeypatch.setattr(shards, 'write_atomic', lambda path, content: (written.append(Path(path).name),
                                                                       real_write(path, content))[1])
    def remove(view_path):  # the shards as they are when the view is complete, just before they are removed
        at_end.update({p.name: p.stat().st_mtime_ns for p in shards.shard_dir(view_path).glob('*.npy')})
        real_remove(view_path)
    monkeypatch.setattr(shards, 'remove_shards', remove)
    resumed = extract_features(imgs, tmp_path/'c', 'tiny', **{**TINY, 'views': 1}, backend='ray')
    assert {k: at_end[k] for k in kept} == kept  # the finished shards were reused as they were
    assert sorted(written) == sorted(set(at_end) - set(kept)) and len(at_end) == 5  # only the others computed
    assert not shards.shard_dir(folder/'view0.npy').exists()
    _same_cache(resumed, extract_features(imgs, tmp_path/'local', 'tiny', **{**TINY, 'views': 1}))


def test_a_bad_extraction_backend_is_one_line(tmp_path):
    from mvgg19_nb.features import extract_features
    from mvgg19_nb.params import ParameterError, check_params
    with pytest.raises(ParameterError) as e:
        extract_features(_tiny_images(2), tmp_path/'cache', 'tiny', **TINY, backend='dask')
    assert str(e.value) == "backend='dask': use one of 'local', 'ray'"
    assert not (tmp_path/'cache').exists()  # refused before any work
    with pytest.raises(ParameterError) as e: check_params(backend='dask')  # `mvgg19 run -p backend dask`
    assert str(e.value) == "backend='dask': use one of 'loky', 'serial', 'ray'"


def test_sweep_passes_the_backend_to_its_runs(ds, tmp_path):
    runs = cluster.plan_sweep(['magnetic_tile'], params={**SMALL, 'backend': 'ray', 'output_dir': str(tmp_path)})
    assert [r.params['backend'] for r in runs] == ['ray']
