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


def test_folds_on_ray_match_loky(ray, ds, tmp_path):
    cache = tmp_path/'cache'
    loky = cross_validate(ds, out_dir=tmp_path/'loky', cache_dir=cache, **CV)
    for label, kwargs in [('files', {}), ('object store', dict(cache='object_store'))]:
        res, calls = _cv_on_ray(ds, tmp_path/label, cache, **kwargs)
        assert calls is None or len(calls) == 1, calls  # every fold in one call of the Ray runner
        pids = {t['pid'] for m in res.runs for t in res.runs[m]['timings']}
        assert os.getpid() not in pids, f'{label}: folds trained in the test process, not in Ray workers'
        for m in loky.runs:
            np.testing.assert_allclose(res.runs[m]['proba'], loky.runs[m]['proba'], rtol=PROBA_RTOL, atol=PROBA_ATOL,
                                       err_msg=f'{m}, cache in {label}')
            np.testing.assert_allclose(res.runs[m]['histories'][0]['loss'], loky.runs[m]['histories'][0]['loss'],
                                       rtol=PROBA_RTOL)


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
