"""Our pages inside three host layouts with their own global CSS, in Chromium.

The hosts (tests/hosts/): the example app's layout; a Bootstrap 5 layout (local
``bootstrap.min.css``, whose reboot restyles every bare element); a Flask-tutorial layout with
classless global rules on ``nav``, ``header``, ``h1``, ``form``, ``label``, ``input``,
``button``, ``table``... Each page is loaded once per host; at desktop and phone (390 px) width
the test reads the computed style of every element inside ``.mailconnect`` and takes a
full-page screenshot (artifacts/screenshots/hosts/, gitignored).

What must hold: every element of ours computes the same styles in the Bootstrap and classless
hosts as in the example host (only the font family is the host's, inherited); the values that
matter are ours (breadcrumb not greyed, headings at our size, inputs and buttons with our look);
nothing of ours sticks out sideways at phone width.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.browser_helpers import ROOT, SCREENSHOTS, chromium, serve
from tests.hosts import HOSTS, example_hosts, sign_in

pytestmark = pytest.mark.browser

SHOTS = SCREENSHOTS / "hosts"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

# Every element inside .mailconnect, keyed by its place in the tree, with the computed styles a
# host's global rules commonly change. Widths and heights are left out: the host's container
# sets ours. The font family is checked apart (it is the host's on purpose).
PROPS = (
    "display", "position", "float", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding-top", "padding-right", "padding-bottom", "padding-left", "border-top-width",
    "border-right-width", "border-bottom-width", "border-left-width", "border-top-style",
    "border-bottom-style", "border-top-color", "border-bottom-color", "border-top-left-radius",
    "border-bottom-right-radius", "background-color", "background-image", "color", "font-size",
    "font-weight", "font-style", "line-height", "letter-spacing", "word-spacing",
    "text-transform", "text-align", "text-indent", "text-decoration-line",
    "text-decoration-style", "text-shadow", "list-style-type", "box-shadow", "flex-direction",
    "flex-wrap", "align-items", "justify-content", "row-gap", "column-gap", "min-height",
    "opacity", "vertical-align", "white-space", "outline-style", "appearance",
    "border-collapse", "border-spacing", "transform",
)  # fmt: skip
# Each element's values come back as one string joined by SEP (in PROPS' order): a dict of 53
# names per element made the transfer from the browser most of this module's time.
SEP = "\x01"
SIGNATURE_JS = """([root, props, monospace]) => {
  const out = {};
  const fonts = {};  // only the elements whose font is neither the root's nor our monospace
  const rootFont = getComputedStyle(root).fontFamily;
  const walk = (el, key) => {
    const tag = el.tagName.toLowerCase();
    if (["script", "link", "template", "style"].includes(tag)) return;
    const cs = getComputedStyle(el);
    if (cs.display === "none") { out[key] = null; return; }
    out[key] = props.map(p => cs.getPropertyValue(p)).join("\\x01");
    if (cs.fontFamily !== rootFont && !cs.fontFamily.startsWith(monospace))
      fonts[key] = cs.fontFamily;
    if (tag === "svg") return;
    let i = 0;
    for (const child of el.children) walk(child, key + ">" + child.tagName.toLowerCase()
      + (child.classList.length ? "." + [...child.classList].join(".") : "") + "[" + (i++) + "]");
  };
  walk(root, "div.mailconnect");
  const rect = root.getBoundingClientRect();
  return {sig: out, fonts: fonts,
          overflow: Math.max(root.scrollWidth - root.clientWidth,
                             rect.right - document.documentElement.clientWidth)};
}"""

# The values that matter, read where present: (selector, property, expected, at phone width).
EXPECTED = [
    (".mc-crumbs", "background-color", "rgba(0, 0, 0, 0)", None),
    (".mc-crumbs", "color", "rgb(95, 102, 115)", None),
    (".mc-crumbs", "padding-top", "0px", None),
    (".mc-crumbs", "display", "flex", None),
    (".mc-crumbs a", "text-transform", "none", None),
    (".mc-header h1.mc-title", "font-size", "26px", "21px"),
    ("h1.mc-title", "color", "rgb(31, 41, 55)", None),
    ("h1.mc-title", "text-transform", "none", None),
    ("h1.mc-title", "border-bottom-width", "0px", None),
    ("h2.mc-section-title", "font-size", "16px", None),
    ("h2.mc-section-title", "font-style", "normal", None),
    ("header.mc-header", "background-color", "rgba(0, 0, 0, 0)", None),
    ("header.mc-header", "border-bottom-width", "0px", None),
    ("form.mc-form", "display", "block", None),
    ("form.mc-form:not(.mc-panel)", "border-top-width", "0px", None),
    ("label.mc-label", "text-transform", "none", None),
    ("label.mc-label", "font-size", "13.5px", None),
    ("input.mc-input:not(:focus)", "border-top-color", "rgb(140, 148, 161)", None),
    ("input.mc-input", "font-size", "15px", None),
    ("input.mc-input", "padding-left", "12px", None),
    ("input.mc-input", "margin-bottom", "0px", None),
    ("input.mc-input:not([readonly])", "background-color", "rgb(255, 255, 255)", None),
    (".mc-btn--primary", "background-color", "rgb(37, 99, 235)", None),
    (".mc-btn--primary", "text-transform", "none", None),
    (".mc-btn--primary", "border-top-left-radius", "7px", None),
    (".mc-btn--primary", "box-shadow", "none", None),
    (".mc-btn--primary", "min-height", "40px", None),
    (".mc-table th", "background-color", "rgb(247, 248, 250)", None),
    (".mc-table td", "border-left-width", "0px", None),
    ("ul.mc-cards", "list-style-type", "none", None),
    ("ul.mc-cards", "padding-left", "0px", None),
]

EXPECTED_JS = """checks => checks.map(([selector, prop]) => {
  const el = [...document.querySelectorAll(".mailconnect " + selector)]
    .find(e => e.getClientRects().length);
  return el ? getComputedStyle(el).getPropertyValue(prop) : null;
})"""

MONOSPACE = "ui-monospace"  # our stack for code and the plain-text signature


@dataclass
class Rendered:
    """What one host made of each page: computed styles per width, problems found."""

    sig: dict[tuple[str, str], dict[str, dict[str, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    found: set[int] = field(default_factory=set)  # indexes into EXPECTED that matched
    pages: int = 0


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Rendered]]:
    """Every page in every host, loaded once: one server, one browser, one context per host."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    results = {host: Rendered() for host in HOSTS}
    hosts = example_hosts(tmp_path_factory.mktemp("hosts"))
    with hosts as (app, _box, seeded), serve(app) as url, chromium() as browser:
        for host in HOSTS:
            context = browser.new_context(viewport=SIZES["desktop"])
            page = sign_in(context, url, host)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            for name, path in seeded.pages.items():
                _render(page, url + path, host, name, results[host])
            results[host].problems += [f"{host}: script error {e}" for e in errors]
            context.close()
    yield results


