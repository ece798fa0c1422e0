"The cached path computes what the full model computes: random backbone weights (no download here), real images."
import json, os, pickle, re, shutil, subprocess, tempfile
from pathlib import Path
os.environ.setdefault('KERAS_HOME', tempfile.mkdtemp(prefix='keras_home_'))
import numpy as np, pytest, keras
import mvgg19_nb.features as features
from mvgg19_nb.data import DataNotFoundError, load_dataset
from mvgg19_nb.features import (feature_extractor, build_cached_head, transfer_head, extract_features, open_features,
                                native_bfloat16, resolve_precision, ViewStack)
from mvgg19_nb.model import build_mvgg19, build_vgg19

@pytest.fixture(scope='module')
def real_images():
    try: ds = load_dataset('magnetic_tile').sample(24, seed=1, min_per_class=3)
    except DataNotFoundError as e: pytest.skip(f'magnetic tile data not found ({e}); set MVGG19_DATA')
    return ds.load((72, 88)), ds.labels % 3

@pytest.mark.parametrize('name,build', [('mvgg19', build_mvgg19), ('vgg19', build_vgg19)])
def test_cached_head_equals_full_model(real_images, name, build):
    imgs, y = real_images
    ext, layout = feature_extractor((72, 88), weights=None, seed=5)
    F = ext.predict(imgs, verbose=0)
    head = build_cached_head(name, 3, layout, seed=2)
    head.compile('adam', 'sparse_categorical_crossentropy')
    head.fit(F, y, epochs=2, batch_size=8, verbose=0)  # BatchNorm statistics move away from their initial values
    if name == 'mvgg19': assert np.abs(head.get_layer('block3_bd').moving_mean.numpy()).max() > 0
    full = transfer_head(head, build(3, (72, 88), weights=None, seed=5))
    p_full, p_head = full.predict(imgs, verbose=0), head.predict(F, verbose=0)
    assert np.abs(p_full - p_head).max() < 1e-4
    assert p_head.std(0).max() > 1e-3  # not a constant output that would match trivially

def test_training_batch_statistics_match(real_images):
    "One training step from identical weights: BatchNorm's moving statistics move the same way on map and moments."
    imgs, y = real_images
    ext, layout = feature_extractor((72, 88), weights=None, seed=5)
    head = build_cached_head('mvgg19', 3, layout, bd_dropout=0.0, dropout=0.0, seed=2)
    full = transfer_head(head, build_mvgg19(3, (72, 88), weights=None, seed=5, bd_dropout=0.0, dropout=0.0))
    head(ext.predict(imgs, verbose=0), training=True); full(imgs.astype('float32'), training=True)
    for b in (2, 3, 4):
        h, f = head.get_layer(f'block{b}_bd'), full.get_layer(f'block{b}_bd_bn')
        np.testing.assert_allclose(h.moving_mean.numpy(), f.moving_mean.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(h.moving_variance.numpy(), f.moving_variance.numpy(), rtol=1e-3, atol=1e-5)

def test_cache_reused_and_atomic(real_images, tmp_path):
    imgs, _ = real_images
    calls = []
    def images(): calls.append(1); return imgs
    a = extract_features(images, tmp_path, 'k', (72, 88), weights=None, views=3, progress=False)
    b = extract_features(images, tmp_path, 'k', (72, 88), weights=None, views=3, progress=False)
    assert len(calls) == 1 and b.extract_s == 0.0
    np.testing.assert_array_equal(np.asarray(a.views), np.asarray(b.views))
    assert not list(tmp_path.rglob('*.tmp*'))
    assert len({np.asarray(a.views[v]).tobytes() for v in range(3)}) == 3  # each view is a different augmentation

def close(a, b):
    "Equal to float32 rounding of a re-extraction (relative; the scale is the features' largest)."
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5 * np.abs(np.asarray(b)).max())

def extract(images, d, **kw): return extract_features(images, d, 'k', (72, 88), weights=None, progress=False, **kw)

