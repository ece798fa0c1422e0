"""Tests of `mvgg19_nb.images` and `mvgg19_nb.data`: every loader on tiny generated layouts, bad input, and the
real magnetic tile, casting, DBCC and ELPV datasets (skipped, with the reason, where they are absent)."""
import json, os, re, shutil, warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mvgg19_nb import data as D
from mvgg19_nb.audit import Audit, audit, drop_duplicates
from mvgg19_nb.data import (DATASETS, DataError, DataNotFoundError, Dataset, check_folds, find_root, load_bridge_dbcc,
                            load_casting, load_dataset, load_elpv, load_folder, load_gc10det, load_itodd, load_magnetic_tile, load_manifest, load_sdnet2018,
                            mask_path, scan_folder)
from mvgg19_nb.images import (ImageError, check_size, content_digest, file_digest, image_info, load_image,
                              load_images, make_image, write_layout)
from fixtures import (make_bridge_dbcc, make_casting, make_elpv, make_folder, make_gc10det, make_itodd,
                      make_magnetic_tile, make_sdnet2018)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    "No stray dataset location from the environment; warnings visible to `pytest.warns`."
    monkeypatch.delenv(D.DATA_ENV, raising=False)


def names(paths): return [Path(p).name for p in paths]


# ---------------------------------------------------------------- images

@pytest.mark.parametrize('mode,ext', [('1', 'png'), ('L', 'png'), ('LA', 'png'), ('I;16', 'png'), ('I', 'tif'),
                                      ('F', 'tif'), ('RGB', 'jpg'), ('RGBA', 'png'), ('P', 'png'), ('CMYK', 'jpg'),
                                      ('RGB', 'webp'), ('P', 'gif'), ('RGB', 'bmp')])
def test_load_image_modes(tmp_path, mode, ext):
    f = tmp_path/f'img.{ext}'
    make_image(mode, (20, 30)).save(f)
    a = load_image(f)
    assert a.shape == (20, 30, 3) and a.dtype == np.uint8
    if mode in ('L', 'I;16', 'I', 'F'):
        assert (a.min(), a.max()) == (0, 255)              # scaled by range, not clipped
        assert (a[..., 0] == a[..., 2]).all()
    assert load_image(f, size=(7, 11)).shape == (7, 11, 3)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257*100, 65535]], np.uint16)
    Image.fromarray(a).save(tmp_path/'x.png')
    assert load_image(tmp_path/'x.png')[0, :, 0].tolist() == [0, 100, 255]


def test_alpha_is_composited(tmp_path):
    Image.new('RGBA', (4, 4), (250, 20, 20, 0)).save(tmp_path/'t.png')
    assert load_image(tmp_path/'t.png').max() == 0


def test_exif_orientation(tmp_path):
    im = make_image('RGB', (40, 60)); ex = im.getexif(); ex[0x0112] = 6
    im.save(tmp_path/'r.jpg', exif=ex.tobytes())
    assert load_image(tmp_path/'r.jpg').shape == (60, 40, 3)


def test_corrupt_files(tmp_path):
    make_image('RGB', (64, 64)).save(tmp_path/'ok.jpg')
    b = (tmp_path/'ok.jpg').read_bytes()
    (tmp_path/'cut.jpg').write_bytes(b[:int(len(b)*.8)])
    (tmp_path/'text.png').write_text('hello')
    (tmp_path/'empty.jpg').write_bytes(b'')
    for n in ['cut.jpg', 'text.png', 'empty.jpg', 'missing.png']:
        with pytest.raises(ImageError, match=n) as e: load_image(tmp_path/n)
        assert isinstance(e.value, ValueError) and 'Remove or replace' in str(e.value)
    with pytest.raises(ImageError, match='cut.jpg'): image_info(tmp_path/'cut.jpg', verify=True)