def _render(page: Any, url: str, host: str, name: str, into: Rendered) -> None:
    response = page.goto(url)
    assert response.status == 200, f"{host} {name}: {response.status}"
    page.wait_for_load_state("load")  # our stylesheet and script are in the body
    into.pages += 1
    for label, size in SIZES.items():
        page.set_viewport_size(size)
        root = page.locator(".mailconnect").first.element_handle()
        data = page.evaluate(SIGNATURE_JS, [root, PROPS, MONOSPACE])
        into.sig[(name, label)] = {
            key: dict(zip(PROPS, values.split(SEP), strict=True)) if values is not None
            else {"display": "none"}
            for key, values in data["sig"].items()
        }  # fmt: skip
        for key, font in data["fonts"].items():
            into.problems.append(f"{name} {label}: {key} has font {font!r}")
        if data["overflow"] > 0.5:
            into.problems.append(f"{name} {label}: sticks out {data['overflow']}px sideways")
        values = page.evaluate(EXPECTED_JS, [[sel, prop] for sel, prop, _, _ in EXPECTED])
        for index, ((sel, prop, want, want_phone), got) in enumerate(
            zip(EXPECTED, values, strict=True)
        ):
            want = want_phone if label == "phone" and want_phone else want
            if got is not None:
                into.found.add(index)
            if got is not None and got != want:
                into.problems.append(f"{name} {label}: {sel} {prop} is {got}, not {want}")
        page.screenshot(path=str(SHOTS / f"{host}-{name}-{label}.png"), full_page=True)
    page.set_viewport_size(SIZES["desktop"])


