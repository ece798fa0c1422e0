"Tests for mvgg19_nb.experiment and mvgg19_nb.cli: argument parsing, results files, the summary page, the template run."
import os, tempfile
os.environ.setdefault('KERAS_HOME', os.path.join(tempfile.gettempdir(), 'mvgg19_keras_home'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import json
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import numpy as np
import pytest

from mvgg19_nb import cli
from mvgg19_nb.experiment import (DATASET_KEYS, EXPERIMENT_DEFAULTS, INPUT_SIZES, METRICS, PAPER_TABLE1, PAPER_TABLE2,
                                  rerun_command, run_experiment, template_path)
from mvgg19_nb.results import provenance, read_results, results_record, write_results
from mvgg19_nb.summary import summary_table, write_summary
from mvgg19_nb.data import DataNotFoundError, load_dataset
import pandas as pd


def read_summary_table(page, model) -> pd.DataFrame:
    "Parse `model`'s table ('mvgg19' or 'vgg19') back from a summary page written by `write_summary` (cells as text)."
    text = Path(page).read_text(encoding='utf-8')
    title = {'mvgg19': '## Table 1: MVGG19', 'vgg19': '## Table 2: VGG19'}[model]
    block = text.split(title, 1)[1].split('\n## ', 1)[0]
    rows = [[c.strip() for c in l.strip().strip('|').split('|')] for l in block.splitlines() if l.startswith('|')]
    return pd.DataFrame(rows[2:], columns=rows[0]).set_index('Dataset')


def magnetic_sample(n):
    try: return load_dataset('magnetic_tile').sample(n, seed=0)
    except DataNotFoundError as e: pytest.skip(f'magnetic tile data not found: {e}')


@pytest.fixture(scope='module')
def small_run(tmp_path_factory):
    "A real cross-validation: 36 magnetic tile images at 48x48, 2 folds, 1 epoch, random backbone, one view."
    from mvgg19_nb.train import cross_validate
    from mvgg19_nb.audit import audit
    d = tmp_path_factory.mktemp('cv')
    ds = magnetic_sample(36)
    params = dict(EXPERIMENT_DEFAULTS, input_size=[48, 48], folds=2, epochs=1, views=1, max_images=36)
    res = cross_validate(ds, input_size=(48, 48), folds=2, epochs=1, weights=None, views=1, out_dir=d/'runs',
                         cache_dir=d/'cache', progress=False)
    return res, params, audit(ds)


# --- command line -------------------------------------------------------------------------------------------------

def test_parse_run():
    a = cli.build_parser().parse_args(['run', 'casting', '-p', 'epochs', '3', '-p', 'input_size', '[100, 205]',
                                       '-p', 'weights', 'None', '-p', 'augment', 'false', '-p', 'models', '[mvgg19]'])
    assert (a.command, a.dataset, a.all) == ('run', 'casting', False)
    assert cli.parse_params(a.parameter) == dict(epochs=3, input_size=[100, 205], weights=None, augment=False,
                                                 models=['mvgg19'])
    assert cli.parse_params([('input_size', '72x72'), ('weights', 'imagenet'), ('val_split', '0.1')]) == \
        dict(input_size=[72, 72], weights='imagenet', val_split=0.1)
    a = cli.build_parser().parse_args(['run', '--all', '-p', 'epochs', '2'])
    assert a.all and a.dataset is None


def test_parse_book_predict():
    a = cli.build_parser().parse_args(['book', '--no-build'])
    assert (a.command, a.no_build, a.results_dir, a.page) == ('book', True, 'book/results', 'book/summary.md')
    a = cli.build_parser().parse_args(['predict', 'm.keras', 'x.png', 'imgs/', '--out', 'r.csv', '--batch-size', '8'])
    assert (a.model, a.inputs, a.out, a.batch_size, a.no_progress) == ('m.keras', ['x.png', 'imgs/'], 'r.csv', 8, False)
    with pytest.raises(SystemExit): cli.build_parser().parse_args(['predict', 'm.keras'])  # inputs required


def test_cli_errors(capsys):
    assert cli.main(['run']) == 2
    assert 'give a DATASET or --all' in capsys.readouterr().err
    assert cli.main(['run', 'casting', '--all']) == 2
    assert cli.main(['run', 'casting', '-p', 'epoch', '3']) == 2
    assert "unknown parameter 'epoch'" in capsys.readouterr().err
    assert cli.main(['run', 'casting', '-p', 'input_size', 'big']) == 2
    assert cli.main(['run', 'nosuch']) == 2
    assert "unknown dataset 'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit): cli.main(['nosuch'])


def test_run_all_skips_missing(monkeypatch, capsys):
    "--all runs the datasets that load, with the authors' sizes, and names the ones it skips."
    calls = []
    def fake_load(name, root=None):
        if name in ('gc10det', 'itodd'): raise DataNotFoundError(f'{name}: dataset not found; searched /nowhere')
    monkeypatch.setattr('mvgg19_nb.data.load_dataset', fake_load)
    monkeypatch.setattr(cli, 'run_experiment',
                        lambda n, output=None, **kw: calls.append((n, kw)) or Path(f'/tmp/{n}.ipynb'))
    assert cli.main(['run', '--all', '-p', 'epochs', '1', '--no-progress']) == 0
    out = capsys.readouterr().out
    assert [n for n, _ in calls] == ['casting', 'magnetic_tile', 'sdnet2018', 'bridge_dbcc', 'elpv']
    assert all(kw['input_size'] == INPUT_SIZES[n] and kw['epochs'] == 1 for n, kw in calls)
    assert 'skipping gc10det: data not found' in out and 'skipping itodd: data not found' in out
    calls.clear()
    assert cli.main(['run', 'sdnet2018', '-p', 'input_size', '64x64']) == 0
    assert calls[0][1]['input_size'] == [64, 64]


# --- experiment -------------------------------------------------------------------------------------------------

def test_template_parameters_match_defaults():
    import papermill as pm
    p = pm.inspect_notebook(str(template_path()))
    assert list(p) == list(EXPERIMENT_DEFAULTS)
    assert {k: eval(v['default']) for k, v in p.items()} == EXPERIMENT_DEFAULTS


def test_paper_tables():
    assert PAPER_TABLE1['elpv'] == dict(accuracy=76.78, precision=75.63, recall=67.02, f1=70.93, auc=83.36)
    assert PAPER_TABLE2['casting']['recall'] == 97.72 and PAPER_TABLE2['itodd']['f1'] is None
    assert (rerun_command('casting', {'input_size': [100, 100], 'weights': None}, weights='imagenet')
            == 'mvgg19 run casting -p weights imagenet')


def test_provenance():
    p = provenance({'dataset': 'x', 'input_size': (48, 48)}, wall_s=1.26)
    assert p['parameters'] == {'dataset': 'x', 'input_size': [48, 48]} and p['wall_s'] == 1.3
    for k in ('keras', 'numpy', 'scikit-learn', 'mvgg19_nb', p['backend']): assert p['packages'][k], k
    assert p['cpu']['cores'] >= 1 and p['date'] and isinstance(p['gpus'], list)
    json.dumps(p, allow_nan=False)


def test_results_record_from_real_run(small_run, tmp_path):
    res, params, aud = small_run
    rec = results_record(res, params, provenance(params, 1.0), aud)
    assert set(rec['models']) == {'vgg19', 'mvgg19'} and rec['n_images'] == 36
    for m in ('vgg19', 'mvgg19'):
        folds = rec['models'][m]['per_fold']
        assert [f['fold'] for f in folds] == [0, 1]
        df = res.metrics(m)
        for k in METRICS:
            np.testing.assert_allclose([f[k] for f in folds], df[k].values)
            np.testing.assert_allclose(rec['models'][m]['mean'][k], df[k].mean())
            np.testing.assert_allclose(rec['models'][m]['std'][k], df[k].std())
    assert rec['audit']['n_images'] == 36 and rec['audit']['n_unreadable'] == 0
    assert rec['parameters']['folds'] == 2 and rec['provenance']['wall_s'] == 1.0
    write_results(tmp_path/'magnetic_tile.json', res, params, rec['provenance'], aud)
    assert read_results(tmp_path/'magnetic_tile.json') == rec


def test_summary_page_holds_the_results(small_run, tmp_path):
    "Two results files in, the summary page's tables out: the cells are the files' numbers."
    res, params, aud = small_run
    rd = tmp_path/'results'
    a = write_results(rd/'magnetic_tile.json', res, params, provenance(params), aud)
    res.dataset = 'casting'  # the same numbers under a second name
    try: b = write_results(rd/'casting.json', res, dict(params, dataset='casting'), provenance(params), None)
    finally: res.dataset = 'magnetic_tile'
    page = write_summary(rd, tmp_path/'book'/'summary.md')
    assert (rd/'figures'/'summary_accuracy.png').stat().st_size > 0
    text = page.read_text()
    assert 'NOT ImageNet' in text and '../results/figures/summary_accuracy.png' in text
    for model, title in (('mvgg19', 'MVGG19'), ('vgg19', 'VGG19')):
        t = read_summary_table(page, model)
        assert list(t.index) == ['Casting', 'Defect (GC10-DET)', 'Magnetic', 'Tech (ITODD)', 'Bridge (SDNET2018)',
                                 "Bridge (DBCC, the authors' code)", 'Solar (ELPV)']
        for name, rec in (('Magnetic', a), ('Casting', b)):
            for k, col in zip(METRICS, ('Accuracy', 'Precision', 'Recall', 'F1', 'AUC')):
                m, s = rec['models'][model]['mean'][k], rec['models'][model]['std'][k]
                assert t.loc[name, f'{col} (ours)'] == f'{100 * m:.2f} ± {100 * s:.2f}'
        assert t.loc['Bridge (SDNET2018)', 'Accuracy (ours)'] == 'not run'
        paper = (PAPER_TABLE1 if model == 'mvgg19' else PAPER_TABLE2)['magnetic_tile']['accuracy']
        assert t.loc['Magnetic'].iloc[2] == f'{paper:.2f}'  # the 'paper' column beside accuracy
    tab = summary_table(rd)
    assert tab.ran.sum() == 4 and len(tab) == 2 * len(DATASET_KEYS)


def test_template_run(tmp_path):
    "papermill executes the template on a tiny subset: the notebook has its sections and the JSON both models' folds."
    magnetic_sample(36)
    out = run_experiment('magnetic_tile', output=tmp_path/'magnetic_tile.ipynb', max_images=36, input_size=[48, 48],
                         folds=2, epochs=1, views=2, check_augmentation=True, calibrate='temperature',
                         cache_dir=str(tmp_path/'cache'),
                         runs_dir=str(tmp_path/'runs'), output_dir=str(tmp_path))
    import nbformat
    nb = nbformat.read(str(out), as_version=4)
    md = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
    assert md.startswith('# Results: Magnetic')
    assert md.index('## Result') < md.index('## Data') < md.index('## Run details: parameters and provenance')
    for h in ('## Result', '## Run details: parameters and provenance', '## Data', '### Samples', '### Augmentation', '## Cross-validation', '### Metrics',
              '### Baselines', '### Augmentation check', '### Training curves', '### ROC curves',
              '### Confusion matrices', '## Results file'):
        assert h in md, h
    outputs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])]
    assert not [o for o in outputs if o.output_type == 'error']
    assert 'NOT ImageNet' in next(o['data']['text/markdown'] for o in outputs if 'text/markdown' in o.get('data', {}))
    markdown = ''.join(o['data'].get('text/markdown', '') for o in outputs if 'data' in o)
    assert 'mvgg19 run magnetic_tile -p weights imagenet' in markdown
    # samples, augmentations, 2 curves, ROC, confusion
    assert sum('image/png' in o.get('data', {}) for o in outputs) >= 6
    rec = read_results(tmp_path/'magnetic_tile.json')
    for m in ('vgg19', 'mvgg19'):
        assert len(rec['models'][m]['per_fold']) == 2 and set(METRICS) <= set(rec['models'][m]['per_fold'][0])
    assert rec['parameters']['max_images'] == 36 and rec['provenance']['wall_s'] > 0 and rec['audit']['n_images'] == 36
    # the augmentation check ran (check_augmentation=True): the same folds without augmentation, one view
    check = rec['diagnostics']['no_augmentation']
    assert check['cross_validation']['augment'] is False and check['cross_validation']['views'] == 1
    assert check['cross_validation']['content'] == rec['cross_validation']['content']
    assert set(check['models']) == {'vgg19', 'mvgg19'} and len(check['models']['vgg19']['per_fold']) == 2
    for m in ('vgg19', 'mvgg19'):  # calibrate='temperature': each fold's temperature, ECE and Brier before and after
        effect = rec['decisions']['models'][m]['temperature_scaling']
        assert effect['temperature_min'] > 0 and {'ece_before', 'ece_after', 'brier_before', 'brier_after'} <= set(effect)
    assert rec['parameters']['calibrate'] == 'temperature' and rec['cross_validation']['calibrate'] == 'temperature'
    assert set(rec['baselines']) == {'majority', 'linear_probe', 'accuracy'}
    assert {'trunk', 'all'} <= set(rec['baselines']['linear_probe'])
    assert any('without augmentation' in ''.join(o.get('data', {}).get('text/markdown', '')) or
               'without augmentation' in o.get('text', '') for o in outputs)
