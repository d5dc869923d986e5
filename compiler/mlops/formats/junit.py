"""JUnit XML: one test case per spec file, failed when the file has errors, for CI test tabs."""

from __future__ import annotations

from collections import defaultdict
from xml.etree import ElementTree as ET

from mlops.diagnostics import Diagnostic, Severity
from mlops.escaping import xml


def _line(d: Diagnostic) -> str:
    return f"{d.file}:{d.line}:{d.col}: {d.severity} {d.code} {d.scope}{d.message}" + (
        f" (hint: {d.hint})" if d.hint else ""
    )


def render(diagnostics: list[Diagnostic]) -> str:
    by_file: dict[str, list[Diagnostic]] = defaultdict(list)
    if not diagnostics:
        by_file["project"] = []  # a clean run still shows one passing case
    for d in diagnostics:
        by_file[d.file].append(d)
    failed = sum(any(d.severity is Severity.ERROR for d in items) for items in by_file.values())
    suite = ET.Element("testsuite", name="mlops validate", tests=str(len(by_file)), failures=str(failed), errors="0")
    for name, items in sorted(by_file.items()):
        case = ET.SubElement(suite, "testcase", classname="mlops.validate", name=xml(name))
        errors = [d for d in items if d.severity is Severity.ERROR]
        if errors:
            first = errors[0]
            summary = f"{len(errors)} error{'s' if len(errors) > 1 else ''}, first: {first.code} {first.message}"
            failure = ET.SubElement(case, "failure", message=xml(summary), type=xml(first.code))
            failure.text = xml("\n".join(_line(d) for d in errors))
        others = [d for d in items if d.severity is not Severity.ERROR]
        if others:
            ET.SubElement(case, "system-out").text = xml("\n".join(_line(d) for d in others))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