def test_every_page_renders_in_every_host(rendered: dict[str, Rendered]) -> None:
    pages = {host: r.pages for host, r in rendered.items()}
    assert len(set(pages.values())) == 1 and pages["example"] >= 15, pages
    assert all(len(r.sig) == 2 * r.pages for r in rendered.values())
    assert len(list(SHOTS.glob("*.png"))) >= 2 * sum(pages.values())


@pytest.mark.parametrize("host", HOSTS)
def test_our_values_hold_in_the_host(rendered: dict[str, Rendered], host: str) -> None:
    problems = rendered[host].problems
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("host", [h for h in HOSTS if h != "example"])
def test_host_css_changes_nothing_of_ours(rendered: dict[str, Rendered], host: str) -> None:
    """Every element, every property, both widths: as in the example host."""
    base, other = rendered["example"].sig, rendered[host].sig
    assert base.keys() == other.keys()
    differences = []
    for page_width, elements in base.items():
        assert elements.keys() == other[page_width].keys(), page_width
        for key, props in elements.items():
            for prop, value in props.items():
                got = other[page_width][key][prop]
                if got != value:
                    differences.append(f"{page_width} {key} {prop}: {got!r}, example {value!r}")
    assert differences == [], f"{len(differences)} differences:\n" + "\n".join(differences[:40])


def test_every_check_found_its_element(rendered: dict[str, Rendered]) -> None:
    """Each EXPECTED selector matched on some page in every host: none of them is vacuous."""
    for host, r in rendered.items():
        assert r.found == set(range(len(EXPECTED))), host


def _selectors(css: str) -> Iterator[str]:
    """Every selector of every style rule in ``css`` (inside @media too; not @keyframes)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    stack: list[str] = []
    prelude = ""
    for char in css:
        if char == "{":
            head = prelude.strip()
            stack.append(head)
            if not head.startswith("@") and not any(s.startswith("@keyframes") for s in stack[:-1]):
                depth, part = 0, ""
                for c in head + ",":  # split on commas outside :is(...) and friends
                    depth += (c == "(") - (c == ")")
                    if c == "," and depth == 0:
                        yield " ".join(part.split())
                        part = ""
                    else:
                        part += c
            prelude = ""
        elif char == "}":
            stack.pop()
            prelude = ""
        elif char == ";":
            prelude = ""
        else:
            prelude += char


def test_every_rule_is_scoped_under_the_root() -> None:
    """The style contract: no rule of ours reaches outside ``.mailconnect`` (the standalone
    base's ``body.mailconnect-standalone`` is ours too)."""
    static = ROOT / "flask_mailconnect" / "static" / "mailconnect"
    sheets = sorted(static.glob("*.css"))
    assert {p.name for p in sheets} >= {"mailconnect.css", "admin.css"}
    count = 0
    for sheet in sheets:
        for selector in _selectors(sheet.read_text()):
            count += 1
            assert selector.startswith((".mailconnect", "body.mailconnect-standalone")), (
                f"{sheet.name}: {selector!r} is not scoped under .mailconnect"
            )
    assert count > 200
