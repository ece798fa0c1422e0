"""State you can trust: damaged, swapped or edited fold files are trained again, never used; one run per run
folder; loky workers end with the process that started them. Small data: 42 magnetic tile images, or synthetic ones
where they are absent (conftest's `ds`), 48 px."""
import os, pickle, re, shutil, signal, subprocess, sys, tempfile, textwrap, time
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
import json
from pathlib import Path
import numpy as np, pytest
from mvgg19_nb import cli, folds, train
from mvgg19_nb.runs import RunLocked, check_fold, run_lock
from mvgg19_nb.train import cross_validate

ARGS = dict(input_size=(48, 48), folds=3, epochs=2, weights=None, views=2, seed=0)
SERIAL = dict(ARGS, backend='serial')  # every fold in this process: a retrained fold equals the clean run's bit for bit

@pytest.fixture(scope='module')
def cache(tmp_path_factory): return tmp_path_factory.mktemp('cache')

@pytest.fixture(scope='module')
def clean(ds, cache, tmp_path_factory):
    return cross_validate(ds, out_dir=tmp_path_factory.mktemp('clean'), cache_dir=cache, progress=False, **SERIAL)

@pytest.fixture
def copy(clean, tmp_path):
    "A copy of the clean run's folder under a new `out_dir`: (out_dir, run folder)."
    run_dir = Path(clean.params['run_dir'])
    shutil.copytree(run_dir, tmp_path/'runs'/run_dir.name)
    return tmp_path/'runs', tmp_path/'runs'/run_dir.name

def same(a, b):
    for m in b.runs:
        np.testing.assert_array_equal(a.runs[m]['proba'], b.runs[m]['proba'])
        assert a.runs[m]['histories'] == b.runs[m]['histories']
    for k in b.baselines: np.testing.assert_array_equal(a.baselines[k], b.baselines[k])

def _edit(path, **arrays):
    "Rewrite the fold file `path` as a valid .npz with some of its arrays replaced (its identity kept)."
    with np.load(path) as z: kept = dict(z)
    np.savez(path, **{**kept, **arrays})

def _reversed_proba(path):
    with np.load(path) as z: _edit(path, proba=z['proba'][::-1].copy())

def _drop_identity(path):
    "As a fold file written before fold files carried their identity."
    with np.load(path) as z: kept = {k: z[k] for k in z.files if k != 'identity'}
    np.savez(path, **kept)

def _flip_proba_byte(path):
    data = bytearray(path.read_bytes())
    with np.load(path) as z: at = bytes(data).find(z['proba'].tobytes())
    assert at > 0
    data[at + 5] ^= 0x40
    path.write_bytes(bytes(data))

DAMAGES = {  # name: (what is done to vgg19/fold1.npz, what the line says)
    'truncated': (lambda p, r: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), 'cannot be read, truncated'),
    'zero-byte': (lambda p, r: p.write_bytes(b''), 'is empty (0 bytes)'),
    'fold swapped': (lambda p, r: shutil.copy(r/'vgg19'/'fold2.npz', p), 'holds fold 2 of vgg19, not fold 1 of vgg19'),
    'model swapped': (lambda p, r: shutil.copy(r/'mvgg19'/'fold1.npz', p),
                      'holds fold 1 of mvgg19, not fold 1 of vgg19'),
    'arrays edited': (lambda p, r: _reversed_proba(p), 'no longer match their checksum'),
    'byte flipped': (lambda p, r: _flip_proba_byte(p), ('Bad CRC-32', 'no longer match their checksum')),  # either
    'older version': (lambda p, r: _drop_identity(p), 'has no identity (written by an older version)'),
}

@pytest.mark.parametrize('damage', DAMAGES)
def test_damaged_fold_file_is_trained_again(ds, cache, clean, copy, damage, capsys):
    out, run_dir = copy
    bad, (do, says) = run_dir/'vgg19'/'fold1.npz', DAMAGES[damage]
    do(bad, run_dir)
    others = {p: p.stat().st_mtime_ns for p in run_dir.glob('*/fold*.npz') if p != bad}
    capsys.readouterr()
    again = cross_validate(ds, out_dir=out, cache_dir=cache, progress=True, **SERIAL)
    printed = capsys.readouterr().out
    lines = [l for l in printed.splitlines() if 'fold file' in l]
    says = (says,) if isinstance(says, str) else says
    assert len(lines) == 1 and lines[0].startswith(f'fold file {bad} ') and any(s in lines[0] for s in says), lines
    assert 'moved aside to fold1.npz.bad' in lines[0] and (run_dir/'vgg19'/'fold1.npz.bad').exists()
    assert 'training 1 fold models' in printed
    assert {p: p.stat().st_mtime_ns for p in others} == others  # only the damaged fold was trained again
    same(again, clean)
    check_fold(bad, 'vgg19', 1, clean.folds[1], run_dir.name.rsplit('-', 1)[1])  # its new file is whole and its own

def test_damage_without_progress_is_a_warning(ds, cache, clean, copy):
    out, run_dir = copy
    (run_dir/'mvgg19'/'fold0.npz').write_bytes(b'')
    (run_dir/'baselines.npz').write_bytes(b'PK\x03\x04')
    with pytest.warns(UserWarning) as w:
        again = cross_validate(ds, out_dir=out, cache_dir=cache, progress=False, **SERIAL)
    said = [str(x.message) for x in w if 'fold file' in str(x.message) or 'baselines file' in str(x.message)]
    assert len(said) == 2 and str(run_dir/'mvgg19'/'fold0.npz') in said[0] and str(run_dir/'baselines.npz') in said[1]
    same(again, clean)

