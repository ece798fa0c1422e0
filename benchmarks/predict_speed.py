"""Prediction throughput of `mvgg19 predict`: the Keras model against its ONNX export, side by side, same files.

    python benchmarks/predict_speed.py                                 # as committed in results/predict_speed.json
    python benchmarks/predict_speed.py --dataset magnetic_tile --size 120 --images 256 --batch-size 64

One process, the same image files, the same batch size, both runtimes interleaved in each repeat (so both see
the same machine load), the best repeat of each kept (the one least disturbed by other work): (1) end to end,
image files to the predictions table with `mvgg19_nb.predict.predict_images`, what `mvgg19 predict` runs (decoding,
resizing as in training, the model, the table); (2) the model alone on the decoded batch (Keras `model.predict`
against the ONNX Runtime session), so that the share of decoding shows; (3) a fresh `mvgg19 predict` process on
one image with each model file, start-up included (what a line pays when it starts the command per batch of parts:
the .keras path imports TensorFlow, the .onnx one does not). Also the largest probability difference between the
two runtimes on these images. Both runtimes use their default threads (one per core). Beside the wall times, the
process's CPU time of each pass (all threads): on a machine shared with other work, wall times swing with the
other jobs' load, while the CPU seconds a runtime spends per image change much less.
Model: MVGG19 (the paper's branches, Dense(2500) head) on a seeded random backbone (weights=None: ImageNet weights
cannot be downloaded here; speed does not depend on the weights), untrained head, the dataset's classes.
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('KERAS_HOME', str(Path(__file__).resolve().parents[1]/'.keras_home'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import numpy as np
from mvgg19_nb.predict import OnnxModel, predict_images, read_batch
from mvgg19_nb.data import load_dataset


def cpu_name():
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: return platform.processor()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dataset', default='casting', help='a dataset of mvgg19_nb.data.DATASETS (its images are read)')
    ap.add_argument('--size', type=int, default=100, help='input size, square (px)')
    ap.add_argument('--images', type=int, default=64, help='images (a stratified sample of the dataset)')
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--out', default=str(Path(__file__).parent/'results'/'predict_speed.json'))
    a = ap.parse_args(argv)
    t_start, load0 = time.perf_counter(), os.getloadavg()
    import keras
    from mvgg19_nb.model import build_model, with_classes
    from mvgg19_nb.predict import export_onnx, save_model
    ds = load_dataset(a.dataset).sample(a.images, seed=0)
    paths, size = ds.paths, (a.size, a.size)
    model = with_classes(build_model('mvgg19', len(ds.classes), size, weights=None, seed=0), ds.classes)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        onnx = OnnxModel(export_onnx(model, Path(d)/'m.onnx'))
        export_s = time.perf_counter() - t0
        runtimes = {'keras': model, 'onnx': onnx}
        x = read_batch(paths, size)[0]
        for m in runtimes.values(): m.predict(x[:a.batch_size], batch_size=a.batch_size, verbose=0)  # warm up
        e2e, compute, tables, proba = {k: [] for k in runtimes}, {k: [] for k in runtimes}, {}, {}
        cpu = {f'{k}_{w}': [] for k in runtimes for w in ('end_to_end', 'model_only')}  # process CPU seconds
        for _ in range(a.repeats):
            for k, m in runtimes.items():
                t0, c0 = time.perf_counter(), time.process_time()
                tables[k] = predict_images(m, paths, ds.classes, a.batch_size, progress=False, log=lambda s: None)
                e2e[k].append(time.perf_counter() - t0); cpu[f'{k}_end_to_end'].append(time.process_time() - c0)
                t0, c0 = time.perf_counter(), time.process_time()
                proba[k] = m.predict(x, batch_size=a.batch_size, verbose=0)
                compute[k].append(time.perf_counter() - t0); cpu[f'{k}_model_only'].append(time.process_time() - c0)
        files, cold = {'keras': save_model(model, Path(d)/'m.keras'), 'onnx': Path(d)/'m.onnx'}, {}
        code = 'import sys; from mvgg19_nb.cli import main; sys.exit(main(sys.argv[1:]))'
        for k, f in files.items():  # the file is in the page cache by now: start-up and one image, not the disk
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, '-c', code, 'predict', str(f), paths[0], '--no-progress'],
                               capture_output=True, text=True)
            cold[k] = time.perf_counter() - t0
            if r.returncode: raise RuntimeError(f'mvgg19 predict {f.name} failed: {r.stderr}')
    ips = lambda times: {k: len(paths) / min(t) for k, t in times.items()}
    diff = float(np.abs(proba['onnx'] - proba['keras']).max())
    same = float((tables['onnx'].predicted == tables['keras'].predicted).mean())
    import onnxruntime
    res = dict(
        end_to_end_img_per_s=ips(e2e), model_only_img_per_s=ips(compute),
        onnx_vs_keras=dict(end_to_end=ips(e2e)['onnx'] / ips(e2e)['keras'],
                           model_only=ips(compute)['onnx'] / ips(compute)['keras']),
        cpu_ms_per_image={k: 1000 * float(np.median(v)) / len(paths) for k, v in cpu.items()},
        one_image_process_s=cold, seconds=dict(end_to_end=e2e, model_only=compute, onnx_export=export_s),
        cpu_seconds=cpu,
        max_probability_difference=diff, same_predicted_class=same,
        params=dict(dataset=a.dataset, images=len(paths), input_size=list(size), batch_size=a.batch_size,
                    repeats=a.repeats, model='mvgg19', weights='random (seed 0)', classes=ds.classes),
        machine=dict(cpu=cpu_name(), cpus=len(os.sched_getaffinity(0)), python=platform.python_version(),
                     keras=keras.__version__, backend=keras.backend.backend(),
                     tensorflow=sys.modules['tensorflow'].__version__, onnxruntime=onnxruntime.__version__,
                     onnx_providers=onnx.session.get_providers(), platform=platform.platform(),
                     load_average_before=list(load0), load_average_after=list(os.getloadavg())),
        benchmark_wall_s=time.perf_counter() - t_start, date=time.strftime('%Y-%m-%d %H:%M:%S'))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + '\n')
    e, c, m = res['end_to_end_img_per_s'], res['model_only_img_per_s'], res['cpu_ms_per_image']
    print(f"{len(paths)} {a.dataset} images at {a.size} px, batch {a.batch_size}: end to end Keras {e['keras']:.1f} "
          f"img/s, ONNX {e['onnx']:.1f} img/s (x{res['onnx_vs_keras']['end_to_end']:.2f}); model only Keras "
          f"{c['keras']:.1f} img/s, ONNX {c['onnx']:.1f} img/s (x{res['onnx_vs_keras']['model_only']:.2f}); CPU ms "
          f"per image, model only: Keras {m['keras_model_only']:.0f}, ONNX {m['onnx_model_only']:.0f}; largest "
          f"probability difference {diff:.1e}; a fresh `mvgg19 predict` process on one image: Keras "
          f"{cold['keras']:.1f} s, ONNX {cold['onnx']:.1f} s; load average {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}; "
          f"wrote {a.out}")
    return res


if __name__ == '__main__':
    main()
