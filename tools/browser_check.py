"""Open every page of the built book in headless Chromium, as a reader would, and fail on what a reader would see:
a JavaScript error in the console, an image that did not load, maths left as TeX, a table wider than the main column
outside a box that scrolls it, and a search for "MVGG19" that finds nothing. Screenshots of the landing page and one
results page go under `_build/screenshots/`.

    python tools/browser_check.py [_build/html] [--width 1280] [--search MVGG19] [--shots _build/screenshots]

Needs Selenium (the dev extra) and Debian's `chromium` and `chromium-driver` (`tools/setup.sh` installs them as root).
Exit status 1 and one line per problem when a page breaks a rule; 0 otherwise.
"""
from __future__ import annotations

import argparse, json, shutil, sys, tempfile, time
from pathlib import Path

# what a page must satisfy, measured in the page itself once MathJax has finished
PAGE_STATE = r"""
const main = document.querySelector('main#main-content, main, article, body') || document.documentElement;
const mainRight = main.getBoundingClientRect().right + 1;
const scrolls = el => { for (let e = el.parentElement; e && e !== main.parentElement; e = e.parentElement) {
    const s = getComputedStyle(e).overflowX;
    if ((s === 'auto' || s === 'scroll') && e.getBoundingClientRect().right <= mainRight) return true; }
  return false; };
const wide = [...document.querySelectorAll('table')].filter(t => t.offsetParent !== null &&
    t.getBoundingClientRect().right > mainRight && !scrolls(t)).map(t =>
    (t.closest('[id]') ? '#' + t.closest('[id]').id + ' ' : '') + t.innerText.slice(0, 60).replace(/\s+/g, ' '));
const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
const maths = [...document.querySelectorAll('.math, span.math, div.math')].filter(m =>
    !m.querySelector('mjx-container') && /\\\(|\\\[|\$\$|\\begin/.test(m.textContent)).map(m => m.textContent.slice(0, 60));
return {wide, broken, maths, title: document.title};
"""
WAIT_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) { done(false); return; }
MathJax.startup.promise.then(() => done(true)).catch(() => done(false));
"""


def driver(width=1280, height=1600):
    "Headless Chromium through Selenium, Debian's binaries, no network, console logs kept."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
              '--allow-file-access-from-files', f'--window-size={width},{height}',
              f'--user-data-dir={tempfile.mkdtemp(prefix="mvgg19-chromium-")}'):
        opts.add_argument(a)
    opts.binary_location = shutil.which('chromium') or shutil.which('chromium-browser') or ''
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    exe = shutil.which('chromedriver')
    if not (opts.binary_location and exe):
        raise SystemExit('browser check: chromium and chromedriver not found: apt-get install chromium chromium-driver')
    d = webdriver.Chrome(service=Service(exe), options=opts)
    d.set_script_timeout(30)
    return d


def check_page(d, page: Path, site: Path) -> list:
    "The problems a reader would see on `page`: one string each."
    d.get(page.resolve().as_uri())
    d.execute_async_script(WAIT_MATHJAX)
    state = d.execute_script(PAGE_STATE)
    rel, out = page.relative_to(site), []
    for entry in d.get_log('browser'):
        if entry.get('level') != 'SEVERE': continue
        msg = entry['message']
        if entry.get('source') == 'network':  # a file the page asks for is missing (images: said below, by name)
            if not any(src and src in msg for src in state['broken']): out.append(f"{rel}: not loaded: {msg[:160]}")
        else: out.append(f"{rel}: JavaScript error: {msg[:160]}")
    out += [f"{rel}: image not loaded: {src}" for src in state['broken']]
    out += [f"{rel}: maths not typeset: {m!r}" for m in state['maths']]
    out += [f"{rel}: table wider than the main column, not in a scrolling box: {t!r}" for t in state['wide']]
    return out


def check_search(d, site: Path, word: str) -> list:
    "A search for `word` on the built book's search page finds at least one page."
    search = site/'search.html'
    if not search.is_file(): return [f"search.html: missing, so a search for {word!r} cannot find anything"]
    d.get(search.resolve().as_uri() + f'?q={word}')
    deadline, n = time.time() + 20, 0
    while time.time() < deadline:
        n = d.execute_script("return document.querySelectorAll('#search-results li, ul.search li').length")
        if n: break
        time.sleep(0.3)
    return [] if n else [f"search.html: a search for {word!r} finds nothing"]


def check_site(site, width=1280, word='MVGG19', shots=None, pages=None) -> list:
    "Every problem on every page of the built book `site` (or of `pages`), with screenshots of two pages in `shots`."
    site = Path(site)
    pages = pages or sorted(p for p in site.rglob('*.html') if '_static' not in p.parts and p.name not in
                            ('search.html', 'genindex.html', 'py-modindex.html'))
    if not pages: return [f"{site}: no HTML pages: build the book first (mvgg19 book)"]
    d, problems = driver(width), []
    try:
        for p in pages: problems += check_page(d, p, site)
        problems += check_search(d, site, word)
        if shots: screenshots(d, site, Path(shots))
    finally: d.quit()
    return problems


def screenshots(d, site: Path, shots: Path):
    "The landing page and the first results page, as a reader sees their first screen."
    shots.mkdir(parents=True, exist_ok=True)
    results = sorted((site/'book'/'results').glob('*.html'))
    for name, page in [('landing', site/'index.html'), ('results', results[0] if results else None)]:
        if page is not None and page.is_file():
            d.get(page.resolve().as_uri()); d.execute_async_script(WAIT_MATHJAX)
            d.save_screenshot(str(shots/f'{name}.png'))


def main(argv=None) -> int:
    a = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    a.add_argument('site', nargs='?', default='_build/html')
    a.add_argument('--width', type=int, default=1280, help='window width in px (default 1280)')
    a.add_argument('--search', default='MVGG19', help='the word the search must find')
    a.add_argument('--shots', default='_build/screenshots', help='folder for the screenshots')
    args = a.parse_args(argv)
    t0 = time.time()
    problems = check_site(args.site, args.width, args.search, args.shots)
    for p in problems: print('BROWSER:', p)
    n = len([p for p in Path(args.site).rglob('*.html') if '_static' not in p.parts])
    print(f"browser check: {n} pages at {args.width} px in {time.time() - t0:.0f} s, {len(problems)} problem(s); "
          f"screenshots in {args.shots}")
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
