"Fixtures shared by the test modules that cross-validate on real data."
import pytest
from mvgg19_nb.data import DataNotFoundError, load_dataset

@pytest.fixture(scope='module')
def ds():
    "42 magnetic tile images, at least 6 per class (3 folds); a module that needs other data defines its own `ds`."
    try: return load_dataset('magnetic_tile').sample(42, seed=0, min_per_class=6)
    except DataNotFoundError as e: pytest.skip(f'magnetic tile data not found ({e}); set MVGG19_DATA')
