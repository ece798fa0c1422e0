"""Frozen-backbone cross-validation: the authors' plain per-fold `fit` loop against the feature cache, side by side.

    python benchmarks/cv_speed.py                       # full ELPV at 100 px, as committed in results/cv_speed.json
    python benchmarks/cv_speed.py --dataset magnetic_tile --size 120 --plain-images 256
    python benchmarks/cv_speed.py --dataset magnetic_tile --max-images 60 --size 32 --folds 2 --epochs 1 \
        --plain-images 16 --extract-images 16 --precision-images 16 --loop-epochs 1 --out /tmp/quick.json  # a check
    python benchmarks/cv_speed.py --extraction-only      # (5) only: results/cv_speed_extraction.json, about a minute
    python benchmarks/cv_speed.py --heads-only --epochs 3 --cache-dir .cache/features   # (6) only, reduced:
                                                         # results/cv_speed_heads.json

Everything runs in one process on the same images: (1) one epoch of the plain loop (the whole model, backbone
included, per batch, as `model.fit` does every epoch of every fold) on `--plain-images` images, for each model;
(2) backbone throughput, plain `model.predict` of the backbone against the cached extractor, same images and batch;
(3) the whole cached protocol, `cross_validate` with a fresh cache, extraction included, folds trained in parallel
worker processes (`--workers`, default: one per core); (4) the head's epoch on the cache through
`fit(ViewSampler(...))` against `fit_cached_head`, the loop `cross_validate` uses; (5) extraction in float32 against
bfloat16 (Keras's `mixed_bfloat16` on the extractor's layers), `--precision-images` images, same batch, interleaved,
with the features' agreement and the CPU's bfloat16 flags; (6) the head phase alone on the cached features
(`cross_validate` on a warm cache, baselines off), each model's heads trained one fold at a time in parallel worker
processes (`heads='per_fold'`, the reference) against all folds of a model trained as one model (`heads='stacked'`,
`FoldStack`), with how far apart their results are. (7) The floors of this machine: the extraction's (the backbone's
FLOPs over the CPU's float32 peak) and the heads' (their FLOPs over that peak, training and the protocol's
per-epoch forward passes for precise BatchNorm and validation, plus Adam's memory traffic over a bandwidth
measured here, part by part), each phase's wall time as a multiple of its floor, the CPU's flags, and the engine and
precision that extracted (`--engine`). The plain loop's cost is projected from (1) to the full protocol
(folds x epochs x training-fold size, plus test predictions). The machine's load average is recorded with each timing:
other work on the cores slows every path. Weights: a seeded random backbone (ImageNet weights cannot be downloaded
here); speed does not depend on them.
"""
import argparse, json, os, platform, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('KERAS_HOME', str(Path(__file__).resolve().parents[1]/'.keras_home'))
import numpy as np, keras
from mvgg19_nb.data import load_dataset
from mvgg19_nb.engines import cpu_family, cpu_flags, cpu_name
from mvgg19_nb.features import (build_cached_head, engine_extractor, extract_features, feature_extractor,
                                native_bfloat16, resolve_engine)
from mvgg19_nb.images import cpu_cores
from mvgg19_nb.images import content_digest
from mvgg19_nb.model import PAPER_BRANCHES, build_backbone, build_model
from mvgg19_nb.heads import ViewSampler, compile_head, fit_cached_head
from mvgg19_nb.folds import STACKED_WORKERS, default_workers
from mvgg19_nb.train import cross_validate
from mvgg19_nb.experiment import EXPERIMENT_DEFAULTS

VAL_SPLIT = EXPERIMENT_DEFAULTS['val_split']  # each fold's validation part, as on the results pages

def best_of(fn, repeats):
    "Smallest wall time of `repeats` calls of `fn` (the least disturbed by other work on the machine)."
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times)

