"""axe-core in a Playwright page, for the accessibility checks: tests/test_browser_a11y.py and
tests/test_message_page.py.

``AXE`` is axe-core from npm (package.json / package-lock.json; ``make test`` runs ``npm ci``);
``axe(page, label)`` injects it into the loaded page and returns its violations, WCAG 2.2 AA over
the whole page and axe's best practices inside our root, plus every aria-describedby or
aria-labelledby naming an id the page lacks.
"""

from __future__ import annotations

from typing import Any

from tests.browser_helpers import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# WCAG 2.2 AA over the whole page; best practices (landmarks, heading order...) inside our root.
AXE_JS = """async tags => {
  const wcag = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                        resultTypes: ["violations"]});
  const ours = await axe.run({include: [".mailconnect"]},
      {runOnly: {type: "tag", values: ["best-practice"]}, resultTypes: ["violations"]});
  return wcag.violations.concat(ours.violations).map(v => v.id + " (" + v.impact + "): "
    + v.help + " at " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
}"""

# axe accepts aria-describedby when one of its ids exists; every one of ours must.
IDREFS_JS = """() => [...document.querySelectorAll(
    ".mailconnect [aria-describedby], .mailconnect [aria-labelledby]")].flatMap(el =>
  ["aria-describedby", "aria-labelledby"].flatMap(attr =>
    (el.getAttribute(attr) || "").split(/\\s+/).filter(id => id && !document.getElementById(id))
      .map(id => el.tagName.toLowerCase() + "#" + el.id + " " + attr + " -> missing " + id)))"""


def axe(page: Any, label: str) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(AXE_JS, WCAG) + page.evaluate(IDREFS_JS)
    return [f"{label}: {v}" for v in found]