def test_decompression_bomb(tmp_path, monkeypatch):
    make_image('L', (50, 50)).save(tmp_path/'big.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 2000)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ImageError, match='MAX_IMAGE_PIXELS'): load_image(tmp_path/'big.png')


def test_tiny_and_odd_paths(tmp_path):
    d = tmp_path/'dir with space ü'; d.mkdir()
    make_image('L', (5, 3)).save(d/'tiny ñ.png')
    assert load_image(d/'tiny ñ.png', (224, 224)).shape == (224, 224, 3)
    assert not check_size(d/'tiny ñ.png')
    os.symlink(d/'tiny ñ.png', tmp_path/'link.png')
    assert load_image(tmp_path/'link.png').shape == (5, 3, 3)
    os.symlink(tmp_path/'nothing.png', tmp_path/'dead.png')
    with pytest.raises(ImageError, match='broken symbolic link'): load_image(tmp_path/'dead.png')


def test_load_images_skip_and_raise(tmp_path):
    for i in range(3): make_image('RGB', (10, 12), seed=i).save(tmp_path/f'{i}.png')
    (tmp_path/'bad.png').write_bytes(b'\x89PNG\r\n')
    ps = [tmp_path/'0.png', tmp_path/'bad.png', tmp_path/'1.png', tmp_path/'2.png']
    x, fails = load_images(ps, (8, 8), progress=False, on_error='skip')
    assert x.shape == (3, 8, 8, 3) and [(f.index, Path(f.path).name) for f in fails] == [(1, 'bad.png')]
    assert (x[1] == load_image(ps[2], (8, 8))).all()
    with pytest.raises(ImageError, match='bad.png'): load_images(ps, (8, 8), progress=False)
    x, fails = load_images(ps[2:], progress=False)
    assert x.shape == (2, 10, 12, 3) and fails == []


def test_file_digest(tmp_path):
    (tmp_path/'a').write_bytes(b'abc'); (tmp_path/'b').write_bytes(b'abc')
    assert file_digest(tmp_path/'a') == file_digest(tmp_path/'b') == 'a9993e364706816aba3e25717850c26c9cd0d89d'


def test_digests_keep_the_values_stored_digests_hold(tmp_path):
    "Run folders, fold files, feature caches and model cards hold these digests: a changed algorithm orphans them."
    (tmp_path/'a').write_bytes(b'abc')
    assert file_digest(tmp_path/'a') == 'a9993e364706816aba3e25717850c26c9cd0d89d'  # SHA-1: images, models
    assert file_digest(tmp_path/'a', 'blake2b') == '384264f676f39536840523f284921cdc68b6846b'  # feature cache views
    assert file_digest(tmp_path/'a', chunk=1) == file_digest(tmp_path/'a')  # the block size changes nothing
    assert content_digest({'a': 'x', 'b': [1, 2.5, None], 'c': {'d': True}}) == 'ad45fa94d446bb92'
    assert content_digest({'c': {'d': True}, 'b': [1, 2.5, None], 'a': 'x'}) == 'ad45fa94d446bb92'  # key order
    with pytest.raises(ValueError, match="algorithm='md5': use one of sha1, blake2b"): file_digest(tmp_path/'a', 'md5')


# ---------------------------------------------------------------- Dataset

def toy(n=(4, 2)):
    labels = np.repeat(np.arange(len(n)), n)
    return Dataset('toy', [f'/x/{i}.png' for i in range(len(labels))], labels, [f'c{i}' for i in range(len(n))],
                   {'per_image': ['split'],
                    'split': np.array(['train', 'test'] * (len(labels)//2) + ['train']*(len(labels) % 2))})


def test_dataset_basics():
    ds = toy()
    assert len(ds) == 6 and ds.labels.dtype == np.int64 and ds.counts() == {'c0': 4, 'c1': 2}
    s = ds.subset([5, 0])
    assert s.paths == ['/x/5.png', '/x/0.png'] and s.meta['split'].tolist() == ['test', 'train']
    assert ds.subset(ds.labels == 1).counts() == {'c0': 0, 'c1': 2}
    assert 'toy' in repr(ds) and '6 images' in repr(ds)


def test_sample_keeps_every_class():
    ds = toy((500, 40, 3))
    s = ds.sample(60, seed=1)
    c = s.counts()
    assert sum(c.values()) == 60 and c['c2'] == 3 and c['c1'] >= 5
    assert s.paths == ds.sample(60, seed=1).paths
    assert len(s.meta['split']) == 60
    with pytest.raises(DataError, match='max_images=4'): ds.sample(4)


def test_check_folds():
    ds = toy((10, 3))
    assert check_folds(ds, 3) is ds
    with pytest.raises(DataError, match=r"fewer images than folds=5 in class 'c1' \(3 images\); "
                                        r"use at most 3 folds"):
        check_folds(ds, 5)


# ---------------------------------------------------------------- layouts

def test_gc10det(tmp_path):
    root = make_gc10det(tmp_path/'gc10')
    ds = load_gc10det(root)
    assert (len(ds) == 20 and ds.classes[:3] == ['punching', 'weld_line', 'crescent_gap']
            and ds.classes[-1] == 'waist_folding')
    assert all(n == 2 for n in ds.counts().values())
    assert ds.meta['annotations'].endswith('lable') and ds.meta['ignored'] == []
    assert ds.load((16, 16)).shape == (20, 16, 16, 3)
    assert len(load_gc10det(make_gc10det(tmp_path/'flat', nested=False))) == 20
    shutil.rmtree(root/'images'/'10')
    with pytest.raises(DataError, match=r"\['10'\]"): load_gc10det(root)


def test_sdnet2018(tmp_path):
    root = make_sdnet2018(tmp_path/'sdnet')
    ds = load_sdnet2018(root)
    assert ds.classes == ['uncracked', 'cracked'] and ds.counts() == {'uncracked': 9, 'cracked': 6}
    assert Counter(ds.meta['surface']) == {'deck': 5, 'pavement': 5, 'wall': 5}
    six = load_sdnet2018(root, per_surface=True)
    assert len(six.classes) == 6 and six.counts()['wall_cracked'] == 2
    assert ds.meta['positive'] == ds.classes[1] == 'cracked'
    (root/'W'/'UW'/'Thumbs.db').write_bytes(b'\0')
    with pytest.warns(UserWarning, match='Thumbs.db'): ds = load_sdnet2018(root)
    assert names(p for p,_ in ds.meta['ignored']) == ['Thumbs.db'] and len(ds) == 15
    for f in (root/'D'/'CD').iterdir(): f.unlink()
    with pytest.raises(DataError, match='CD'): load_sdnet2018(root)


def test_itodd(tmp_path):
    root = make_itodd(tmp_path/'itodd')
    ds = load_itodd(root)
    assert ds.classes == ['adapter_plate_square', 'box', 'cap'] and len(ds) == 6
    assert ds.load((36, 48)).max() == 255
    with pytest.raises(DataNotFoundError, match='path,label'): load_itodd(root, manifest='other.csv')


def test_folder(tmp_path):
    root = make_folder(tmp_path/'f', classes=('ok', 'scratch', 'dent'))
    ds = load_folder(root)
    assert ds.classes == ['dent', 'ok', 'scratch'] and ds.counts() == {'dent': 3, 'ok': 3, 'scratch': 3}
    with pytest.warns(UserWarning, match='scratch.*folder not among classes'):
        two = load_folder(root, classes=['ok', 'dent'])
    assert two.classes == ['ok', 'dent'] and len(two) == 6
    x = ds.load((20, 20))
    assert x.shape == (9, 20, 20, 3) and x.dtype == np.uint8


def test_folder_non_images_reported(tmp_path):
    root = make_folder(tmp_path/'f')
    (root/'ok'/'.DS_Store').write_bytes(b'\0')
    (root/'ok'/'notes.txt').write_text('x')
    (root/'ok'/'extra').mkdir()
    with pytest.warns(UserWarning, match='3 non-image'): ds = load_folder(root)
    assert sorted(names(p for p,_ in ds.meta['ignored'])) == ['.DS_Store', 'extra', 'notes.txt']
    assert len(ds) == 6


def test_folder_errors(tmp_path):
    root = make_folder(tmp_path/'f')
    (root/'empty').mkdir()
    with pytest.raises(DataError, match='empty'): load_folder(root)
    shutil.rmtree(root/'empty'); shutil.rmtree(root/'defect')
    with pytest.raises(DataError, match='at least two'): load_folder(root)
    with pytest.raises(DataNotFoundError, match='does not exist'): load_folder(tmp_path/'nope')


def test_symlinks(tmp_path):
    root = make_folder(tmp_path/'f')
    other = write_layout(tmp_path/'elsewhere', {'x.png': 'RGB'})
    os.symlink(other/'x.png', root/'ok'/'linked.png')
    os.symlink(other, root/'linked_class')
    ds = load_folder(root)
    assert 'linked.png' in names(ds.paths) and ds.counts()['linked_class'] == 1
    assert ds.load((8, 8)).shape[0] == len(ds)
    os.symlink(tmp_path/'gone.png', root/'ok'/'dead.png')
    with pytest.raises(ImageError, match="dead.png.*broken symbolic link"): load_folder(root)


def test_odd_names_and_tiny_images(tmp_path):
    root = write_layout(tmp_path/'odd dir', {'bön ok/a b.png': ('L', (8, 500)), 'défaut/ç.jpg': 'RGB'})
    ds = load_folder(root)
    assert ds.classes == ['bön ok', 'défaut']
    rep = audit(ds)
    assert names(s['path'] for s in rep.small) == ['a b.png']
    assert ds.load((32, 32)).shape == (2, 32, 32, 3)


def test_manifest(tmp_path):
    root = make_folder(tmp_path/'m')
    (root/'list.csv').write_text('path,label,split\nok/ok_0.png,good,train\ndefect/defect_0.png,bad,test\n')
    ds = load_manifest(root/'list.csv', classes=['good', 'bad'])
    assert ds.labels.tolist() == [0, 1] and ds.meta['split'].tolist() == ['train', 'test']
    (root/'bad.csv').write_text('file,label\nok/ok_0.png,good\n')
    with pytest.raises(DataError, match="bad.csv: missing column 'path'"): load_manifest(root/'bad.csv')
    (root/'bad.csv').write_text('path,label\nok/ok_0.png,good\nnone.png,bad\n')
    with pytest.raises(DataError, match='line 3'): load_manifest(root/'bad.csv')


def test_elpv_layout(tmp_path):
    root = make_elpv(tmp_path/'elpv')
    ds = load_elpv(root)
    assert ds.classes == ['ok', 'defective'] and ds.labels.tolist() == [0, 1, 1, 1, 0, 1]
    assert ds.meta['cell_type'].tolist()[:2] == ['mono', 'poly'] and ds.meta['proba'][1] == pytest.approx(1/3)
    lv = load_elpv(root, labels='levels')
    assert lv.classes == ['0', '1/3', '2/3', '1'] and lv.labels.tolist() == [0, 1, 2, 3, 0, 3]
    assert len(load_elpv(root/'labels.csv')) == 6


@pytest.mark.parametrize('text,match', [
    ('images/cell0001.png 0.0\n', 'line 1: expected 3 columns'),
    ('images/cell0001.png 0 mono\nimages/cell0002.png 1.2 mono\n',
     r'line 2: defect probability 1.2 is outside \[0, 1\]'),
    ('images/cell0001.png 0 mono\nimages/cell0002.png -0.1 mono\n', 'outside'),
    ('images/cell0001.png 0 mono\nimages/cell0099.png 1 mono\n', 'line 2: image .*cell0099.png.* does not exist'),
    ('images/cell0001.png zero mono\n', 'not a number'),
    ('images/cell0001.png 0 mono\nimages/cell0002.png 0 mono\n', "class 'defective' has no images"),
])
def test_elpv_bad_labels(tmp_path, text, match):
    root = make_elpv(tmp_path/'elpv')
    (root/'labels.csv').write_text(text)
    with pytest.raises(DataError, match=match): load_elpv(root)


def test_elpv_missing_labels(tmp_path):
    root = make_elpv(tmp_path/'elpv')
    (root/'labels.csv').unlink()
    with pytest.raises(DataNotFoundError, match='labels.csv'): load_elpv(root)


def test_magnetic_tile_layout(tmp_path):
    root = make_magnetic_tile(tmp_path/'mt')
    ds = load_magnetic_tile(root)
    assert ds.classes == ['Blowhole', 'Free'] and len(ds) == 5 and ds.meta['n_masks'] == 5
    assert all(not p.endswith('.png') for p in ds.paths)
    assert all(mask_path(ds, i) == str(Path(p).with_suffix('.png')) for i, p in enumerate(ds.paths))
    sub = ds.subset([4])
    assert mask_path(sub, 0) == str(Path(sub.paths[0]).with_suffix('.png'))


def test_casting_layout(tmp_path):
    root = make_casting(tmp_path/'casting')
    ds = load_casting(root)
    assert ds.classes == ['ok', 'defective'] and len(ds) == 8
    assert Counter(ds.meta['split']) == {'train': 4, 'test': 4}
    assert load_casting(root, split='train').counts() == {'ok': 2, 'defective': 2}
    with pytest.raises(ValueError, match='pooled'): load_casting(root, split='val')


DBCC_TRAIN = 'no1.jpeg 0\nno2.jpeg 0\nno3.jpeg 0\ncrack1.jpeg 1\ncrack2.jpeg 1\n'    # what make_bridge_dbcc writes


def test_bridge_dbcc_layout(tmp_path, monkeypatch):
    root = make_bridge_dbcc(tmp_path/'dbcc')
    base = root/'DBCC_Training_Data_Set'
    assert (base/'train.txt').read_text() == DBCC_TRAIN
    monkeypatch.setattr(Image, 'open', lambda *a, **k: pytest.fail('the loader must not open images'))
    ds = load_bridge_dbcc(root)
    monkeypatch.undo()
    assert ds.name == 'bridge_dbcc' and ds.classes == ['no_crack', 'crack'] and ds.meta['positive'] == 'crack'
    assert ds.counts() == {'no_crack': 5, 'crack': 3} and ds.meta['ignored'] == []
    assert ds.meta['split'].tolist() == ['train']*5 + ['val']*3
    assert [os.path.relpath(p, base) for p in ds.paths] == [f'{s}/{f}.jpeg' for s,fs in
            [('train', ['no1', 'no2', 'no3', 'crack1', 'crack2']), ('val', ['no1', 'no2', 'crack1'])] for f in fs]
    assert ds.labels.tolist() == [Path(p).name.startswith('crack') for p in ds.paths]
    assert load_bridge_dbcc(base).paths == ds.paths                          # root may be the inner folder
    assert load_bridge_dbcc(root, split='val').counts() == {'no_crack': 2, 'crack': 1}
    with pytest.raises(ValueError, match="'pooled', 'train' or 'val'"): load_bridge_dbcc(root, split='test')
    assert ds.load((16, 16)).shape == (8, 16, 16, 3)
    rep = audit(ds)
    assert rep.ok and rep.duplicates == [] and len(rep.small) == 8 and rep.modes == {'RGB': 8}
    shutil.copy(base/'train'/'crack1.jpeg', base/'val'/'crack1.jpeg')
    leak = audit(load_bridge_dbcc(root), check_images=False).leakage
    assert [([os.path.relpath(p, base) for p in g['paths']], g['splits']) for g in leak] == \
           [(['train/crack1.jpeg', 'val/crack1.jpeg'], ['train', 'val'])]


def test_bridge_dbcc_label_mismatch(tmp_path):
    root = make_bridge_dbcc(tmp_path/'dbcc')
    (root/'DBCC_Training_Data_Set'/'train.txt').write_text(DBCC_TRAIN.replace('crack2.jpeg 1', 'crack2.jpeg 0'))
    with pytest.raises(DataError, match=r"train\.txt, line 5: 'crack2\.jpeg' is labelled 0 \(no crack\) but its name "
                                        r"says crack; fix the label or the file name"):
        load_bridge_dbcc(root)
    (root/'DBCC_Training_Data_Set'/'train.txt').write_text(DBCC_TRAIN.replace('no1.jpeg 0', 'no1.jpeg 1'))
    with pytest.raises(DataError, match=r"line 1: 'no1\.jpeg' is labelled 1 \(crack\) but its name says no crack"):
        load_bridge_dbcc(root)


def test_bridge_dbcc_missing_listed_file(tmp_path):
    root = make_bridge_dbcc(tmp_path/'dbcc')
    gone = root/'DBCC_Training_Data_Set'/'val'/'no2.jpeg'
    gone.unlink()
    with pytest.raises(DataError, match=re.escape(f"val.txt, line 2: image '{gone}' does not exist; restore it")):
        load_bridge_dbcc(root)
    assert load_bridge_dbcc(root, split='train').counts() == {'no_crack': 3, 'crack': 2}   # the other split loads


def test_bridge_dbcc_unlisted_image(tmp_path):
    root = make_bridge_dbcc(tmp_path/'dbcc')
    base = root/'DBCC_Training_Data_Set'
    write_layout(base, {'train/no9.jpeg': ('RGB', (16, 16)), 'train/crack7.png': ('RGB', (16, 16))})
    with pytest.raises(DataError, match=re.escape(f"2 image(s) in '{base/'train'}' not listed in train.txt: "
                                                  "'crack7.png', 'no9.jpeg'; add them to train.txt")):
        load_bridge_dbcc(root)
    (base/'train'/'no9.jpeg').unlink(); (base/'train'/'crack7.png').unlink()
    (base/'train'/'Thumbs.db').write_bytes(b'\0')                              # not an image: reported, not an error
    with pytest.warns(UserWarning, match='Thumbs.db'): ds = load_bridge_dbcc(root)
    assert names(p for p,_ in ds.meta['ignored']) == ['Thumbs.db'] and len(ds) == 8


@pytest.mark.parametrize('extra,match', [
    ('no1.jpeg 0\n', r"line 7: 'no1\.jpeg' is listed twice \(also on line 1\)"),
    ('no4.jpeg\n', r"line 7: expected '<file> <label>', found 'no4\.jpeg'"),
    ('no4.jpeg 0 x\n', "line 7: expected '<file> <label>'"),
    ('no4.jpeg 2\n', r"line 7: label '2' of 'no4\.jpeg' is neither 0 \(no crack\) nor 1 \(crack\)"),
    ('img4.jpeg 0\n', "line 7: file name 'img4.jpeg' starts with neither 'crack' nor 'no'"),
    ('nothing4.jpeg 0\n', "line 7: file name 'nothing4.jpeg' starts with neither"),
    ('no4.jpeg 0\n', r"line 7: image '.*no4\.jpeg' does not exist"),
])
def test_bridge_dbcc_bad_lines(tmp_path, extra, match):
    root = make_bridge_dbcc(tmp_path/'dbcc')
    (root/'DBCC_Training_Data_Set'/'train.txt').write_text(DBCC_TRAIN + '\n' + extra)   # line 6 is blank, and counted
    with pytest.raises(DataError, match=r'train\.txt, ' + match): load_bridge_dbcc(root)


def test_bridge_dbcc_missing_parts(tmp_path):
    root = make_bridge_dbcc(tmp_path/'dbcc')
    base = root/'DBCC_Training_Data_Set'
    (base/'val'/'notes.txt').write_text('x')
    (base/'val.txt').write_text('no1.jpeg 0\nno2.jpeg 0\ncrack1.jpeg 1\nnotes.txt 0\n')
    with pytest.raises(DataError, match=r"line 4: file name 'notes\.txt'"): load_bridge_dbcc(root)
    (base/'val.txt').write_text('no1.jpeg 0\nno2.jpeg 0\ncrack1.jpeg 1\nno5.txt 0\n')
    (base/'val'/'no5.txt').write_text('x')
    with pytest.raises(DataError, match=r"line 4: image '.*no5\.txt' is not an image file \(not an image file ext"):
        load_bridge_dbcc(root)
    (base/'val.txt').unlink()
    with pytest.raises(DataError, match=r"the list '.*val\.txt' does not exist .*DBCC_Training_Data_Set as root="):
        load_bridge_dbcc(root)
    assert len(load_bridge_dbcc(root, split='train')) == 5
    (base/'val.txt').write_text('no1.jpeg 0\nno2.jpeg 0\n')
    (base/'val'/'crack1.jpeg').unlink(); (base/'val'/'notes.txt').unlink(); (base/'val'/'no5.txt').unlink()
    with pytest.raises(DataError, match="class 'crack' has no images"): load_bridge_dbcc(root, split='val')
    with pytest.raises(DataError, match='DBCC_Training_Data_Set as root='): load_bridge_dbcc(make_folder(tmp_path/'f'))
    with pytest.raises(DataNotFoundError, match='does not exist'): load_bridge_dbcc(tmp_path/'nope')


def test_registry_and_roots(tmp_path, monkeypatch):
    assert set(DATASETS) == {'casting', 'gc10det', 'magnetic_tile', 'itodd', 'sdnet2018', 'bridge_dbcc', 'elpv',
                             'folder', 'manifest'}
    with pytest.raises(DataError, match='known datasets: casting'): load_dataset('mvtec_ad')
    with pytest.raises(DataNotFoundError, match='does not exist'): load_dataset('casting', root=tmp_path/'nope')
    make_sdnet2018(tmp_path/'sdnet2018')
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path))
    assert len(load_dataset('SDNET2018')) == 15
    assert find_root('sdnet2018') == tmp_path/'sdnet2018'
    with pytest.raises(DataNotFoundError, match=f"searched .*gc10det.*root=.*{D.DATA_ENV}"): find_root('gc10det')
    assert load_dataset('folder', make_folder(tmp_path/'f')).classes == ['defect', 'ok']
    make_bridge_dbcc(tmp_path/'bridge_dbcc')
    assert load_dataset('Bridge-DBCC').counts() == {'no_crack': 5, 'crack': 3}      # found under $MVGG19_DATA


# ---------------------------------------------------------------- audit

def test_audit_finds_problems(tmp_path):
    root = make_folder(tmp_path/'a', per_class=4)
    shutil.copy(root/'ok'/'ok_0.png', root/'ok'/'ok_copy.png')
    shutil.copy(root/'ok'/'ok_1.jpg', root/'defect'/'stolen.jpg')
    b = (root/'defect'/'defect_0.png').read_bytes()
    (root/'defect'/'defect_0.png').write_bytes(b[:len(b)//2])
    write_layout(root, {'ok/thumb.png': ('L', (16, 16))})
    ds = load_folder(root, classes=['ok', 'defect'])
    splits = {'train': np.flatnonzero(ds.labels == 0), 'test': np.flatnonzero(ds.labels == 1)}
    rep = audit(ds, splits=splits)
    assert isinstance(rep, Audit) and not rep.ok
    assert names(u['path'] for u in rep.unreadable) == ['defect_0.png']
    assert names(s['path'] for s in rep.small) == ['thumb.png']
    assert [names(g['paths']) for g in rep.duplicates] == [['ok_0.png', 'ok_copy.png']]
    assert [names(g['paths']) for g in rep.conflicts] == [['ok_1.jpg', 'stolen.jpg']]
    assert [g['splits'] for g in rep.leakage] == [['test', 'train']]
    d = rep.to_dict(); json.dumps(d)
    assert d['counts'] == {'ok': 6, 'defect': 5} and 'stolen.jpg' in str(rep) and rep._repr_markdown_()
    assert names(u['path'] for u in audit(ds, check_images='decode').unreadable) == ['defect_0.png']
    with pytest.raises(ImageError, match='defect_0.png'): ds.load((8, 8))
    with pytest.warns(UserWarning, match='skipped 1'): x, kept, fails = ds.load_valid((8, 8))
    assert len(x) == len(kept) == 10 and 'defect_0.png' not in names(kept.paths)
    with pytest.raises(DataError, match='stolen.jpg'): drop_duplicates(ds)


# ---------------------------------------------------------------- real data

def real(loader, **kw):
    try: return loader(**kw)
    except DataNotFoundError as e: pytest.skip(f'dataset not available here: {e}')


def test_real_magnetic_tile():
    ds = real(load_magnetic_tile)
    assert ds.counts() == {'Blowhole': 115, 'Break': 85, 'Crack': 57, 'Fray': 32, 'Free': 952, 'Uneven': 103}
    assert len(ds) == 1344 and ds.meta['n_masks'] == 1344 and ds.meta['ignored'] == []
    assert all(p.endswith('.jpg') for p in ds.paths) and all(os.path.isfile(m) for m in ds.meta['masks'])
    s = ds.sample(60, seed=0)
    assert set(s.counts()) == set(ds.classes) and min(s.counts().values()) >= 5
    x = s.subset(slice(0, 8)).load((64, 64))
    assert x.shape == (8, 64, 64, 3) and (x[..., 0] == x[..., 1]).all()


def test_real_casting():
    ds = real(load_casting)
    assert len(ds) == 7348 and ds.counts() == {'ok': 2875 + 262, 'defective': 3758 + 453}
    assert ds.classes == ['ok', 'defective']
    assert Counter(ds.meta['split']) == {'train': 6633, 'test': 715}
    rep = audit(ds.subset(ds.meta['split'] == 'test'))
    assert rep.unreadable == [] and rep.sizes['max'] == [300, 300] and rep.modes == {'RGB': 715}


def test_real_bridge_dbcc():
    ds = real(load_bridge_dbcc)
    assert ds.classes == ['no_crack', 'crack'] and ds.counts() == {'no_crack': 48000, 'crack': 7000}
    assert Counter(zip(ds.meta['split'].tolist(), ds.labels.tolist())) == {('train', 0): 44000, ('train', 1): 6000,
                                                                           ('val', 0): 4000, ('val', 1): 1000}
    assert ds.meta['ignored'] == [] and all(p.endswith('.jpeg') for p in ds.paths)
    cracked = ds.subset(ds.labels == 1)              # the copies across splits are all cracked: 7000 files to hash
    rep = audit(cracked, check_images=False)
    val = {p for g in rep.leakage for p in g['paths'] if Path(p).parent.name == 'val'}
    assert len(rep.leakage) == 905 and len(val) == 999 and rep.conflicts == []
    x = ds.sample(20).load((16, 16))
    assert x.shape == (20, 16, 16, 3)


def test_real_elpv():
    ds = real(load_elpv)
    assert len(ds) == 2624 and ds.classes == ['ok', 'defective']
    assert (ds.labels == (ds.meta['proba'] > 0)).all()
    assert set(np.round(ds.meta['proba']*3).astype(int).tolist()) == {0, 1, 2, 3}
    assert set(ds.meta['cell_type'].tolist()) == {'mono', 'poly'}
    assert sum(load_elpv(labels='levels').counts().values()) == 2624
    x = ds.sample(20).load((32, 32))
    assert x.shape == (20, 32, 32, 3)
