"""Tiny on-disk dataset layouts for tests, written with Pillow into a temporary folder.

Each `make_*` function writes the published folder layout of one dataset (a few images per class, in assorted
Pillow modes) under `root` and returns the path to pass as `root=` to its loader."""
from pathlib import Path

from mvgg19_nb.images import write_layout

MODES = ['L', 'RGB', 'P', 'RGBA', 'I;16', '1', 'LA']  # what PNG can store; JPEGs get L, RGB, CMYK


def _mode(i, ext):
    "A mode for the i-th image that the file format `ext` can store."
    m = MODES[i % len(MODES)]
    if ext in ('jpg', 'jpeg'): return ['L', 'RGB', 'CMYK'][i % 3]
    if ext == 'bmp': return ['L', 'RGB', 'P', '1'][i % 4]
    return m


def make_gc10det(root, per_class=2, nested=True):
    "Kaggle GC10-DET: `images/<1..10>/*.jpg` plus `lable/*.xml` annotations."
    base = Path(root)/'images' if nested else Path(root)
    files = {f'{i}/img_{i:02d}_{j:03d}.jpg': _mode(i + j, 'jpg') for i in range(1, 11) for j in range(per_class)}
    files.update({f'lable/img_{i:02d}_000.xml': b'<annotation></annotation>' for i in range(1, 11)})
    write_layout(base, files)
    return Path(root)


def make_sdnet2018(root, cracked=2, uncracked=3):
    "SDNET2018: `{D,P,W}/{CD,UD,CP,UP,CW,UW}/*.jpg`."
    files = {f'{s}/{k}{s}/{n:04d}-{j}.jpg': _mode(j, 'jpg')
             for s in 'DPW' for k,n in [('C', cracked), ('U', uncracked)] for j in range(n)}
    return write_layout(root, files, size=(32, 32))


def make_itodd(root, objects=('adapter_plate_square', 'box', 'cap'), per_object=2):
    "MVTec ITODD-like: `<object>/<image>.tif` (16-bit grayscale) and a `manifest.csv` (path,label)."
    files = {f'{o}/gray/{j:03d}.tif': ('I;16', (36, 48)) for o in objects for j in range(per_object)}
    write_layout(root, files)
    rows = ''.join(f'{o}/gray/{j:03d}.tif,{o}\n' for o in objects for j in range(per_object))
    (Path(root)/'manifest.csv').write_text('path,label\n' + rows)
    return Path(root)


def make_folder(root, classes=('ok', 'defect'), per_class=3):
    "Generic `<class>/<image>` layout in assorted modes and formats."
    files = {}
    for c in classes:
        for j in range(per_class):
            ext = ['png', 'jpg', 'bmp', 'png'][j % 4]
            files[f'{c}/{c}_{j}.{ext}'] = _mode(j + len(c), ext)
    return write_layout(root, files)


def make_elpv(root, probas=(0., 1/3, 2/3, 1., 0., 1.), types=None):
    "ELPV-style: `images/cellNNNN.png` and a whitespace separated `labels.csv` (path, probability, type)."
    types = types or ['mono', 'poly'] * len(probas)
    write_layout(root, {f'images/cell{i:04d}.png': 'L' for i in range(1, len(probas) + 1)}, size=(48, 48))
    lines = [f'images/cell{i:04d}.png  {p:.16g}  {t}' for i,(p,t) in enumerate(zip(probas, types), 1)]
    (Path(root)/'labels.csv').write_text('\n'.join(lines) + '\n')
    return Path(root)


def make_magnetic_tile(root, counts=None):
    "Magnetic tile: `MT_<Class>/Imgs/<name>.jpg` with its mask `<name>.png` beside it."
    counts = counts or {'Blowhole': 2, 'Free': 3}
    files = {}
    for c,n in counts.items():
        for j in range(n):
            files[f'MT_{c}/Imgs/exp{j}_num_{j}.jpg'] = 'L'
            files[f'MT_{c}/Imgs/exp{j}_num_{j}.png'] = 'L'
    return write_layout(root, files)


def make_casting(root, per_class=2):
    "Casting: `casting_data/{train,test}/{ok_front,def_front}/*.jpeg`."
    files = {f'casting_data/{s}/{c}/cast_{c[:3]}_{j}.jpeg': 'RGB'
             for s in ('train', 'test') for c in ('ok_front', 'def_front') for j in range(per_class)}
    return write_layout(root, files, size=(30, 30))


def make_bridge_dbcc(root, train=(2, 3), val=(1, 2), inner=True):
    """Bridge crack data (DBCC): `DBCC_Training_Data_Set/{train,val}/{crack,no}<N>.jpeg` (16x16 RGB) and the lists
    `{train,val}.txt` of `<file> <label>` (1 = crack); `train`, `val` are `(cracked, uncracked)` counts. At most 16
    images in all: `write_layout` shifts its gradient by one column per file, so a 17th would repeat the first."""
    if sum(train) + sum(val) > 16: raise ValueError(f"at most 16 distinct 16x16 images, not {sum(train) + sum(val)}")
    base = Path(root)/'DBCC_Training_Data_Set' if inner else Path(root)
    splits = [('train', train), ('val', val)]
    write_layout(base, {f'{s}/{k}{i}.jpeg': ('RGB', (16, 16)) for s,n in splits
                        for k,c in zip(['crack', 'no'], n) for i in range(1, c + 1)})
    for s,(c,u) in splits:
        (base/f'{s}.txt').write_text(''.join(f'no{i}.jpeg 0\n' for i in range(1, u + 1)) +
                                     ''.join(f'crack{i}.jpeg 1\n' for i in range(1, c + 1)))
    return Path(root)


def make_cv_folder(root, per_class=21, size=48):
    """Two classes a head can tell apart at `size` px, `per_class` distinct PNGs each: 'ok' smooth noisy grey,
    'defect' the same with a dark scratch across it (a stand-in for real images in the cross-validation tests)."""
    import numpy as np
    from PIL import Image
    root = Path(root)
    for c in ('ok', 'defect'):
        (root/c).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            rng = np.random.default_rng([c == 'defect', j])
            a = 120 + 30 * rng.standard_normal((size, size, 3))
            if c == 'defect':
                r = rng.integers(size // 4, 3 * size // 4)
                a[r - 2:r + 2, size // 8:7 * size // 8] = 20  # the scratch: a dark bar, at a random height
            Image.fromarray(np.clip(a, 0, 255).astype('uint8')).save(root/c/f'{c}_{j:02d}.png')
    return root
