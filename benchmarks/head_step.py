"""Where a head's training time goes, on one thread as a fold worker has it (`cores // workers` threads, here one).

    python benchmarks/head_step.py            # results/head_step.json: both models, 150 steps, a 5-epoch fold

(1) Per step (batch 32, random features of ELPV's layout at 100 px): the loop of `train_on_batch` `fit_cached_head`
runs, `fit` on a `ViewSampler`, `fit` on the epoch's arrays with 64 steps in one compiled call, the compiled step
they run (forward, backward and `FusedAdam`), forward and backward alone, `FusedAdam`'s update alone
and Keras's `Adam`'s, and the step's three matrix products in NumPy (its BLAS, one thread) for the arithmetic alone.
(2) One fold of `fit_cached_head` (2,125 training and 236 validation images, the ELPV fold's sizes), profiled:
the share of its time in the train steps, the precise BatchNorm statistics, the validation predictions. Speed does
not depend on the features' values; the weights are random (seed 0).
"""
import argparse, cProfile, json, os, platform, pstats, time
from pathlib import Path
os.environ.setdefault('KERAS_HOME', str(Path(__file__).resolve().parents[1]/'.keras_home'))
import numpy as np, tensorflow as tf, keras
from mvgg19_nb.engines import cpu_name
from mvgg19_nb.features import build_cached_head, feature_layout
from mvgg19_nb.heads import FusedAdam, ViewSampler, compile_head, fit_cached_head
from mvgg19_nb.model import PAPER_BRANCHES, build_backbone

def per_step_ms(fn, n):
    "Mean milliseconds of `fn(i)` over `n` calls, after one untimed call (tracing)."
    fn(0); t0 = time.perf_counter()
    for i in range(n): fn(i)
    return (time.perf_counter() - t0) / n * 1e3

def epoch_step_ms(fn, steps):
    "Milliseconds a step of `fn()`, an epoch of `steps` steps, the best of 3 calls after one untimed call (tracing)."
    fn(); times = []
    for _ in range(3):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times) / steps * 1e3

def numpy_matmuls_ms(head, batch_size, steps):
    """Milliseconds of a step's matrix products for the first Dense layer (forward, weight gradient, input gradient:
    the step's arithmetic, the other layers are small) in NumPy on one thread."""
    from threadpoolctl import threadpool_limits
    kernel = np.asarray(next(l for l in head.layers if isinstance(l, keras.layers.Dense)).kernel)
    x = np.ones((batch_size, kernel.shape[0]), 'float32'); dy = np.ones((batch_size, kernel.shape[1]), 'float32')
    with threadpool_limits(1):
        return per_step_ms(lambda i: (x @ kernel, x.T @ dy, dy @ kernel.T), steps)

def random_features(layout, n, seed=0):
    "`n` rows of non-negative random features in `layout` (moments and means are), and random binary labels."
    rng = np.random.default_rng(seed)
    width = max(v['stop'] for v in layout.values())
    return np.abs(rng.standard_normal((n, width))).astype('float32'), rng.integers(0, 2, n)

def step_parts(m, layout, steps, batch_size=32):
    "(1) The parts of one training step of the `m` head, in milliseconds."
    x, y = random_features(layout, steps * batch_size)
    xb, yb = np.split(x, steps), np.split(y, steps)
    head = compile_head(build_cached_head(m, 2, layout))
    multi = build_cached_head(m, 2, layout)  # `fit` running 64 steps in one compiled call
    multi.compile(optimizer=FusedAdam(), loss='sparse_categorical_crossentropy', metrics=['accuracy'],
                  steps_per_execution=64)
    out = dict(fit_64_steps_a_call=epoch_step_ms(lambda: multi.fit(x, y, batch_size, shuffle=False, verbose=0), steps),
               fit_pydataset=epoch_step_ms(lambda: head.fit(ViewSampler(x[None], np.arange(len(y)), y, batch_size),
                                                            verbose=0), steps),
               train_on_batch=per_step_ms(lambda i: head.train_on_batch(xb[i], yb[i], return_dict=True), steps))
    opt, loss_fn, tv = head.optimizer, keras.losses.SparseCategoricalCrossentropy(), head.trainable_variables
    @tf.function
    def grads(x, y):
        with tf.GradientTape() as t: loss = loss_fn(y, head(x, training=True))
        return t.gradient(loss, tv)
    @tf.function
    def step(x, y): opt.apply(grads(x, y), tv)
    @tf.function
    def fused(g): opt.apply(g, tv)
    adam = keras.optimizers.Adam(); adam.build(tv)
    @tf.function
    def plain(g): adam.apply(g, tv)
    xt, yt = [tf.constant(a) for a in xb], [tf.constant(a) for a in yb]
    g0 = grads(xt[0], yt[0])
    out.update(compiled_step=per_step_ms(lambda i: step(xt[i], yt[i]), steps),
               forward_backward=per_step_ms(lambda i: grads(xt[i], yt[i]), steps),
               fused_adam=per_step_ms(lambda i: fused(g0), steps), keras_adam=per_step_ms(lambda i: plain(g0), steps))
    dense = sum(int(np.prod(l.kernel.shape)) for l in head.layers if isinstance(l, keras.layers.Dense))
    out['numpy_matmuls'] = numpy_matmuls_ms(head, batch_size, steps)
    out.update(trainable_weights=sum(int(np.prod(v.shape)) for v in tv), dense_weights=dense,
               forward_backward_gflop_per_s=6 * dense * batch_size / (out['forward_backward'] / 1e3) / 1e9)
    return out

