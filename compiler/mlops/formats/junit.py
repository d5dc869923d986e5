"""JUnit XML: one test case per spec file, a failure per error, for CI test tabs."""

from __future__ import annotations

from collections import defaultdict
from xml.etree import ElementTree as ET

from mlops.diagnostics import Diagnostic, Severity


def render(diagnostics: list[Diagnostic]) -> str:
    by_file: dict[str, list[Diagnostic]] = defaultdict(list)
    if not diagnostics:
        by_file["project"] = []  # a clean run still shows one passing case
    for d in diagnostics:
        by_file[d.file].append(d)
    failures = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    suite = ET.Element("testsuite", name="mlops validate", tests=str(len(by_file)), failures=str(failures), errors="0")
    for name, items in sorted(by_file.items()):
        case = ET.SubElement(suite, "testcase", classname="mlops.validate", name=name)
        for d in items:
            tag = "failure" if d.severity is Severity.ERROR else "system-out"
            el = ET.SubElement(case, tag)
            text = f"{d.file}:{d.line}:{d.col}: {d.code} {d.message}" + (f" (hint: {d.hint})" if d.hint else "")
            if tag == "failure":
                el.set("message", text)
                el.set("type", d.code)
            el.text = text
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
