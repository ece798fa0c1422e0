"""One cross-validation on a dataset's feature cache, with head or protocol parameters changed: the ablations behind
the closing notes and book/differences.md (epochs, augmentation, dropout, BatchNorm statistics).

    python tools/cv_ablation.py magnetic_tile 120 '{}' '{"augment": false, "epochs": "auto"}'
    python tools/cv_ablation.py magnetic_tile 120 '{"bd_dropout": 0.0}' '{"augment": false}'
    python tools/cv_ablation.py elpv 100 '{}' '{"epochs": 100, "patience": 10, "models": ["mvgg19"]}'

Arguments: dataset, input size (square), `model_kwargs` as JSON (head keys: dense_units, dropout, bd_dropout,
standardize_trunk, ...), other `cross_validate` arguments as JSON (`models` defaults to ["mvgg19"]). Random backbone
(`weights=None`), baselines off, features from `.cache/features` (extracted there if missing), folds into
`.cache/ablation` (a rerun with the same arguments reads them back). Prints per model: mean +- std (numpy, ddof 0;
the pages use pandas, ddof 1) of accuracy over folds,
balanced accuracy, the last epoch's training accuracy (dropout on: training mode), and the wall time.
"""
import json, os, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('KERAS_HOME', str(ROOT/'.keras_home'))
import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from mvgg19_nb.data import load_dataset
from mvgg19_nb.train import cross_validate

def main(argv):
    if len(argv) < 3: sys.exit(__doc__)
    name, size, head = argv[0], int(argv[1]), json.loads(argv[2])
    extra = json.loads(argv[3]) if len(argv) > 3 else {}
    models = tuple(extra.pop('models', ['mvgg19']))
    t0 = time.perf_counter()
    r = cross_validate(load_dataset(name), models=models, input_size=(size, size), weights=None,
                       out_dir=ROOT/'.cache'/'ablation', cache_dir=ROOT/'.cache'/'features', model_kwargs=head,
                       progress=False, baselines=False, **extra)
    for m, run in r.runs.items():
        pred, y = run['proba'].argmax(1), r.labels
        accs = [accuracy_score(y[te], pred[te]) for te in r.folds]
        train_acc = np.mean([h['accuracy'][-1] for h in run['histories']])
        print(f"{name} {m} {json.dumps(head)} {json.dumps(extra)}: accuracy {100 * np.mean(accs):.2f} +- "
              f"{100 * np.std(accs):.2f}, balanced {100 * balanced_accuracy_score(y, pred):.2f}, last-epoch training "
              f"accuracy {100 * train_acc:.1f}, epochs {r.params['epochs']} ({time.perf_counter() - t0:.0f} s)",
              flush=True)

if __name__ == '__main__':
    main(sys.argv[1:])
