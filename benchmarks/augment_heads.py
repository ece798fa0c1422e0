"""Why a head trained with augmentation can fall below the linear probe: the head's settings, one at a time.

    python benchmarks/augment_heads.py --dataset elpv --size 100   # results/augment_heads_elpv.json

VGG19's head (the trunk only: the quickest) cross-validated on the dataset's 10 folds, the random backbone of the
book (`weights=None`), with the results pages' defaults (4 cached views, precise BatchNorm statistics, the trunk
standardised on the training images' original view) and with one of them changed: BatchNorm's own moving averages
(`bn_stats='ema'`), no trunk standardisation, no augmentation. `benchmarks/augment_shift.py` asks the same of a
linear probe; this asks it of the head. Features come from (and stay in) `--cache-dir`.
"""
import argparse, json, os, tempfile, time
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
from pathlib import Path
import numpy as np
import keras
from mvgg19_nb.data import load_dataset
from mvgg19_nb.engines import cpu_name
from mvgg19_nb.experiment import EXPERIMENT_DEFAULTS
from mvgg19_nb.train import cross_validate

PAGE = dict(views=EXPERIMENT_DEFAULTS['views'], bn_stats=EXPERIMENT_DEFAULTS['bn_stats'],
            model_kwargs=dict(standardize_trunk=EXPERIMENT_DEFAULTS['standardize_trunk']))  # the results pages'
VARIANTS = {'defaults (4 views, precise BatchNorm statistics, trunk standardised)': {},
            "BatchNorm's moving averages (bn_stats='ema')": dict(bn_stats='ema'),
            'trunk not standardised': dict(model_kwargs=dict(standardize_trunk=False)),
            'no augmentation (1 view)': dict(augment=False, views=1)}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset', default='elpv'); ap.add_argument('--size', type=int, default=100)
    ap.add_argument('--epochs', default=EXPERIMENT_DEFAULTS['epochs'], help="an integer, or 'auto' as on the pages")
    ap.add_argument('--cache-dir', default='.cache/features')
    a = ap.parse_args(argv)
    ds, t0, out = load_dataset(a.dataset), time.perf_counter(), {}
    epochs = a.epochs if a.epochs == 'auto' else int(a.epochs)
    for name, change in VARIANTS.items():
        with tempfile.TemporaryDirectory() as d:
            res = cross_validate(ds, models=('vgg19',), input_size=(a.size, a.size), epochs=epochs, weights=None,
                                 out_dir=d, cache_dir=a.cache_dir, progress=False, baselines=False,
                                 **{**PAGE, **change})
            acc = res.metrics('vgg19')[['accuracy', 'balanced_accuracy']].mean()
        out[name] = dict(change=change, accuracy=float(acc['accuracy']),
                         balanced_accuracy=float(acc['balanced_accuracy']))
        print(f"{name:70s} accuracy {acc['accuracy']:.4f}, balanced {acc['balanced_accuracy']:.4f}", flush=True)
    record = dict(results=out, params=dict(dataset=a.dataset, n_images=len(ds), input_size=[a.size, a.size], folds=10,
                                           epochs=res.params['epochs'], model='vgg19', weights='random (seed 0)'),
                  machine=dict(cpu=cpu_name(), cpus=os.cpu_count(), keras=keras.__version__,
                               backend=keras.backend.backend()), wall_s=time.perf_counter() - t0)
    path = Path(__file__).parent/'results'/f'augment_heads_{a.dataset}.json'
    path.write_text(json.dumps(record, indent=1))
    print('wrote', path)

if __name__ == '__main__': main()
