"""Write the experiment template's `parameters` cell (nbs/_experiment.ipynb) from the run specification
(`mvgg19_nb.params.RUN_SPEC`): `python tools/sync_template.py`, or `--check` to only say whether it is in step (exit 1
if not). Adding a run parameter is its line in RUN_SPEC, its rule, the code that uses it, and this command."""
import json, sys
from pathlib import Path
from mvgg19_nb.params import template_source

TEMPLATE = Path(__file__).resolve().parents[1]/'nbs'/'_experiment.ipynb'


def main(argv=None) -> int:
    check = '--check' in (sys.argv[1:] if argv is None else argv)
    nb = json.loads(TEMPLATE.read_text(encoding='utf-8'))
    cell = next(c for c in nb['cells'] if 'parameters' in c.get('metadata', {}).get('tags', []))
    want = template_source()
    if ''.join(cell['source']).strip() == want: print(f'{TEMPLATE.name}: parameters in step with RUN_SPEC'); return 0
    if check: print(f'{TEMPLATE.name}: parameters differ from RUN_SPEC: run python tools/sync_template.py'); return 1
    cell['source'] = want.splitlines(keepends=True)
    TEMPLATE.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    print(f'{TEMPLATE.name}: parameters cell written from RUN_SPEC')
    return 0


if __name__ == '__main__':
    sys.exit(main())
