"Package set-up for mvgg19_nb: everything is read from settings.ini, as nbdev expects."
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

def reqs(key): return cfg.get(key, '').split()

setuptools.setup(
    name=cfg['lib_name'].replace('_', '-'), version=cfg['version'], description=cfg['description'],
    long_description=(Path(__file__).parent/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0', url=cfg['git_url'],
    keywords=cfg['keywords'], python_requires=f">={cfg['min_python']}",
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    include_package_data=True,
    install_requires=reqs('requirements'),
    extras_require={'cpu': reqs('pip_requirements'), 'dev': reqs('dev_requirements'),
                    'gpu': reqs('gpu_requirements'), 'gpu-jax': reqs('gpu_jax_requirements'),  # README: on a GPU
                    'elpv': ['elpv-dataset'], 'onnx': ['tf2onnx', 'onnx', 'onnxruntime'],
                    'ray': ['ray[default]>=2.40']},  # mvgg19_nb.cluster: folds and sweeps on Ray
    entry_points={'console_scripts': cfg['console_scripts'].split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
