"""How far each augmentation moves the backbone's pooled trunk features, and what training on shifted views costs.

For a stratified sample of magnetic tile images (the random backbone of the book, `weights=None`, seed 0), each
augmentation alone (and all together) makes one augmented view; for every trunk feature the shift is
|mean(augmented) - mean(original)| / sd(original), and we report its median over the features. Then a standardised
logistic regression (the book's linear probe) is trained on the original view, or on an augmented view, of 9/10 of
the sample and tested on the original view of the rest: the gap is what the heads lose by learning from shifted
views. Run: `python benchmarks/augment_shift.py [n_images]`; writes benchmarks/results/augment_shift.json.
"""
import json, os, platform, sys, tempfile, time
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
from pathlib import Path
import numpy as np
import keras
from mvgg19_nb.data import load_dataset
from mvgg19_nb.features import extract_features
from mvgg19_nb.images import content_digest
from mvgg19_nb.train import make_folds, probe_features
from mvgg19_nb.metrics import balanced_accuracy, linear_probe

n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
size, t0 = (120, 120), time.perf_counter()
ds = load_dataset('magnetic_tile').sample(n, seed=0)
imgs, y = ds.load(size, progress=False), np.asarray(ds.labels)
off = dict(noise_std=0, rotation=0, flip=None, height_shift=0, width_shift=0)
variants = {'noise std 10 (the old default)': {**off, 'noise_std': 10.0},
            'noise std 3 (the default)': {**off, 'noise_std': 3.0},
            'flips': {**off, 'flip': 'horizontal_and_vertical'}, 'rotation 0.05 turn': {**off, 'rotation': 0.05},
            'shifts 0.1': {**off, 'height_shift': 0.1, 'width_shift': 0.1},
            'all, noise 10': {'noise_std': 10.0}, 'all, noise 3 (the defaults)': {}}
folds = make_folds(y, np.arange(len(y)), 5, 0)  # small samples: 5 folds keep every class in each
tests = folds[:3]
trains = [np.setdiff1d(np.arange(len(y)), te) for te in tests]
out = {}
with tempfile.TemporaryDirectory() as d:
    for name, aug in variants.items():
        f = extract_features(imgs, d, content_digest(ds.digests()), size, None, views=2, augment=aug, progress=False)
        v0, v1 = (probe_features(np.asarray(f.views[v]), f.layout)[0] for v in (0, 1))  # trunk features
        shift = np.abs(v1.mean(0) - v0.mean(0)) / (v0.std(0) + 1e-12)
        live = v0.std(0) > 0
        # probe trained on the augmented view (v1) of the training images, tested on the original view
        mixed = np.where(np.isin(np.arange(len(y)), np.concatenate(tests))[:, None], v0, v1)
        p_aug = linear_probe(mixed, y, trains, tests, len(ds.classes))
        p_orig = linear_probe(v0, y, trains, tests, len(ds.classes))
        bal = lambda p: float(np.mean([balanced_accuracy(y[te], p[te].argmax(1)) for te in tests]))
        out[name] = dict(median_shift_sd=float(np.median(shift[live])),
                         probe_balanced_accuracy_trained_on_original=bal(p_orig),
                         probe_balanced_accuracy_trained_on_augmented=bal(p_aug))
        print(f"{name:32s} median shift {out[name]['median_shift_sd']:.3f} sd; probe balanced accuracy "
              f"{out[name]['probe_balanced_accuracy_trained_on_original']:.3f} (original) vs "
              f"{out[name]['probe_balanced_accuracy_trained_on_augmented']:.3f} (augmented)", flush=True)
res = dict(results=out, params=dict(dataset='magnetic_tile', n_images=len(ds), input_size=list(size),
                                    weights='random (seed 0)', probe_folds='3 of 5 stratified folds'),
           machine=dict(cpu=platform.processor() or platform.machine(), cpus=os.cpu_count(), keras=keras.__version__,
                        backend=keras.backend.backend()), wall_s=time.perf_counter() - t0)
path = Path(__file__).parent/'results'/'augment_shift.json'
path.write_text(json.dumps(res, indent=1))
print('wrote', path)
