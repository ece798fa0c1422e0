"""The book's browser check (tools/browser_check.py) on made-up pages: it passes a clean page and names each rule a
broken page breaks. Needs Debian's chromium and chromium-driver and Selenium, which tools/setup.sh installs."""
import shutil, sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]/'tools'))
pytest.importorskip('selenium')
if not (shutil.which('chromium') and shutil.which('chromedriver')):
    pytest.skip('chromium and chromedriver are not installed (tools/setup.sh installs them as root)',
                allow_module_level=True)
from browser_check import check_site

PAGE = '<!doctype html><html><head><title>{title}</title></head><body><main id="main-content" style="width:600px">' \
       '{body}</main></body></html>'
CLEAN = '<p>MVGG19</p><div style="overflow-x:auto"><table><tr>' + '<td>0.97 &plusmn; 0.01</td>' * 40 + \
        '</tr></table></div>'
BROKEN = {'a JavaScript error': '<script>const a = 1; const a = 2;</script>',
          'an image that did not load': '<img src="missing.png">',
          'maths left as TeX': r'<span class="math">\(x^2\)</span>',
          'a table wider than the main column': '<table><tr>' + '<td>0.97 &plusmn; 0.01</td>' * 40 + '</tr></table>'}
SEARCH = '<!doctype html><html><body><ul class="search">{hits}</ul></body></html>'


def site(tmp_path, body, hits='<li>MVGG19</li>'):
    (tmp_path/'page.html').write_text(PAGE.format(title='page', body=body))
    (tmp_path/'search.html').write_text(SEARCH.format(hits=hits))
    return tmp_path


def test_a_clean_page_passes(tmp_path):
    assert check_site(site(tmp_path, CLEAN)) == []


@pytest.mark.parametrize('rule', BROKEN)
def test_each_broken_rule_is_named(tmp_path, rule):
    problems = check_site(site(tmp_path, CLEAN + BROKEN[rule]))
    says = {'a JavaScript error': 'page.html: JavaScript error: ', 'an image that did not load':
            'page.html: image not loaded: missing.png', 'maths left as TeX': 'page.html: maths not typeset: ',
            'a table wider than the main column': 'page.html: table wider than the main column'}[rule]
    assert len(problems) == 1 and problems[0].startswith(says), problems


def test_a_search_that_finds_nothing_fails(tmp_path):
    assert check_site(site(tmp_path, CLEAN, hits='')) == ["search.html: a search for 'MVGG19' finds nothing"]


def test_screenshots_of_the_landing_and_a_results_page(tmp_path):
    s = site(tmp_path, CLEAN)
    (s/'index.html').write_text(PAGE.format(title='landing', body=CLEAN))
    (s/'book'/'results').mkdir(parents=True); (s/'book'/'results'/'casting.html').write_text(PAGE.format(
        title='casting', body=CLEAN))
    assert check_site(s, shots=tmp_path/'shots') == []
    assert sorted(p.name for p in (tmp_path/'shots').iterdir()) == ['landing.png', 'results.png']
