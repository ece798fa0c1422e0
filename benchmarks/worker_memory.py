"""Memory of a process training cross-validation folds on a 4-view feature cache, as each loky worker does.

    python benchmarks/worker_memory.py                  # casting at 100 px, as committed in results/worker_memory.json
    python benchmarks/worker_memory.py --dataset magnetic_tile --size 120

Runs `cross_validate` in this process (`backend='serial'`: the process is the worker), MVGG19 only, 10 folds of 2
epochs (memory does not grow with epochs), baselines off, on the feature cache `--cache-dir` (extracted there first
if missing), twice, side by side: with the views memory-mapped (`ViewStack`, today's cache) and with every view
stacked into the process's own memory first (`np.asarray(views)`, what `_open_views` did before the cache kept
them mapped). A thread samples /proc/self/status every 20 ms: the peak of `RssAnon` (the process's private memory,
which each worker holds on its own) and of `RssFile` (file pages mapped in: the page cache, shared by every
worker and reclaimable). Weights: a seeded random backbone (memory does not depend on them). Linux only.
"""
import argparse, json, os, re, sys, tempfile, threading, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('KERAS_HOME', str(ROOT/'.keras_home'))

def status_mib():
    "RssAnon and RssFile of this process, MiB."
    s = Path('/proc/self/status').read_text()
    return {k: int(re.search(rf'^{k}:\s+(\d+) kB', s, re.M).group(1)) / 1024 for k in ('RssAnon', 'RssFile')}

class Peak:
    "Peak of `status_mib()` while the `with` block runs, sampled every `every` seconds."
    def __init__(self, every=0.02): self.every, self.peak, self._stop = every, {}, threading.Event()
    def _run(self):
        while not self._stop.is_set():
            for k, v in status_mib().items(): self.peak[k] = max(self.peak.get(k, 0.0), v)
            time.sleep(self.every)
    def __enter__(self):
        self.start = status_mib(); self._t = threading.Thread(target=self._run, daemon=True); self._t.start()
        return self
    def __exit__(self, *exc): self._stop.set(); self._t.join()

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dataset', default='casting')
    ap.add_argument('--size', type=int, default=100)
    ap.add_argument('--views', type=int, default=4)
    ap.add_argument('--cache-dir', default=str(ROOT/'.cache'/'features'))
    ap.add_argument('--out', default=str(ROOT/'benchmarks'/'results'/'worker_memory.json'))
    a = ap.parse_args(argv)
    import numpy as np
    import mvgg19_nb.train as train
    from mvgg19_nb.data import load_dataset
    from mvgg19_nb.results import provenance
    ds = load_dataset(a.dataset)
    extract = train.extract_features
    def in_ram(*args, **kw):  # the cache as it was: every view stacked into this process's memory
        f = extract(*args, **kw)
        f.views = np.asarray(f.views)
        return f
    kw = dict(models=('mvgg19',), input_size=(a.size, a.size), folds=10, epochs=2, views=a.views, weights=None,
              cache_dir=a.cache_dir, baselines=False, progress=False, backend='serial')
    with tempfile.TemporaryDirectory() as runs:  # the cache extracted if missing, the imports and kernels warm
        train.cross_validate(ds, out_dir=runs, **{**kw, 'folds': 2, 'epochs': 1})
    out = {}
    for name, patch in (('memory_mapped', extract), ('stacked_in_ram', in_ram)):
        train.extract_features = patch
        with tempfile.TemporaryDirectory() as runs, Peak() as p:
            t0 = time.perf_counter()
            res = train.cross_validate(ds, out_dir=runs, **kw)
        train.extract_features = extract
        out[name] = dict(peak_rss_anon_mib=p.peak['RssAnon'], peak_rss_file_mib=p.peak['RssFile'],
                         rss_anon_before_mib=p.start['RssAnon'], wall_s=time.perf_counter() - t0,
                         extract_s=res.timings.get('extract_s'))
        print(name, json.dumps(out[name]), flush=True)
    rec = dict(dataset=a.dataset, n_images=len(ds), input_size=[a.size, a.size], views=a.views, folds=10, epochs=2,
               results=out, private_memory_saved_mib=out['stacked_in_ram']['peak_rss_anon_mib']
               - out['memory_mapped']['peak_rss_anon_mib'], provenance=provenance({}))
    Path(a.out).write_text(json.dumps(rec, indent=1) + '\n')
    print('private memory saved per worker:', round(rec['private_memory_saved_mib']), 'MiB')

if __name__ == '__main__':
    main()