PARTS = ('train_on_batch', 'precise_bn_stats', 'standardize_inputs', 'predict')

def fold_profile(m, layout, epochs, n_train=2125, n_val=236):
    "(2) One fold of `fit_cached_head`, profiled: wall seconds and the share of each part."
    x, labels = random_features(layout, n_train + n_val)
    views, idx, val = x[None], np.arange(n_train), np.arange(n_train, n_train + n_val)
    head = compile_head(build_cached_head(m, 2, layout))
    fit = lambda e: fit_cached_head(head, views, idx, labels, e, 32, validation=(views[0][val], labels[val]))
    fit(1)  # tracing
    prof = cProfile.Profile(); t0 = time.perf_counter(); prof.enable(); fit(epochs); prof.disable()
    wall, stats = time.perf_counter() - t0, pstats.Stats(prof).stats
    share = {p: sum(v[3] for k, v in stats.items() if k[2] == p) / wall for p in PARTS}
    return dict(wall_s=wall, epochs=epochs, steps=epochs * -(-n_train // 32), share=share,
                note='shares of the profiled wall time (cProfile adds its own overhead to the Python parts)')

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=150); ap.add_argument('--epochs', type=int, default=5)
    ap.add_argument('--out', default=str(Path(__file__).parent/'results'/'head_step.json'))
    a = ap.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(1); tf.config.threading.set_inter_op_parallelism_threads(1)
    layout = feature_layout(build_backbone((100, 100), weights=None), PAPER_BRANCHES)
    out = dict(step_ms={}, fold={})
    for m in ('vgg19', 'mvgg19'):
        out['step_ms'][m] = step_parts(m, layout, a.steps)
        out['fold'][m] = fold_profile(m, layout, a.epochs)
        s, f = out['step_ms'][m], out['fold'][m]
        print(f"{m}: train_on_batch {s['train_on_batch']:.1f} ms a step (fit on a ViewSampler "
              f"{s['fit_pydataset']:.1f}, fit 64 steps a call {s['fit_64_steps_a_call']:.1f}; NumPy's products "
              f"{s['numpy_matmuls']:.1f}), compiled step {s['compiled_step']:.1f} ms "
              f"(forward and backward {s['forward_backward']:.1f} ms, {s['forward_backward_gflop_per_s']:.0f} GFLOP/s; "
              f"FusedAdam {s['fused_adam']:.1f} ms, Keras Adam {s['keras_adam']:.1f} ms); a fold of {f['epochs']} "
              f"epochs {f['wall_s']:.1f} s: " + ', '.join(f'{p} {v:.0%}' for p, v in f['share'].items()), flush=True)
    out.update(params=dict(steps=a.steps, epochs=a.epochs, batch_size=32, threads=1, input_size=[100, 100],
                           weights='random (seed 0)'),
               machine=dict(cpu=cpu_name(), cpus=os.cpu_count(), python=platform.python_version(),
                            keras=keras.__version__, backend=keras.backend.backend()),
               date=time.strftime('%Y-%m-%d %H:%M:%S'))
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f'wrote {a.out}')

if __name__ == '__main__': main()