# --- (7) the floors of this machine --------------------------------------------------------------------------------
# float32 FLOP per cycle and core of the widest FMA the CPU has, assuming two FMA units a core (Intel from Skylake-SP,
# AMD from Zen 2 for 256-bit; Xeon Scalable and Zen 5 for 512-bit): an FMA is 2 FLOP on 16 (AVX-512) or 8 (AVX2)
# float32 lanes. Zen 4 (AMD family 25 with AVX-512) runs a 512-bit FMA as two 256-bit halves: its peak is the AVX2
# one. A part with one AVX-512 FMA unit reaches half the AVX-512 figure: the floor is then optimistic.
ISA_FLOP_PER_CYCLE = (('avx512f', 64), ('avx2', 32), ('avx', 16), ('sse2', 8))  # avx512f, avx2: with fma
FLAGS_REPORTED = ('sse2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16')
ADAM_ARRAYS = 7  # Adam's step reads 4 weight-sized float32 arrays (weights, gradient, two moments) and writes 3
                 # (weights, two moments): 7 passes over the weights a step, at least

def cpu_clock_hz():
    "The CPU's clock: lscpu's max MHz where it says, else /proc/cpuinfo's current 'cpu MHz' (None: unknown)."
    import subprocess
    try: out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError): out = ''
    for line in out.splitlines():
        if line.lower().startswith('cpu max mhz'): return float(line.split(':')[1]) * 1e6
    try: return max(float(l.split(':')[1]) for l in open('/proc/cpuinfo') if l.startswith('cpu MHz')) * 1e6
    except (OSError, ValueError): return None

def gemm_flops(n=4096, repeats=3):
    """Float32 FLOP/s of a numpy `n` x `n` matrix product on all cores (its BLAS), best of `repeats`: what this
    machine reaches where the clock it reports is not the one it runs at (a virtual machine's nominal clock)."""
    a, b = (np.random.default_rng(i).standard_normal((n, n), dtype='float32') for i in (0, 1))
    a @ b  # warm up
    return 2 * n ** 3 / best_of(lambda: a @ b, repeats)

def cpu_peak():
    "The float32 peak of the cores this process may use: cores x FLOP/cycle of the best ISA x clock, and how."
    flags, clock, (vendor, family) = cpu_flags(), cpu_clock_hz(), cpu_family()
    isa, per_cycle = next(((f, n) for f, n in ISA_FLOP_PER_CYCLE
                           if f in flags and ('fma' in flags or f in ('avx', 'sse2'))), ('scalar', 2))
    zen4 = isa == 'avx512f' and vendor == 'AuthenticAMD' and family == 25
    if zen4: per_cycle = dict(ISA_FLOP_PER_CYCLE)['avx2']  # 512-bit FMAs in two 256-bit halves
    cores = cpu_cores()
    out = dict(cores=cores, isa=isa + (' (Zen 4: two 256-bit halves)' if zen4 else ''), vendor=vendor,
               cpu_family=family, fp32_flop_per_cycle_per_core=per_cycle, clock_hz=clock,
               fp32_peak_flops=cores * per_cycle * clock if clock else None,
               assumption='two FMA units a core; clock: lscpu max MHz, else /proc/cpuinfo cpu MHz; the peak used is '
                          'the greater of that and a measured float32 matrix product (gemm_flops)')
    gemm = gemm_flops()
    out.update(gemm_flops=gemm, peak_used='nominal' if (out['fp32_peak_flops'] or 0) >= gemm else 'gemm')
    out['fp32_peak_flops'] = max(out['fp32_peak_flops'] or 0, gemm)  # the floor's peak: an upper bound on speed
    if 'amx_bf16' in flags:  # a tile multiply of 16x32 by 32x16 bf16: 1024 bf16 FLOP/cycle/core (Sapphire Rapids)
        out['amx_bf16_note'] = ('AMX: up to about 1024 bfloat16 FLOP per cycle and core, 16 times the float32 FMA '
                                'peak; precision=bfloat16 can run below the float32 floor')
    return out

