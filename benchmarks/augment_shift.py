"""How far each augmentation moves the backbone's pooled features, and what training on shifted views costs.

For a stratified sample of a dataset (the random backbone of the book, `weights=None`, seed 0), each augmentation
alone (and all together) makes one augmented view; for every trunk feature the shift is
|mean(augmented) - mean(original)| / sd(original), and we report its median over the features. Then the book's
linear probe (a standardised logistic regression) is trained on the original view, or on an augmented view, of each
fold's training images and tested on the original view of its test images: the gap is what a head loses by learning
from shifted views. `--heads-mix` adds the probe trained as the heads learn: each training image once in every one
of `--views` cached views (the original and `views - 1` augmented with the defaults), tested on the originals.

    python benchmarks/augment_shift.py      # magnetic tile, 400 images at 120 px, 3 of 5 folds: augment_shift.json
    python benchmarks/augment_shift.py --dataset elpv --size 100 --images 0 --folds 10 --test-folds 10 \\
        --current-only --heads-mix --features trunk all        # the ELPV page's folds: augment_shift_elpv.json
"""
import argparse, json, os, tempfile, time
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
from pathlib import Path
import numpy as np
import keras
from mvgg19_nb.data import load_dataset
from mvgg19_nb.engines import cpu_name
from mvgg19_nb.features import extract_features
from mvgg19_nb.images import content_digest
from mvgg19_nb.train import duplicate_groups, make_folds, probe_features
from mvgg19_nb.metrics import balanced_accuracy, linear_probe

OFF = dict(noise_std=0, rotation=0, flip=None, height_shift=0, width_shift=0)
VARIANTS = {'noise std 10 (the old default)': {**OFF, 'noise_std': 10.0},
            'noise std 3 (the default)': {**OFF, 'noise_std': 3.0},
            'flips': {**OFF, 'flip': 'horizontal_and_vertical'}, 'rotation 0.05 turn': {**OFF, 'rotation': 0.05},
            'shifts 0.1': {**OFF, 'height_shift': 0.1, 'width_shift': 0.1},
            'all, noise 10': {'noise_std': 10.0}, 'all, noise 3 (the defaults)': {}}
OLD = ('noise std 10 (the old default)', 'all, noise 10')  # the noise before the default became 3
FEATURES = {'trunk': 0, 'all': 1}  # probe_features' (trunk, every branch and the trunk)

def scores(p, y, tests):
    "Mean over the test folds of accuracy and balanced accuracy of the probabilities `p`."
    return dict(accuracy=float(np.mean([np.mean(p[te].argmax(1) == y[te]) for te in tests])),
                balanced_accuracy=float(np.mean([balanced_accuracy(y[te], p[te].argmax(1)) for te in tests])))

def probe_on_views(train_views, test_view, y, trains, tests, k):
    """The linear probe trained on every view in `train_views` of each fold's training images, tested on `test_view`
    of its test images (out-of-fold probabilities)."""
    n, oofs = len(y), np.zeros((len(y), k))
    stacked, ys = np.concatenate([test_view, *train_views]), np.tile(y, len(train_views) + 1)
    for tr, te in zip(trains, tests):
        rows = np.concatenate([tr + (v + 1) * n for v in range(len(train_views))])
        oofs[te] = linear_probe(stacked, ys, [rows], [te], k)[te]  # rows below n are the test view's
    return oofs

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset', default='magnetic_tile'); ap.add_argument('--size', type=int, default=120)
    ap.add_argument('--images', type=int, default=400, help='stratified sample size (0: every image)')
    ap.add_argument('--folds', type=int, default=5); ap.add_argument('--test-folds', type=int, default=3)
    ap.add_argument('--current-only', action='store_true', help='leave out the old noise std 10 variants')
    ap.add_argument('--heads-mix', action='store_true', help='add the probe trained on every cached view')
    ap.add_argument('--views', type=int, default=4, help='cached views for --heads-mix (the template default)')
    ap.add_argument('--features', nargs='+', default=['trunk'], choices=list(FEATURES))
    a = ap.parse_args(argv)
    size, t0 = (a.size, a.size), time.perf_counter()
    ds = load_dataset(a.dataset)
    if a.images: ds = ds.sample(a.images, seed=0)
    imgs, y, k = ds.load(size, progress=False), np.asarray(ds.labels), len(ds.classes)
    tests = make_folds(y, duplicate_groups(ds.digests()), a.folds, 0)[:a.test_folds]
    trains = [np.setdiff1d(np.arange(len(y)), te) for te in tests]
    variants = {n: v for n, v in VARIANTS.items() if not (a.current_only and n in OLD)}
    out, key = {}, content_digest(ds.digests())
    with tempfile.TemporaryDirectory() as d:  # view 0 is extracted once and shared by every variant
        f = extract_features(imgs, d, key, size, None, views=1, progress=False)
        v0 = probe_features(np.asarray(f.views[0]), f.layout)  # (trunk, all) of the original images
        original = {feat: scores(linear_probe(v0[FEATURES[feat]], y, trains, tests, k), y, tests)
                    for feat in a.features}  # the same for every variant
        for name, aug in variants.items():
            f = extract_features(imgs, d, key, size, None, views=2, augment=aug, progress=False)
            v1 = probe_features(np.asarray(f.views[1]), f.layout)
            shift = np.abs(v1[0].mean(0) - v0[0].mean(0)) / (v0[0].std(0) + 1e-12)
            out[name] = dict(median_shift_sd=float(np.median(shift[v0[0].std(0) > 0])))
            for feat in a.features:
                i = FEATURES[feat]
                out[name][feat] = dict(trained_on_original=original[feat], trained_on_augmented=scores(
                    probe_on_views([v1[i]], v0[i], y, trains, tests, k), y, tests))
                print(f"{name:30s} {feat:5s} median shift {out[name]['median_shift_sd']:.3f} sd; probe accuracy "
                      f"{original[feat]['accuracy']:.4f} (original) vs "
                      f"{out[name][feat]['trained_on_augmented']['accuracy']:.4f} (augmented)", flush=True)
        if a.heads_mix:
            f = extract_features(imgs, d, key, size, None, views=a.views, progress=False)
            views = [v0] + [probe_features(np.asarray(f.views[v]), f.layout) for v in range(1, a.views)]
            out['every cached view, as the heads learn'] = {feat: dict(trained_on_views=scores(probe_on_views(
                [v[FEATURES[feat]] for v in views], v0[FEATURES[feat]], y, trains, tests, k), y, tests))
                for feat in a.features}
            print('every cached view:', json.dumps(out['every cached view, as the heads learn']), flush=True)
    res = dict(results=out, params=dict(dataset=a.dataset, n_images=len(ds), input_size=list(size),
                                        weights='random (seed 0)', probe_folds=f'{a.test_folds} of {a.folds} '
                                        'stratified folds (identical images kept together)', views=a.views),
               machine=dict(cpu=cpu_name(), cpus=os.cpu_count(),
                            keras=keras.__version__, backend=keras.backend.backend()), wall_s=time.perf_counter() - t0)
    name = 'augment_shift.json' if a.dataset == 'magnetic_tile' else f'augment_shift_{a.dataset}.json'
    path = Path(__file__).parent/'results'/name
    path.write_text(json.dumps(res, indent=1))
    print('wrote', path)

if __name__ == '__main__': main()
