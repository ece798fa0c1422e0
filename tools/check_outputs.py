"""Committed notebook outputs that change from run to run: temporary folders, home or checkout paths, mtimes, pids.

    python tools/check_outputs.py                 # the committed notebooks: nbs/*.ipynb and book/results/*.ipynb
    python tools/check_outputs.py a.ipynb b.ipynb # these

The book shows what a notebook printed when it was executed; an output that names a temporary folder
(`/tmp/tmpab12_x9z/...`, a `tempfile` name), the machine's home or checkout (`/root/`, `/work/`), a file's mtime or a
process id differs on the next run and means nothing to a reader (print paths relative to a named folder instead).
Each finding is one line, `notebook: cell N (its index in the notebook, from 0): 'match' in: context`; the exit status
is 1 if there is any, 0 if none. Image outputs (base64 data) are not read.
"""
from __future__ import annotations

import json, re, subprocess, sys
from pathlib import Path

__all__ = ['UNSTABLE', 'NOTEBOOKS', 'committed_notebooks', 'output_texts', 'findings', 'main']

UNSTABLE = re.compile(r"""
    (?:/tmp|/var/folders|/private/var|/work|/root)/[^\s'"`)\]},;<>&]*  # a temporary, home or checkout path
  | \btmp[a-z0-9_]{6,}\b                                           # a tempfile name (tempfile.mkdtemp: tmpab12_x9z)
  | \bmtime\w*                                                     # a file's modification time (mtime, mtime_ns)
  | \bpid[ =:]+\d+                                                 # a process id
""", re.X | re.I)
NOTEBOOKS = ('nbs/*.ipynb', 'book/results/*.ipynb')
_TEXT = ('text/plain', 'text/html', 'text/markdown', 'text/latex', 'image/svg+xml', 'application/json')


def committed_notebooks(root='.') -> list[Path]:
    "The notebooks git tracks under `NOTEBOOKS` in `root` (every file matching them where `root` is not a checkout)."
    root = Path(root)
    try:
        out = subprocess.run(['git', 'ls-files', '-z', '--', *NOTEBOOKS], cwd=root, capture_output=True, text=True,
                             check=True).stdout
        return sorted(root/p for p in out.split('\0') if p)
    except (OSError, subprocess.CalledProcessError):
        return sorted(p for g in NOTEBOOKS for p in root.glob(g))


def _text(v) -> str: return ''.join(v) if isinstance(v, list) else v if isinstance(v, str) else json.dumps(v)


def output_texts(cell: dict):
    "The text of each output of a code cell: streams, text and JSON data, error messages and tracebacks."
    for o in cell.get('outputs', []):
        if 'text' in o: yield _text(o['text'])
        for mime, v in (o.get('data') or {}).items():
            if mime in _TEXT: yield _text(v)
        if o.get('output_type') == 'error': yield '\n'.join([o.get('evalue', ''), *o.get('traceback', [])])


def findings(path) -> list[str]:
    "One line per unstable value in the outputs of notebook `path` (each distinct match once per cell)."
    try: cells = json.loads(Path(path).read_text(encoding='utf-8'))['cells']
    except (OSError, ValueError, KeyError) as e: return [f'{path}: not a readable notebook ({e})']
    found = []
    for i, cell in enumerate(cells):
        seen = set()
        for text in output_texts(cell):
            for m in UNSTABLE.finditer(text):
                if m.group(0) in seen: continue
                seen.add(m.group(0))
                context = ' '.join(text[max(m.start() - 40, 0):m.end() + 40].split())
                found.append(f'{path}: cell {i}: {m.group(0)!r} in: {context}')
    return found


def _shown(path: Path) -> Path:
    "`path` relative to the working directory where it is under it (`nbs/09_cli.ipynb`), else as it is."
    try: return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError: return path


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    paths = [Path(a) for a in args] or [_shown(p) for p in committed_notebooks(Path(__file__).resolve().parents[1])]
    found = [line for p in paths for line in findings(p)]
    for line in found: print(line)
    bad = len({line.split(': cell ')[0] for line in found})
    print(f'{len(found)} unstable values in the outputs of {bad} of {len(paths)} notebooks' if found else
          f'{len(paths)} notebooks: no temporary path, home or checkout path, mtime or pid in their outputs')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