def truncate(view): os.truncate(view, view.stat().st_size - 1000)
def empty(view): os.truncate(view, 0)
def scribble(view):  # random bytes over the data: same size, a later mtime
    raw = bytearray(view.read_bytes()); raw[-4000:] = np.random.default_rng(0).bytes(4000)
    st = view.stat(); view.write_bytes(bytes(raw)); os.utime(view, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
def no_description(view): (view.parent/'layout.json').unlink()
def older_description(view):  # what the previous version wrote: the layout alone
    desc = view.parent/'layout.json'; desc.write_text(json.dumps(json.loads(desc.read_text())['layout']))
def killed_before_entry(view):  # the view on disk, the description without it
    desc = view.parent/'layout.json'; d = json.loads(desc.read_text()); d['views'].pop(view.name)
    desc.write_text(json.dumps(d))
def killed_before_view(view): view.unlink()  # the entry written, the view not moved into place

@pytest.mark.parametrize('damage,says', [
    (truncate, 'bytes, not'), (empty, 'is 0 bytes'), (scribble, 'checksum no longer matches'),
    (no_description, 'layout.json is missing'), (older_description, 'layout.json is from an older version'),
    (killed_before_entry, 'is not in the cache description'), (killed_before_view, None)])
def test_damaged_cache_is_reextracted(real_images, tmp_path, capsys, damage, says):
    imgs, _ = real_images
    good = extract(imgs, tmp_path, views=2)
    want, view = np.asarray(good.views), good.paths[-1]
    del good  # no memory map of a file about to be damaged
    capsys.readouterr()
    damage(view)
    again = extract(imgs, tmp_path, views=2)
    out = capsys.readouterr().out
    assert again.extract_s > 0
    close(again.views, want)
    if says: assert out.count('\n') == 1 and says in out and ('layout.json' in out or str(view) in out), out
    else: assert out == ''
    assert extract(None, tmp_path, views=2).extract_s == 0.0  # and then it is whole again
    assert sorted(p.name for p in again.folder.iterdir()) == sorted(['layout.json', *(p.name for p in again.paths)])

def test_touched_view_is_hashed_once(real_images, tmp_path, monkeypatch):
    imgs, _ = real_images
    view = extract(imgs, tmp_path).paths[0]
    st = view.stat(); os.utime(view, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime
    hashed = []
    digest = features.file_digest
    monkeypatch.setattr(features, 'file_digest', lambda p, *a: hashed.append(p) or digest(p, *a))
    assert extract(None, tmp_path).extract_s == 0.0 and hashed == [view]  # checksum verified once ...
    assert extract(None, tmp_path).extract_s == 0.0 and hashed == [view]  # ... then only size and header

def test_orphaned_temporary_files_are_removed(real_images, tmp_path):
    imgs, _ = real_images
    folder = extract(imgs, tmp_path).folder
    dead = subprocess.Popen(['true']); dead.wait()
    orphans = [folder/f'view0.npy.tmp{dead.pid}.npy', folder/f'layout.json.tmp{dead.pid}.json']
    for o in orphans: o.write_bytes(b'half written')
    mine = folder/f'view1.npy.tmp{os.getpid()}.npy'; mine.write_bytes(b'a live writer')
    assert extract(None, tmp_path).extract_s == 0.0
    assert not any(o.exists() for o in orphans) and mine.exists()

def test_cache_rebuilt_in_the_same_process(real_images, tmp_path):
    "A cache deleted and rebuilt with other content under the same key: the new numbers, not the old ones."
    imgs, _ = real_images
    old = np.asarray(extract(imgs[:8], tmp_path, views=2).views)
    shutil.rmtree(next(tmp_path.glob('features-*')))
    new = extract(imgs[8:16], tmp_path, views=2)
    ext, _ = feature_extractor((72, 88), weights=None)
    close(new.views[0], ext.predict(imgs[8:16], verbose=0))
    assert np.abs(np.asarray(new.views) - old).max() > 0

def test_views_stay_memory_mapped(tmp_path):
    "Opening the cache (also in a worker, from its pickle) and drawing batches holds a batch, not the views."
    status = Path('/proc/self/status')
    if not status.exists(): pytest.skip('needs /proc/self/status (Linux) to read the process memory')
    rss_anon = lambda: int(re.search(r'RssAnon:\s+(\d+) kB', status.read_text()).group(1)) * 1024
    n, d, v = 2600, 2304, 4  # 4 views of 24 MB
    paths = [tmp_path/f'view{i}.npy' for i in range(v)]
    for i, p in enumerate(paths): np.save(p, np.full((n, d), i, 'float32'))
    before = rss_anon()
    feats = pickle.loads(pickle.dumps(open_features(paths, {}, tmp_path)))
    rng = np.random.default_rng(0)
    for _ in range(100):
        views, rows = rng.integers(0, v, 32), rng.integers(0, n, 32)
        batch = feats.views[views, rows]
        assert batch.shape == (32, d) and batch.dtype == np.float32 and (batch[:, 0] == views).all()
    grown = rss_anon() - before
    assert grown < 0.1 * v * n * d * 4, f'{grown / 2**20:.0f} MB more anonymous memory after opening 4 views'

def test_viewstack_indexes_like_an_array(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 50, 7)).astype('float32')
    for i in range(3): np.save(tmp_path/f'v{i}.npy', a[i])
    vs = ViewStack([tmp_path/f'v{i}.npy' for i in range(3)])
    views, rows = rng.integers(0, 3, 40), rng.integers(0, 50, 40)
    np.testing.assert_array_equal(vs[views, rows], a[views, rows])
    v2, r2 = views.reshape(5, 8), rows.reshape(5, 8)
    np.testing.assert_array_equal(vs[v2, r2], a[v2, r2])
    np.testing.assert_array_equal(vs[-1], a[-1]); np.testing.assert_array_equal(vs[2][rows], a[2][rows])
    np.testing.assert_array_equal(vs[1:, rows], a[1:, rows]); np.testing.assert_array_equal(np.asarray(vs), a)
    with pytest.raises(IndexError): vs[np.array([3]), np.array([0])]

def test_native_bfloat16_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(features, '_gpu_bfloat16', lambda: None)
    for flags, want in (({'avx512f', 'avx2'}, (False, 'no GPU, and the CPU has neither amx_bf16 nor avx512_bf16')),
                        ({'avx512_bf16'}, (True, 'CPU with AVX-512 BF16 (avx512_bf16)')),
                        ({'amx_bf16', 'avx512_bf16'}, (True, 'CPU with AMX (amx_bf16)'))):
        monkeypatch.setattr(features, 'cpu_flags', lambda: flags)
        assert native_bfloat16() == want and resolve_precision('auto') == ('bfloat16' if want[0] else 'float32')
    monkeypatch.setattr(features, '_gpu_bfloat16', lambda: (False, 'GPU with compute capability 7.5'))
    monkeypatch.setattr(features, 'cpu_flags', lambda: {'amx_bf16'})
    assert native_bfloat16() == (False, 'GPU with compute capability 7.5')  # the GPU runs the backbone: it decides
    with pytest.raises(ValueError, match="precision='half'"): resolve_precision('half')

def test_bfloat16_features_and_cache_key(real_images, tmp_path):
    imgs, _ = real_images
    f32, f16 = extract(imgs, tmp_path), extract(imgs, tmp_path, precision='bfloat16')
    assert f32.folder != f16.folder and f16.views.dtype == np.float32
    assert json.loads((f16.folder/'layout.json').read_text())['spec']['precision'] == 'bfloat16'
    auto = extract(imgs, tmp_path, precision='auto')
    assert auto.folder == (f16 if native_bfloat16()[0] else f32).folder and auto.extract_s == 0.0
    a, b = np.asarray(f32.views[0], 'float64'), np.asarray(f16.views[0], 'float64')
    bound = 16 * 2.0 ** -8  # 16 convolutions, each rounding its inputs to bfloat16 (relative error 2^-8)
    assert (np.abs(b - a).max(1) / np.abs(a).max(1)).max() < bound
    assert ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min() > 1 - bound ** 2 / 2
    assert keras.config.dtype_policy().name == 'float32'  # the process's policy is untouched


# --- engines: who runs the backbone ----------------------------------------------------------------------------------
from mvgg19_nb.features import resolve_engine, features_agree
from mvgg19_nb.images import content_digest
from mvgg19_nb.model import PAPER_BRANCHES
from mvgg19_nb.params import ParameterError

BF16_BOUND = 16 * 2.0 ** -8  # the bfloat16 features' tolerance (above): 16 convolutions, each rounding to 2^-8

def tiny_images(n=6): return np.random.default_rng(4).integers(0, 256, (n, 32, 32, 3)).astype('uint8')
def tiny(images, d, **kw): return extract_features(images, d, 'k', (32, 32), weights=None, seed=3, progress=False, **kw)
def spec_of(f): return json.loads((f.folder/'layout.json').read_text())['spec']
def needs_onnx():
    if keras.backend.backend() != 'tensorflow': pytest.skip('the ONNX conversion goes through tensorflow')
    pytest.importorskip('tf2onnx', reason='tf2onnx not installed (pip install tf2onnx onnx)')
    pytest.importorskip('onnxruntime', reason='onnxruntime not installed (pip install onnxruntime)')

def test_onnxruntime_features_equal_keras_and_name_their_cache(tmp_path):
    needs_onnx()
    imgs = tiny_images()
    k, o = tiny(imgs, tmp_path), tiny(imgs, tmp_path, engine='onnxruntime')
    today = dict(content='k', input_size=[32, 32], weights='random-seed3', branches=list(PAPER_BRANCHES),
                 trunk='block5_pool', preprocessing='vgg', backend=keras.backend.backend(), precision='float32')
    assert spec_of(k) == today and k.folder.name == f'features-{content_digest(today)}'  # Keras: the key as before
    assert spec_of(o) == {**today, 'engine': 'onnxruntime'} and o.folder != k.folder
    assert (k.engine, o.engine) == ('keras', 'onnxruntime') and o.extract_s > 0
    assert pickle.loads(pickle.dumps(o)).engine == 'onnxruntime'
    a, b = np.asarray(k.views[0], 'float64'), np.asarray(o.views[0], 'float64')
    rel = np.abs(b - a).max(1) / np.abs(a).max(1)
    print(f'onnxruntime against keras float32: largest difference {rel.max():.1e} of an image\'s largest feature')
    assert rel.max() < BF16_BOUND and features_agree(a, b)
    assert tiny(imgs, tmp_path, engine='onnxruntime').extract_s == 0.0  # read back from its own cache

def test_auto_never_picks_features_that_differ_and_remembers(tmp_path, monkeypatch):
    needs_onnx()
    real = features.measure
    def onnx_fast_but_off(runners, x, batch_size=64, repeats=1):
        speed, outs = real(runners, x, batch_size, repeats)
        speed['onnxruntime/float32'] = 100 * speed['keras/float32']  # much faster ...
        outs['onnxruntime/float32'] = outs['onnxruntime/float32'] * 1.1  # ... but 10 % off
        return speed, outs
    monkeypatch.setattr(features, 'measure', onnx_fast_but_off)
    assert resolve_engine('auto', 'float32', tmp_path, (32, 32), None, seed=3, batch_size=4) == ('keras', 'float32')
    (entry,) = json.loads((tmp_path/'engines.json').read_text()).values()
    assert entry['choice'] == ['keras', 'float32'] and set(entry['img_per_s']) == {'keras/float32', 'onnxruntime/float32'}
    assert entry['agrees_with_keras_float32'] == {'keras/float32': True, 'onnxruntime/float32': False}
    def no_measuring(*a, **k): raise AssertionError('measured again')
    monkeypatch.setattr(features, 'measure', no_measuring)
    assert resolve_engine('auto', 'float32', tmp_path, (32, 32), None, seed=3, batch_size=4) == ('keras', 'float32')

def test_auto_without_onnxruntime_is_keras(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__
    def no_onnxruntime(name, *a, **k):
        if name == 'onnxruntime': raise ImportError('No module named onnxruntime')
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, '__import__', no_onnxruntime)
    assert resolve_engine('auto', 'float32', tmp_path) == ('keras', 'float32')
    with pytest.raises(ParameterError) as e: resolve_engine('onnxruntime', 'float32', tmp_path)
    assert str(e.value) == ("engine='onnxruntime' needs onnxruntime (No module named onnxruntime): "
                            'pip install onnxruntime')
    imgs = tiny_images(2)
    auto, k = tiny(imgs, tmp_path, engine='auto'), tiny(imgs, tmp_path)
    assert auto.folder == k.folder and auto.engine == 'keras' and k.extract_s == 0.0
    assert not (tmp_path/'engines.json').exists()  # one candidate: nothing measured

def test_bad_engine_is_one_line_before_any_work(tmp_path):
    for kw, says in ((dict(engine='fast'), "engine='fast': use one of 'keras', 'onnxruntime', 'auto'"),
                     (dict(engine=None), "engine=None: use one of 'keras', 'onnxruntime', 'auto'"),
                     (dict(engine='onnxruntime', precision='bfloat16'), "engine='onnxruntime': it computes in float32")):
        with pytest.raises(ParameterError) as e: tiny(lambda: pytest.fail('images loaded'), tmp_path/'c', **kw)
        assert str(e.value).startswith(says) and len(str(e.value).splitlines()) == 1
    assert not (tmp_path/'c').exists()
