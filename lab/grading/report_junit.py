"""JUnit XML report: one testcase per check, the explanation as the failure message."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lab.grading.results import ScenarioResult


def render_junit(results: list[ScenarioResult]) -> str:
    suites = ET.Element("testsuites", name="cks-lab")
    total = failures = 0
    for r in results:
        checks = [(t, c) for t in r.tasks for c in t.checks]
        fails = sum(not c.passed for _, c in checks)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=r.scenario,
            tests=str(len(checks)),
            failures=str(fails),
            errors="0",
            skipped="0",
        )
        for task, c in checks:
            case = ET.SubElement(
                suite, "testcase", classname=f"{r.scenario}.{task.id}", name=c.title
            )
            if not c.passed:
                failure = ET.SubElement(case, "failure", message=c.full_explanation, type=c.type)
                failure.text = c.full_explanation
        total += len(checks)
        failures += fails
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
