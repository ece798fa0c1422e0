"""Feature extraction in this process against Ray with two local workers, and the cost model's prediction checked.

    python benchmarks/ray_extract.py                  # the full run: 10,000 bridge patches, results/ray_extract.json
    python benchmarks/ray_extract.py --images 1000    # a short check (prints, writes nothing)

Everything runs in one process on the same images, `--images` bridge patches
(`load_dataset('bridge_dbcc').sample(N, seed=0)`) at 72x72, one view, a seeded random backbone (`weights=None`; speed
does not depend on the weights), each extraction into a fresh feature cache through `extract_features`:

1. `backend='local'`: this process, the backend's threads on every core;
2. a short calibration on a local Ray instance with two CPUs and two actors of one thread each: one shard of 8
   images (mostly the actors' start), then `--calibrate` images in 4 shards and in 16; three wall times give the
   three costs of `mvgg19_nb.cluster.extraction_cost` (the actors' start, one machine's seconds per image, the seconds
   per shard);
3. `backend='ray'` on all the images, shards of `--shard-size`, against the model's prediction from (2);
4. the model's figures for the whole bridge set (55,000 patches, 4 views) on 1, 4 and 16 machines, at 1 Gbit/s.

Overhead per image: (Ray's wall time - the local one) / images; per shard: from (2). The machine's load average is
recorded beside each timing: other work on the cores slows every path. The results file is written only by the full
run (10,000 bridge patches) unless `--out` names one.
"""
import argparse, functools, json, os, platform, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('KERAS_HOME', str(Path(__file__).resolve().parents[1]/'.keras_home'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.pop('RAY_ADDRESS', None)  # a local instance
import numpy as np, keras
from mvgg19_nb import features, shards
from mvgg19_nb.cluster import extraction_cost, init_ray
from mvgg19_nb.data import load_dataset
from mvgg19_nb.features import extract_features

RESULTS = Path(__file__).resolve().parent/'results'/'ray_extract.json'
FULL = 10_000
SIZE = (72, 72)
WIDTH = 2304  # features per image, the paper's branches and the trunk
BRIDGE = dict(n_images=55_000, views=4)


def timed(imgs, cache, backend='local', **ray_kwargs):
    "Wall seconds of one view of `imgs` extracted into the fresh cache `cache` with `backend`, and the load average."
    if ray_kwargs:
        features.EXTRACTORS['ray'] = functools.partial(shards.extract_view_ray, **ray_kwargs)
    try:
        t0 = time.perf_counter()
        f = extract_features(imgs, cache, 'bench', SIZE, weights=None, seed=0, views=1, progress=False,
                             backend=backend)
        wall = time.perf_counter() - t0
    finally: features.EXTRACTORS['ray'] = 'mvgg19_nb.shards:extract_view_ray'
    return wall, os.getloadavg()[0], np.asarray(f.views[0])


def calibrate(imgs, n, root, workers=2):
    """The model's costs from three Ray extractions: one shard of 8 images, `n` images in 4 shards and in 16 (whole
    rounds of the two actors, as the model counts them): (startup_s, per_image_s, shard_s) and the raw timings."""
    shard, small = n // 4, n // 16
    tiny, _, _ = timed(imgs[:8], root/'tiny', 'ray', shard_size=8, workers=workers)
    big, _, _ = timed(imgs[:n], root/'big', 'ray', shard_size=shard, workers=workers)
    many, _, _ = timed(imgs[:n], root/'small', 'ray', shard_size=small, workers=workers)
    s_big, s_small = -(-n // shard), -(-n // small)
    shard_s = max(0.0, (many - big) / (s_small - s_big))
    per_image = max(1e-6, (big - tiny - (s_big - 1) * shard_s) / (n - 8))
    startup = max(0.0, tiny - 8 * per_image - shard_s)
    return dict(startup_s=startup, per_image_s=per_image, shard_s=shard_s,
                timings=dict(tiny_s=tiny, big_s=big, small_s=many, images=n, shard_size=shard, small_shard=small))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--images', type=int, default=FULL, help=f'bridge patches (default {FULL})')
    ap.add_argument('--calibrate', type=int, default=None,
                    help='images of the calibration, a multiple of 64 (default: about a tenth of them, >= 256)')
    ap.add_argument('--shard-size', type=int, default=shards.SHARD_SIZE)
    ap.add_argument('--out', default=None, help=f'results file (default: {RESULTS.name} for the full run only)')
    a = ap.parse_args(argv)
    t_start = time.perf_counter()
    ds = load_dataset('bridge_dbcc').sample(a.images, seed=0)
    imgs = ds.load(SIZE, progress=False)
    n_cal = min(len(imgs) // 64 * 64, a.calibrate or max(256, len(imgs) // 10 // 64 * 64))
    root = Path(tempfile.mkdtemp(prefix='mvgg19_ray_extract_'))
    local, local_load, f_local = timed(imgs, root/'local')
    print(f'local: {len(imgs)} images in {local:.1f} s ({len(imgs) / local:.1f} img/s), load {local_load:.1f}',
          flush=True)
    ray = init_ray(num_cpus=2)
    cal = calibrate(imgs, n_cal, root)
    print(f"calibration on {n_cal} images: actors' start {cal['startup_s']:.1f} s, {1 / cal['per_image_s']:.1f} img/s "
          f"(two actors), {cal['shard_s']:.3f} s per shard; {cal['timings']}", flush=True)
    model = dict(per_image_s=cal['per_image_s'], bytes_in=SIZE[0] * SIZE[1] * 3, bytes_out=WIDTH * 4,
                 shard_size=a.shard_size, shard_s=cal['shard_s'], startup_s=cal['startup_s'])
    predicted = extraction_cost(len(imgs), machines=1, **model)['wall_s']
    on_ray, ray_load, f_ray = timed(imgs, root/'ray', 'ray', shard_size=a.shard_size, workers=2)
    ray.shutdown()
    err = on_ray / predicted - 1
    shards_n = -(-len(imgs) // a.shard_size)
    print(f'Ray, two workers: {on_ray:.1f} s ({len(imgs) / on_ray:.1f} img/s), load {ray_load:.1f}; predicted '
          f'{predicted:.1f} s ({err:+.1%}); overhead {(on_ray - local) / len(imgs) * 1e3:.2f} ms per image, '
          f"{cal['shard_s']:.3f} s per shard; features agree to {np.abs(f_ray - f_local).max():.1e}", flush=True)
    bridge = {m: extraction_cost(**BRIDGE, machines=m, **model) for m in (1, 4, 16)}
    for m, r in bridge.items():
        print(f"bridge set, {BRIDGE['n_images']} x {BRIDGE['views']} views: {m:2d} machine(s) "
              f"{r['wall_s'] / 60:.1f} min", flush=True)
    print(f"adding machines stops paying past {bridge[1]['saturation']:.0f} (1 Gbit/s)", flush=True)
    out = dict(images=len(imgs), input_size=list(SIZE), views=1, weights='random (seed 0)', dataset='bridge_dbcc',
               local=dict(wall_s=local, img_per_s=len(imgs) / local, loadavg_1min=local_load),
               ray=dict(wall_s=on_ray, img_per_s=len(imgs) / on_ray, loadavg_1min=ray_load, workers=2, cpus=2,
                        shard_size=a.shard_size, shards=shards_n, predicted_s=predicted, prediction_error=err,
                        overhead_ms_per_image=(on_ray - local) / len(imgs) * 1e3,
                        features_max_abs_diff=float(np.abs(f_ray - f_local).max())),
               calibration=cal, model=model,
               bridge_full={m: dict(wall_min=r['wall_s'] / 60, compute_min=r['compute_s'] / 60,
                                    network_min=r['transfer_s'] / 60, saturation=r['saturation'])
                            for m, r in bridge.items()},
               machine=dict(cpus=os.cpu_count(), python=platform.python_version(), keras=keras.__version__,
                            backend=keras.backend.backend(), platform=platform.platform()),
               benchmark_wall_s=time.perf_counter() - t_start, date=time.strftime('%Y-%m-%d %H:%M:%S'))
    path = a.out or (RESULTS if len(imgs) == FULL else None)
    if path:
        Path(path).write_text(json.dumps(out, indent=1))
        print(f'wrote {path}')
    else: print(json.dumps(out, indent=1))
    import shutil; shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
