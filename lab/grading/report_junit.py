"""JUnit XML report: one testcase per check, the explanation as the failure message."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from lab.grading.results import ScenarioResult

# Characters XML 1.0 cannot hold at all, not even as &#...; references (ElementTree
# writes them raw, and the file no longer parses), plus DEL and the C1 controls,
# which it allows but a CI log would print raw. Learner text (a flag value, a
# path) may hold them: they are written as visible escapes, `\x1b`.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(m: re.Match[str]) -> str:
    cp = ord(m[0])
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(_escape, text)


def render_junit(results: list[ScenarioResult]) -> str:
    suites = ET.Element("testsuites", name="cks-lab")
    total = failures = 0
    for r in results:
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
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