def memory_bandwidth(mbytes=256, repeats=3, streams=None):
    """Bytes per second of numpy copies of `mbytes` MB each (read + written), one per core at once (`streams`, default
    the cores this process may use: the fold workers train side by side), best of `repeats`."""
    from concurrent.futures import ThreadPoolExecutor  # np.copyto releases the GIL: the copies run in parallel
    streams = streams or cpu_cores()
    pairs = [(np.ones(mbytes * 2 ** 20 // 4, 'float32'), np.empty(mbytes * 2 ** 20 // 4, 'float32'))
             for _ in range(streams)]
    with ThreadPoolExecutor(streams) as pool:
        copy_all = lambda: list(pool.map(lambda ab: np.copyto(ab[1], ab[0]), pairs))
        copy_all()  # touch the pages first
        return 2 * sum(a.nbytes for a, _ in pairs) / best_of(copy_all, repeats)

def model_flops(model):
    "Forward FLOPs of one image through `model`'s Conv2D and Dense layers (2 per multiply-add)."
    flops = 0
    for l in model.layers:
        if isinstance(l, keras.layers.Conv2D):
            kh, kw = l.kernel_size; cin = l.kernel.shape[2]; _, h, w, cout = l.output.shape
            flops += 2 * h * w * kh * kw * cin * cout
        elif isinstance(l, keras.layers.Dense): flops += 2 * int(np.prod(l.kernel.shape))
    return flops

def head_floor(head, train_samples, steps, val_samples, peak, bandwidth):
    """A head's floor, in seconds, part by part: forward and backward of its Dense layers (6 FLOP a weight a
    training sample), Adam's memory traffic each step, and the forward passes the protocol adds each epoch: the
    precise BatchNorm statistics over the training images (every Dense layer but the classifier, which follows the
    last BatchNorm: 2 FLOP a weight a sample) and the validation predictions (every Dense layer, 2 FLOP a weight)."""
    kernels = [int(np.prod(l.kernel.shape)) for l in head.layers if isinstance(l, keras.layers.Dense)]
    weights = sum(int(np.prod(w.shape)) for w in head.trainable_weights)
    parts = dict(train_s=6 * sum(kernels) * train_samples / peak,
                 adam_s=ADAM_ARRAYS * 4 * weights * steps / bandwidth,
                 precise_bn_s=2 * sum(kernels[:-1]) * train_samples / peak,
                 validation_s=2 * sum(kernels) * val_samples / peak)
    return dict(floor_s=sum(parts.values()), parts=parts, dense_weights=sum(kernels), trainable_weights=weights,
                steps=steps)

def floors(size, n_images, views, n_train, n_val, folds, epochs, batch_size, num_classes, layout):
    "(7) This machine's floors for the protocol: extraction and heads, in seconds, with what they rest on."
    peak, bw = cpu_peak(), memory_bandwidth()
    backbone = build_backbone(size, weights=None)
    per_image = model_flops(backbone)
    out = dict(cpu=peak, memory_bandwidth_bytes_per_s=bw, backbone_gflop_per_image=per_image / 1e9,
               cpu_flags={f: f in cpu_flags() for f in FLAGS_REPORTED})
    if not peak['fp32_peak_flops']: return out
    out['extraction_floor_s'] = per_image * n_images * views / peak['fp32_peak_flops']
    steps = -(-int(n_train) // batch_size) * epochs * folds
    runs = epochs * folds  # bn_stats='precise': the statistics are set before each validation (every epoch)
    heads = {m: head_floor(build_cached_head(m, num_classes, layout), n_train * runs, steps, n_val * runs,
                           peak['fp32_peak_flops'], bw) for m in ('vgg19', 'mvgg19')}
    out.update(heads_floor=heads, heads_floor_s=sum(h['floor_s'] for h in heads.values()))
    return out

def extraction_precision(images, size, batch_size=64, repeats=2):
    "(5) Feature extraction in float32 and in bfloat16 on the same `images`: img/s, and how close the features are."
    x = {}
    for p in ('float32', 'bfloat16'):
        x[p], _ = feature_extractor(size, weights=None, seed=0, precision=p)
        x[p].predict(images[:batch_size], batch_size=batch_size, verbose=0)  # warm up
    times, feats = {p: [] for p in x}, {}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for p, ext in x.items():
            t0 = time.perf_counter(); feats[p] = ext.predict(images, batch_size=batch_size, verbose=0)
            times[p].append(time.perf_counter() - t0)
    a, b = feats['float32'].astype('float64'), feats['bfloat16'].astype('float64')
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rel = np.abs(b - a).max(1) / np.abs(a).max(1)  # per image, relative to its largest feature
    ips = {p: len(images) / min(t) for p, t in times.items()}
    flags, (native, why) = cpu_flags(), native_bfloat16()
    out = dict(img_per_s=ips, bfloat16_vs_float32=ips['bfloat16'] / ips['float32'], cosine_min=float(cos.min()),
               cosine_mean=float(cos.mean()), rel_diff_max=float(rel.max()), rel_diff_mean=float(rel.mean()),
               images=len(images), batch_size=batch_size, repeats=repeats, input_size=list(size),
               cpu_flags={f: f in flags for f in ('amx_bf16', 'avx512_bf16')}, native_bfloat16=native,
               native_bfloat16_reason=why)
    print(f"extraction: float32 {ips['float32']:.1f} img/s, bfloat16 {ips['bfloat16']:.1f} img/s "
          f"(x{out['bfloat16_vs_float32']:.2f}; {why}); features: cosine similarity >= {cos.min():.6f}, "
          f"largest difference {rel.max():.2%} of an image's largest feature", flush=True)
    return out

HEAD_VARIANTS = {'per_fold': dict(heads='per_fold'), 'stacked': dict(heads='stacked')}

def head_phase(ds, size, folds, epochs, batch_size, views, cache_dir, variants=HEAD_VARIANTS, workers=None, repeats=1,
               engine='keras'):
    """(6) The head phase alone, on features already in `cache_dir`: each variant of `cross_validate` in a fresh run
    folder and with fresh worker processes (as a new script would start), `repeats` times in alternating order
    (ABBA...), its best wall time (the least disturbed by other work), and how far its probabilities and histories
    are from the first variant's."""
    from joblib.externals.loky import get_reusable_executor
    out, runs, names = {}, {}, list(variants)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            load = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                res = cross_validate(ds, input_size=size, folds=folds, epochs=epochs, batch_size=batch_size,
                                     val_split=VAL_SPLIT, weights=None, views=views, out_dir=d, cache_dir=cache_dir,
                                     progress=False, baselines=False, workers=workers, engine=engine, **variants[name])
                wall = time.perf_counter() - t0 - res.timings['extract_s']
            get_reusable_executor().shutdown(wait=True)  # the next run starts its workers afresh, not warm
            runs[name] = res
            o = out.setdefault(name, dict(heads_s_each=[], loadavg_1min_before=[], loadavg_1min_after=[]))
            o['heads_s_each'].append(wall); o['loadavg_1min_before'].append(load)
            o['loadavg_1min_after'].append(os.getloadavg()[0])
            o.update(heads_s=min(o['heads_s_each']), workers=res.timings['workers'], heads=res.timings['heads'])
            print(f"head phase, {name}: {wall:.1f} s in {o['workers']} process(es) (load average {load:.1f} before, "
                  f"{o['loadavg_1min_after'][-1]:.1f} after)", flush=True)
    ref_name, ref = names[0], runs[names[0]]
    for name in names[1:]:
        res = runs[name]
        out[name][f'speedup_vs_{ref_name}'] = out[ref_name]['heads_s'] / out[name]['heads_s']
        dp = max(float(np.abs(res.runs[m]['proba'] - ref.runs[m]['proba']).max()) for m in ref.runs)
        dh = max(float(np.max(np.abs(np.subtract(h[k], g[k])) / np.maximum(1.0, np.abs(g[k]))))
                 for m in ref.runs for h, g in zip(res.runs[m]['histories'], ref.runs[m]['histories']) for k in g)
        out[name][f'vs_{ref_name}'] = dict(max_abs_proba_diff=dp, max_rel_history_diff=dh)
        print(f"head phase, {name} against {ref_name} (best of {repeats}): x{out[name][f'speedup_vs_{ref_name}']:.2f}; "
              f"largest probability difference {dp:.2e}, largest relative history difference {dh:.2e}", flush=True)
    return out

def machine():
    flags = cpu_flags()
    return dict(cpu=cpu_name(), cpus=os.cpu_count(), python=platform.python_version(), keras=keras.__version__,
                backend=keras.backend.backend(), platform=platform.platform(),
                cpu_flags={f: f in flags for f in ('amx_bf16', 'avx512_bf16')},
                isa_flags={f: f in flags for f in FLAGS_REPORTED})

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset', default='elpv'); ap.add_argument('--size', type=int, default=100)
    ap.add_argument('--folds', type=int, default=10); ap.add_argument('--epochs', type=int, default=15)
    ap.add_argument('--batch-size', type=int, default=32); ap.add_argument('--views', type=int, default=1)
    ap.add_argument('--plain-images', type=int, default=512, help='images for the timed plain epoch')
    ap.add_argument('--extract-images', type=int, default=512, help='images for the throughput comparison')
    ap.add_argument('--max-images', type=int, default=None, help='cap the dataset (quick checks only)')
    ap.add_argument('--workers', type=int, default=None, help='processes for the folds (default: one per core)')
    ap.add_argument('--loop-epochs', type=int, default=3, help='epochs for the head-loop comparison (4)')
    ap.add_argument('--precision-images', type=int, default=256, help='images for the float32/bfloat16 comparison (5)')
    ap.add_argument('--extraction-only', action='store_true',
                    help='run only (5), writing results/cv_speed_extraction.json (unless --out)')
    ap.add_argument('--heads-only', action='store_true',
                    help='run only (6) on a warm cache, writing results/cv_speed_heads.json (unless --out)')
    ap.add_argument('--cache-dir', default=None, help='feature cache for --heads-only (default: a temporary folder)')
    ap.add_argument('--head-repeats', type=int, default=1,
                    help='runs of each head-phase variant (6), alternating order')
    ap.add_argument('--engine', default='keras', choices=('keras', 'onnxruntime', 'auto'),
                    help="who runs the backbone for (2), (3) and (6) (extract_features's engine)")
    ap.add_argument('--out', default=None, help='results file (default results/cv_speed.json)')
    a = ap.parse_args(argv)
    results = Path(__file__).parent/'results'
    a.out = a.out or str(results/('cv_speed_extraction.json' if a.extraction_only else
                                  'cv_speed_heads.json' if a.heads_only else 'cv_speed.json'))
    size, t_all = (a.size, a.size), time.perf_counter()
    ds = load_dataset(a.dataset)
    if a.max_images: ds = ds.sample(a.max_images, seed=0)
    if a.extraction_only:
        sub = ds.sample(min(a.precision_images, len(ds)), seed=0)
        print(f'{a.dataset}: {len(sub)} of {len(ds)} images, {size[0]}x{size[1]} px, '
              f'backend {keras.backend.backend()}, {os.cpu_count()} CPUs ({cpu_name()})')
        out = dict(extraction_precision=extraction_precision(sub.load(size, progress=False), size),
                   params=dict(dataset=a.dataset, weights='random (seed 0)'), machine=machine(),
                   benchmark_wall_s=time.perf_counter() - t_all, date=time.strftime('%Y-%m-%d %H:%M:%S'))
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1))
        return print(f'wrote {a.out}')
    if a.heads_only:
        with tempfile.TemporaryDirectory() as d:
            cache = a.cache_dir or d
            t0 = time.perf_counter()  # warm the cache (a no-op where it already holds these features)
            extract_features(lambda: ds.load(size, progress=False), cache, content_digest(ds.digests()), size, None,
                             views=a.views, progress=False, engine=a.engine)
            warm_s = time.perf_counter() - t0
            print(f'{a.dataset}: {len(ds)} images, {size[0]}x{size[1]} px, {a.folds} folds x {a.epochs} epochs, '
                  f'cache warm in {warm_s:.0f} s; {os.cpu_count()} CPUs ({cpu_name()})', flush=True)
            heads = head_phase(ds, size, a.folds, a.epochs, a.batch_size, a.views, cache, workers=a.workers,
                               repeats=a.head_repeats, engine=a.engine)
        out = dict(head_phase=heads, cache_warm_s=warm_s,
                   params=dict(dataset=a.dataset, n_images=len(ds), input_size=list(size), folds=a.folds,
                               epochs=a.epochs, batch_size=a.batch_size, views=a.views, models=['vgg19', 'mvgg19'],
                               val_split=VAL_SPLIT, bn_stats='precise', weights='random (seed 0)', workers=a.workers,
                               default_workers_per_fold=default_workers(2 * a.folds), stacked_workers=STACKED_WORKERS,
                               head_repeats=a.head_repeats,
                               reduced=a.epochs < 15 or a.folds < 10 or a.max_images is not None,
                               note='head phase only, on features cached beforehand (extraction excluded)'),
                   machine=machine(), benchmark_wall_s=time.perf_counter() - t_all,
                   date=time.strftime('%Y-%m-%d %H:%M:%S'))
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1))
        return print(f'wrote {a.out}')
    images = ds.load(size, progress=False)
    n, k = len(ds), len(ds.classes)
    print(f'{a.dataset}: {n} images, {k} classes, {size[0]}x{size[1]} px, backend {keras.backend.backend()}, '
          f'{os.cpu_count()} CPUs ({cpu_name()})')

    # (1) the plain loop: one epoch of model.fit on the whole frozen model, per model
    rng = np.random.default_rng(0)
    sub = rng.choice(n, min(a.plain_images, n), replace=False)
    plain_epoch = {}
    for m in ('vgg19', 'mvgg19'):
        model = compile_head(build_model(m, k, size, weights=None))
        model.fit(images[sub[:a.batch_size]], ds.labels[sub[:a.batch_size]], epochs=1, verbose=0)  # compile and warm up
        t = best_of(lambda: model.fit(images[sub], ds.labels[sub], batch_size=a.batch_size, epochs=1, verbose=0), 1)
        plain_epoch[m] = t / len(sub)
        print(f'plain fit, {m}: {t:.1f} s for one epoch of {len(sub)} images ({len(sub) / t:.1f} img/s)')

    # (2) extraction against plain backbone inference, same images, same batch
    x = images[rng.choice(n, min(a.extract_images, n), replace=False)]
    backbone = build_backbone(size, weights=None)
    with tempfile.TemporaryDirectory() as d:  # the engine and precision the cached run below extracts with
        engine, precision_used = resolve_engine(a.engine, 'float32', d, size, None, batch_size=64)
    extractor, _ = engine_extractor(engine, size, None, PAPER_BRANCHES, 'block5_pool', 'vgg', 0, precision_used)
    for f in (backbone, extractor): f.predict(x[:64], batch_size=64, verbose=0)  # warm up
    t_pred, t_ext = [], []
    for _ in range(2):  # interleaved, so both see the same machine load
        t_pred.append(best_of(lambda: backbone.predict(x, batch_size=64, verbose=0), 1))
        t_ext.append(best_of(lambda: extractor.predict(x, batch_size=64, verbose=0), 1))
    predict_ips, extract_ips = len(x) / min(t_pred), len(x) / min(t_ext)
    print(f'backbone predict {predict_ips:.1f} img/s, cached extraction ({engine}) {extract_ips:.1f} img/s: '
          f'ratio {extract_ips / predict_ips:.3f}')

    # (5) extraction in float32 against bfloat16
    precision = extraction_precision(images[rng.choice(n, min(a.precision_images, n), replace=False)], size)

    # (3) the whole cached protocol, extraction included
    with tempfile.TemporaryDirectory() as d:
        res = cross_validate(ds, input_size=size, folds=a.folds, epochs=a.epochs, batch_size=a.batch_size,
                             val_split=VAL_SPLIT, weights=None, views=a.views, out_dir=d, cache_dir=Path(d)/'cache',
                             workers=a.workers, progress=False, engine=a.engine)
        cache_bytes = sum(p.stat().st_size for p in (Path(d)/'cache').rglob('*.npy'))
        print(f"cached run: {res.timings['wall_s']:.1f} s in {res.timings['workers']} worker process(es)", flush=True)

        # (4) the head's epochs through fit(PyDataset) and through fit_cached_head, same head, same fold
        feats = extract_features(None, Path(d)/'cache', content_digest(ds.digests()), size, None, views=a.views,
                                 progress=False, engine=a.engine)
        tr = np.setdiff1d(np.arange(n), res.folds[0])
        loop_s = {}
        for name in ('fit_pydataset', 'fit_cached_head'):
            keras.utils.set_random_seed(0)
            head = compile_head(build_cached_head('mvgg19', k, feats.layout))
            t0 = time.perf_counter()
            if name == 'fit_pydataset':
                head.fit(ViewSampler(feats.views, tr, ds.labels, a.batch_size), epochs=a.loop_epochs, verbose=0)
            else: fit_cached_head(head, feats.views, tr, ds.labels, a.loop_epochs, a.batch_size)
            loop_s[name] = (time.perf_counter() - t0) / a.loop_epochs
            print(f'MVGG19 head, {name}: {loop_s[name]:.2f} s per epoch of {len(tr)} images (tracing included)',
                  flush=True)

        # (6) the head phase on the same cache: one fold at a time in parallel processes, and all folds as one model
        heads = head_phase(ds, size, a.folds, a.epochs, a.batch_size, a.views, Path(d)/'cache', workers=a.workers,
                           repeats=a.head_repeats, engine=a.engine)
        layout = feats.layout
        del feats
    cached_wall = res.timings['wall_s']
    fit_s = {m: [t['fit_s'] for t in r['timings']] for m, r in res.runs.items()}
    cached_epoch = {m: float(np.mean(v)) / a.epochs for m, v in fit_s.items()}
    n_train = np.mean([n - len(te) for te in res.folds])
    plain_total = sum(plain_epoch[m] * n_train * a.epochs * a.folds + n / predict_ips for m in plain_epoch)
    speedup = plain_total / cached_wall
    for m in ('vgg19', 'mvgg19'):
        print(f'per epoch, {m}: plain {plain_epoch[m] * n_train:.1f} s, cached {cached_epoch[m]:.2f} s '
              f'(x{plain_epoch[m] * n_train / cached_epoch[m]:.0f})')
    print(f"cached {a.folds}-fold x {a.epochs}-epoch run of both models: {cached_wall:.1f} s wall "
          f"(extraction {res.timings['extract_s']:.1f} s); plain loop projected: {plain_total:.0f} s; "
          f"speed-up x{speedup:.0f}")
    acc = {m: float(res.metrics(m)['accuracy'].mean()) for m in res.runs}
    floor = floors(size, n, a.views, n_train * (1 - VAL_SPLIT), n_train * VAL_SPLIT, a.folds, a.epochs,
                   a.batch_size, k, layout)
    floor.update(engine=res.timings.get('engine', engine), precision='float32')
    if 'extraction_floor_s' in floor:
        head_s = heads['per_fold']['heads_s']
        floor.update(extraction_wall_over_floor=res.timings['extract_s'] / floor['extraction_floor_s'],
                     extraction_share_of_peak=floor['extraction_floor_s'] / res.timings['extract_s'],
                     heads_wall_s=head_s, heads_wall_over_floor=head_s / floor['heads_floor_s'],
                     heads_stacked_wall_over_floor=heads['stacked']['heads_s'] / floor['heads_floor_s'],
                     protocol_floor_s=floor['extraction_floor_s'] + floor['heads_floor_s'],
                     protocol_wall_over_floor=cached_wall / (floor['extraction_floor_s'] + floor['heads_floor_s']))
        print(f"floors ({floor['cpu']['cores']} cores x {floor['cpu']['fp32_flop_per_cycle_per_core']} FLOP/cycle "
              f"({floor['cpu']['isa']}) x {floor['cpu']['clock_hz'] / 1e9:.2f} GHz; copy "
              f"{floor['memory_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s): extraction {floor['extraction_floor_s']:.1f} s "
              f"(wall x{floor['extraction_wall_over_floor']:.2f}, {floor['extraction_share_of_peak']:.0%} of peak), "
              f"heads {floor['heads_floor_s']:.1f} s (wall x{floor['heads_wall_over_floor']:.2f}), protocol "
              f"x{floor['protocol_wall_over_floor']:.2f}; engine {floor['engine']}", flush=True)
    out = dict(speedup_full_protocol=speedup, extraction_vs_predict=extract_ips / predict_ips,
               cached_cv_wall_s=cached_wall, cached_timings=res.timings, extract_s=res.timings['extract_s'],
               plain_projected_s=plain_total,
               extraction_precision=precision, plain_epoch_s={m: plain_epoch[m] * n_train for m in plain_epoch},
               cached_epoch_s=cached_epoch, workers=res.timings['workers'], heads=res.timings['heads'],
               head_phase=heads, head_loop_epoch_s=loop_s, predict_img_per_s=predict_ips,
               extract_img_per_s=extract_ips, cache_bytes=cache_bytes, cached_mean_accuracy=acc, floors=floor,
               engine=floor['engine'], precision=floor['precision'],
               params=dict(dataset=a.dataset, n_images=n, input_size=list(size), folds=a.folds, epochs=a.epochs,
                           batch_size=a.batch_size, views=a.views, plain_images=len(sub), extract_images=len(x),
                           weights='random (seed 0)', head_repeats=a.head_repeats, engine=a.engine,
                           reduced=a.epochs < 15 or a.folds < 10 or a.max_images is not None),
               machine=machine(),
               benchmark_wall_s=time.perf_counter() - t_all, date=time.strftime('%Y-%m-%d %H:%M:%S'))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f'wrote {a.out}')

if __name__ == '__main__': main()
