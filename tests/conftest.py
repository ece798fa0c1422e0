"""Fixtures shared by the test modules that cross-validate: real magnetic tile images where they are, else a
synthetic layout (also with MVGG19_TEST_SYNTHETIC=1), so that these tests never skip for lack of data."""
import os
from pathlib import Path
import pytest
from mvgg19_nb.data import DataNotFoundError, load_dataset, load_folder

from fixtures import make_cv_folder

def cv_dataset(tmp_root):
    "42 magnetic tile images, at least 6 per class; else 42 synthetic ones of two classes, 48 px (`make_cv_folder`)."
    if not os.environ.get('MVGG19_TEST_SYNTHETIC'):
        try: return load_dataset('magnetic_tile').sample(42, seed=0, min_per_class=6)
        except DataNotFoundError: pass
    return load_folder(make_cv_folder(Path(tmp_root)/'synthetic'), classes=['ok', 'defect'], name='synthetic')

@pytest.fixture(scope='module')
def ds(tmp_path_factory):
    "The cross-validation tests' data (`cv_dataset`); a module that needs other data defines its own `ds`."
    return cv_dataset(tmp_path_factory.mktemp('data'))
