"""Does bfloat16 feature extraction change the cross-validated accuracy? float32 against bfloat16, side by side.

    python benchmarks/bf16_accuracy.py                   # magnetic tile (120 px) and ELPV (100 px), as committed
    python benchmarks/bf16_accuracy.py --datasets elpv --epochs 3

For each dataset, `cross_validate` runs twice with every parameter the same (both models, 10 folds, 4 cached views,
per-fold heads, seed 0, a seeded random backbone: ImageNet weights cannot be downloaded here) except the backbone's
arithmetic, `precision='float32'` and `'bfloat16'` (Keras's `mixed_bfloat16` on the extractor's layers; the features
are stored as float32 either way). Recorded: each model's 10-fold mean accuracy in both, the difference in points
(the `precision='auto'` default is justified only if every difference is within 0.3 points), how close the
original view's features are (cosine per image, largest difference relative to the image's largest feature), the
extraction time of each, and the CPU's bfloat16 flags. Folds and features are cached (`--runs-dir`, `--cache-dir`):
a rerun reads them back. Results: benchmarks/results/bf16_accuracy.json, and a summary under `bfloat16_accuracy` in
benchmarks/results/cv_speed.json.
"""
import argparse, json, os, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('KERAS_HOME', str(ROOT/'.keras_home'))
import numpy as np
from mvgg19_nb.data import load_dataset
from mvgg19_nb.experiment import default_input_size
from mvgg19_nb.results import provenance, write_json
from mvgg19_nb.features import cpu_flags, native_bfloat16
from mvgg19_nb.train import cross_validate

PRECISIONS = ('float32', 'bfloat16')
TOLERANCE_POINTS = 0.3  # 'auto' may be the default only if no model moves by more

def feature_agreement(a, b):
    "Cosine similarity per image (its minimum) and the largest difference relative to each image's largest feature."
    a, b = np.asarray(a, 'float64'), np.asarray(b, 'float64')
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rel = np.abs(b - a).max(1) / np.abs(a).max(1)
    return dict(cosine_min=float(cos.min()), cosine_median=float(np.median(cos)), max_rel_diff=float(rel.max()),
                median_rel_diff=float(np.median(rel)))

def one_dataset(name, epochs, runs_dir, cache_dir):
    ds = load_dataset(name)
    size = tuple(default_input_size(name))
    out = dict(dataset=name, n_images=len(ds), input_size=list(size), runs={})
    for p in PRECISIONS:
        t0 = time.perf_counter()
        res = cross_validate(ds, input_size=size, epochs=epochs, weights=None, precision=p, out_dir=runs_dir,
                             cache_dir=cache_dir, baselines=False, progress=True)
        acc = {m: float(np.mean([(r['proba'][te].argmax(1) == res.labels[te]).mean() for te in res.folds]))
               for m, r in res.runs.items()}
        out['content'] = res.params['content']  # the images' digest, as the feature cache names it
        out['runs'][p] = dict(mean_accuracy=acc, extract_s=res.timings['extract_s'], wall_s=time.perf_counter() - t0,
                              epochs=res.params['epochs'], run_dir=res.params['run_dir'])
        print(name, p, {m: round(100 * a, 2) for m, a in acc.items()}, flush=True)
    f32, b16 = (out['runs'][p]['mean_accuracy'] for p in PRECISIONS)
    out['delta_points'] = {m: 100 * (b16[m] - f32[m]) for m in f32}
    out['within_tolerance'] = all(abs(d) <= TOLERANCE_POINTS for d in out['delta_points'].values())
    return out

def cached_view0(name, content, precision, cache_dir):
    "The original view's features of `name` (its images' digest `content`) in `precision`, from the feature cache."
    for d in Path(cache_dir).glob('features-*'):
        spec = json.loads((d/'layout.json').read_text())['spec']
        if (spec['precision'] == precision and spec['weights'] == 'random-seed0'
                and spec['input_size'] == default_input_size(name) and (d/'view0.npy').exists()
                and spec['content'] == content):
            return np.load(d/'view0.npy', mmap_mode='r')
    return None

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--datasets', nargs='+', default=['magnetic_tile', 'elpv'])
    ap.add_argument('--epochs', type=int, default=15, help="each fold's epochs (the committed pages' protocol: 15)")
    ap.add_argument('--runs-dir', default=str(ROOT/'.cache'/'runs'))
    ap.add_argument('--cache-dir', default=str(ROOT/'.cache'/'features'))
    ap.add_argument('--out', default=str(ROOT/'benchmarks'/'results'/'bf16_accuracy.json'))
    a = ap.parse_args(argv)
    t0, flags, (native, why) = time.perf_counter(), cpu_flags(), native_bfloat16()
    results = []
    for name in a.datasets:
        r = one_dataset(name, a.epochs, a.runs_dir, a.cache_dir)
        f, b = (cached_view0(name, r['content'], p, a.cache_dir) for p in PRECISIONS)
        r['features'] = feature_agreement(f, b) if f is not None and b is not None else None
        results.append(r)
    rec = dict(results=results, tolerance_points=TOLERANCE_POINTS,
               all_within_tolerance=all(r['within_tolerance'] for r in results),
               cpu_flags={f: f in flags for f in ('amx_bf16', 'avx512_bf16')}, native_bfloat16=native,
               native_bfloat16_why=why, params=dict(epochs=a.epochs, folds=10, views=4, weights='random (seed 0)',
                                                   heads='per_fold'),
               provenance=provenance({}, time.perf_counter() - t0), benchmark_wall_s=time.perf_counter() - t0)
    write_json(a.out, rec)
    speed = ROOT/'benchmarks'/'results'/'cv_speed.json'
    if speed.exists() and Path(a.out).resolve() == (ROOT/'benchmarks'/'results'/'bf16_accuracy.json').resolve():
        s = json.loads(speed.read_text())
        s['bfloat16_accuracy'] = dict(source='benchmarks/results/bf16_accuracy.json', tolerance_points=TOLERANCE_POINTS,
                                      delta_points={r['dataset']: r['delta_points'] for r in results},
                                      all_within_tolerance=rec['all_within_tolerance'], cpu_flags=rec['cpu_flags'])
        write_json(speed, s)
    print(json.dumps({r['dataset']: r['delta_points'] for r in results}), 'within', TOLERANCE_POINTS, 'points:',
          rec['all_within_tolerance'])

if __name__ == '__main__':
    main()