def test_second_run_on_the_same_folder_is_refused(ds, cache, clean, copy, monkeypatch):
    out, run_dir = copy
    def expensive(*a, **k): raise AssertionError('a refused run extracted, loaded or trained')
    with monkeypatch.context() as mp, run_lock(run_dir):  # as a run in this process holds it; another process: below
        for name in ('extract_features', 'fold_inputs', 'train_folds', 'collect_folds'):
            mp.setattr(train, name, expensive)
        mp.setattr(type(ds), 'load', expensive)
        with pytest.raises(RunLocked, match=re.escape(f'run folder {run_dir} is in use by process {os.getpid()} on ')):
            cross_validate(ds, out_dir=out, cache_dir=cache, progress=False, **SERIAL)  # at once: no waiting
    code = textwrap.dedent(f'''
        from mvgg19_nb.runs import run_lock
        import time
        with run_lock({str(run_dir)!r}): print('held', flush=True); time.sleep(120)''')
    env = {**os.environ, 'PYTHONPATH': str(Path(train.__file__).parents[1])}  # this checkout's mvgg19_nb
    holder = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(RunLocked, match=f'is in use by process {holder.pid} on '):
            cross_validate(ds, out_dir=out, cache_dir=cache, progress=False, **SERIAL)
    finally: holder.kill(); holder.wait()  # SIGKILL: the lock goes with the process
    same(cross_validate(ds, out_dir=out, cache_dir=cache, progress=False, **SERIAL), clean)

def test_cli_reports_a_locked_run_in_one_line(tmp_path, monkeypatch, capsys):
    import papermill as pm
    from fixtures import make_folder
    said = f'run folder {tmp_path}/runs/folder-0123 is in use by process 4242 on host (a cross_validate ...)'
    def run(name, output=None, **kw): raise pm.PapermillExecutionError(5, 5, 'cv', 'RunLocked', said, [])
    monkeypatch.setattr(cli, 'run_experiment', run)
    res = tmp_path/'res'; res.mkdir(); (res/'folder.json').write_text('{}'); os.utime(res/'folder.json', (1, 1))
    assert cli.main(['run', 'folder', '-p', 'data_root', str(make_folder(tmp_path/'tiny')), '-p', 'folds', '2',
                     '-p', 'output_dir', str(res)]) == 1
    out = capsys.readouterr().out
    assert f'folder not run: {said}\n' in out and 'failed in cell' not in out
    assert (res/'folder.json').exists()  # the other run's results are left alone

KILLED = textwrap.dedent('''
    import pickle, sys
    from mvgg19_nb.train import cross_validate
    with open(sys.argv[3], 'rb') as f: ds = pickle.load(f)  # the test's own dataset
    cross_validate(ds, out_dir=sys.argv[1], cache_dir=sys.argv[2], workers=2, heads='per_fold', progress=False,
                   **{ARGS!r})
''').replace('{ARGS!r}', repr({**ARGS, 'epochs': 4}))

def _loky_workers(parent):
    "Pids of the loky worker processes whose parent is `parent`."
    found = []
    for p in Path('/proc').iterdir():
        try:
            if p.name.isdigit() and int((p/'stat').read_text().rsplit(')', 1)[1].split()[1]) == parent\
                    and b'popen_loky_posix' in (p/'cmdline').read_bytes(): found.append(int(p.name))
        except (OSError, IndexError, ValueError): pass
    return found

@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='finds the worker processes in /proc')
def test_workers_end_with_their_killed_parent(ds, cache, clean, tmp_path):
    script, out, data = tmp_path/'run.py', tmp_path/'runs', tmp_path/'ds.pkl'
    script.write_text(KILLED); data.write_bytes(pickle.dumps(ds))
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(cache), str(data)], env=os.environ.copy())
    workers = []
    try:
        deadline = time.time() + 240
        while not list(out.glob('*/*/fold*.npz')) and time.time() < deadline and proc.poll() is None:
            workers = _loky_workers(proc.pid) or workers
            time.sleep(0.1)
        workers = _loky_workers(proc.pid) or workers
        assert proc.poll() is None and len(workers) == 2, f'the kill should land mid-run, with two workers: {workers}'
        os.kill(proc.pid, signal.SIGKILL); proc.wait()  # the parent only, not its process group
        t0 = time.time()
        while any(folds._alive(w) for w in workers) and time.time() - t0 < 10: time.sleep(0.1)
        assert not [w for w in workers if folds._alive(w)], f'workers still running {time.time() - t0:.0f} s later'
        files = sorted(out.glob('*/*/*'))
        time.sleep(1.5)
        assert sorted(out.glob('*/*/*')) == files  # nothing writes there any more
    finally:
        for w in workers:
            if folds._alive(w): os.kill(w, signal.SIGKILL)
    run_dir = next(out.iterdir())
    assert not [p for p in files if '.tmp' in p.name], files  # no temporary (half-written) file left
    done = [p for p in files if re.fullmatch(r'fold\d+\.npz', p.name)]
    assert 0 < len(done) < 6
    for p in done:  # every fold file there is whole and its own
        k = int(p.stem[4:])
        check_fold(p, p.parent.name, k, clean.folds[k], run_dir.name.rsplit('-', 1)[1])
