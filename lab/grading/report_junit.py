"""JUnit XML report: one testsuite per scenario, one testcase per check, the full
explanation (with its shared cause) as the failure message.

The shape is the one CI tools read (Jenkins' junit-10.xsd, GitHub and GitLab
test-report actions): testsuites > testsuite (properties, testcase*) >
testcase > failure[@message, @type] with the same text as its content.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from lab.grading.report_json import Graded, Item

# Characters XML 1.0 cannot hold at all, not even as &#...; references (ElementTree
# writes them raw, and the file no longer parses), plus DEL and the C1 controls,
# which it allows but a CI log would print raw. Learner text (a flag value, a
# path) may hold them: they are written as visible escapes, `\x1b`. A CR is
# escaped too: a parser reads a raw CR in text content back as a newline.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(m: re.Match[str]) -> str:
    cp = ord(m[0])
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(_escape, text)


def _properties(suite: ET.Element, g: Graded, learner: str | None) -> None:
    r = g.result
    props = {
        "title": r.title,
        "points": str(r.points),
        "max_points": str(r.max_points),
        "workspace": g.workspace,
        "learner": learner,
    }
    el = ET.SubElement(suite, "properties")
    for name, value in props.items():
        if value is not None:
            ET.SubElement(el, "property", name=name, value=_xml_text(value))


def render_junit(items: Sequence[Item], *, learner: str | None = None) -> str:
    suites = ET.Element("testsuites", name="cks-lab")
    total = failures = 0
    for item in items:
        g = item if isinstance(item, Graded) else Graded(item)
        r = g.result
        checks = [(t, c) for t in r.tasks for c in t.checks]
        fails = sum(not c.passed for _, c in checks)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=_xml_text(r.scenario),
            tests=str(len(checks)),
            failures=str(fails),
            errors="0",
            skipped="0",
        )
        _properties(suite, g, learner)
        for task, c in checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_xml_text(f"{r.scenario}.{task.id}"),
                name=_xml_text(c.title),
            )
            if not c.passed:
                why = _xml_text(c.full_explanation)
                failure = ET.SubElement(case, "failure", message=why, type=_xml_text(c.type))
                failure.text = why
        total += len(checks)
        failures += fails
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", "0")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
