"""Same protocol, two paths: 10-fold accuracies of the cached-feature path and of the plain per-fold `fit` of the
whole model (the authors' loop), on the same folds of real images. They should agree within the fold-to-fold spread.

    python benchmarks/cached_vs_plain.py                      # magnetic tile sample, as committed
    python benchmarks/cached_vs_plain.py --max-images 1344 --size 120 --epochs 15   # the full set (hours on a CPU)

A seeded random backbone (ImageNet weights cannot be downloaded here); no augmentation, so that both paths see
exactly the same images (with augmentation the cached path draws among pre-made views, the plain path makes new ones).
"""
import argparse, json, os, time
from pathlib import Path
os.environ.setdefault('KERAS_HOME', str(Path(__file__).resolve().parents[1]/'.keras_home'))
import tempfile
import numpy as np, keras
from mvgg19_nb.data import load_dataset
from mvgg19_nb.train import cross_validate

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset', default='magnetic_tile'); ap.add_argument('--max-images', type=int, default=300)
    ap.add_argument('--size', type=int, default=64); ap.add_argument('--folds', type=int, default=10)
    ap.add_argument('--epochs', type=int, default=5); ap.add_argument('--models', default='mvgg19')
    ap.add_argument('--out', default=str(Path(__file__).parent/'results'/'cached_vs_plain.json'))
    a = ap.parse_args(argv)
    ds = load_dataset(a.dataset).sample(a.max_images, seed=0, min_per_class=a.folds)  # every class in every fold
    common = dict(models=tuple(a.models.split(',')), input_size=(a.size, a.size), folds=a.folds, epochs=a.epochs,
                  weights=None, augment=False, seed=0, progress=False)
    out = dict(params=dict(dataset=a.dataset, n_images=len(ds), **{k: v for k, v in common.items() if k != 'progress'}),
               backend=keras.backend.backend(), keras=keras.__version__)
    with tempfile.TemporaryDirectory() as d:
        for path, cached in (('cached', True), ('plain', False)):
            res = cross_validate(ds, out_dir=Path(d)/path, cache_dir=Path(d)/'cache', cached=cached, **common)
            out[path] = {m: dict(accuracy=res.metrics(m)['accuracy'].tolist(), wall_s=res.timings['wall_s'])
                         for m in res.runs}
            for m, r in out[path].items():
                print(f"{path:6s} {m}: accuracy {np.mean(r['accuracy']):.4f} +/- {np.std(r['accuracy'], ddof=1):.4f} "
                      f"over {a.folds} folds, {r['wall_s']:.0f} s", flush=True)
    for m in out['cached']:
        c, p = np.array(out['cached'][m]['accuracy']), np.array(out['plain'][m]['accuracy'])
        spread = max(c.std(ddof=1), p.std(ddof=1))
        out.setdefault('agreement', {})[m] = dict(mean_difference=float(c.mean() - p.mean()), fold_spread=float(spread),
                                                   within_spread=bool(abs(c.mean() - p.mean()) <= spread))
        print(f"{m}: mean difference {c.mean() - p.mean():+.4f}, fold-to-fold spread {spread:.4f}: "
              f"{'within' if abs(c.mean() - p.mean()) <= spread else 'NOT within'} the spread")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f'wrote {a.out}')

if __name__ == '__main__': main()
