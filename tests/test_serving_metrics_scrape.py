"""The local server's /metrics exposes the series the rendered alert rules read.

A real `mlops serve` app on a free 127.0.0.1 port (the tabular example's registered weights, and the
tiny LLM with its PEFT adapter), scraped with httpx and parsed with prometheus-client's own parser:
every series an absent() guard of the example's rendered local rules names is there, with the
labels the rule selects on, from start-up (an idle server must not look like a missing exporter)
and after traffic. Then the scraped samples go through promtool with the rules as rendered: no
guard fires, and a 4xx is not a server error.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests import test_serving_llm as llm
from tests import test_serving_tabular as tabular
from tests.helpers import mlops

# the serving tests' fixtures: a registry with released versions and a server over it
registry = tabular.registry
versions = llm.versions
GUARD = re.compile(r"^absent\((?P<series>[^{)]+)\{(?P<selector>[^}]*)\}\)")


def scrape(client: httpx.Client) -> list[tuple[str, dict[str, str], float]]:
    text = client.get("/metrics").text
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def guards(root: Path, model: str) -> list[tuple[str, dict[str, str]]]:
    """(series, equality matchers) of each absent() guard of the model's rendered local serving rules."""
    assert mlops("compile", root, "--env", "local").exit_code == 0
    rules = yaml.safe_load((root / "rendered" / "local" / "prometheus" / f"{model}.rules.yaml").read_text())
    [serving] = [g for g in rules["groups"] if g["name"].endswith("-serving")]
    out = []
    for rule in serving["rules"]:
        if rule["alert"] == "MlopsSeriesAbsent":
            m = GUARD.match(rule["expr"])
            assert m, rule["expr"]
            matchers = dict(re.findall(r'(\w+)="([^"]*)"', m["selector"]))
            out.append((m["series"], matchers))
    return out


def exposed(samples: list[tuple[str, dict[str, str], float]], series: str, matchers: dict[str, str]) -> bool:
    return any(name == series and matchers.items() <= labels.items() for name, labels, _ in samples)


def no_guard_fires(root: Path, model: str, samples: list[tuple[str, dict[str, str], float]], tmp: Path) -> None:
    """The scraped samples as constant series through promtool with the rendered serving rules."""
    rules = yaml.safe_load((root / "rendered" / "local" / "prometheus" / f"{model}.rules.yaml").read_text())
    rules["groups"] = [g for g in rules["groups"] if g["name"].endswith("-serving")]
    for g in rules["groups"]:
        for r in g["rules"]:
            r.pop("annotations")
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules))
    series = [
        {"series": name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": f"{value}x30"}
        for name, labels, value in samples
        if name.startswith(("vllm:", "mlops:")) and not name.endswith("_created")
    ]
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [{"eval_time": "25m", "alertname": "MlopsSeriesAbsent", "exp_alerts": []}],
            }
        ],
    }
    (tmp / "test.yaml").write_text(yaml.safe_dump(test))
    result = subprocess.run([shutil.which("promtool"), "test", "rules", str(tmp / "test.yaml")], capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


def check_server(server: Any, root: Path, model: str, request: Callable[[httpx.Client], None], tmp: Path) -> None:
    read = guards(root, model)
    assert read, "the example's local rules have guards"
    with httpx.Client(base_url=server.url, timeout=120) as client:
        idle = scrape(client)
        for series, matchers in read:
            if series.endswith("_bucket"):  # histograms exist from start-up, at zero
                assert exposed(idle, series, matchers), f"{series}{matchers} missing from an idle server"
        request(client)
        busy = scrape(client)
    for series, matchers in read:
        assert exposed(busy, series, matchers), f"{series}{matchers} missing after requests"
    no_guard_fires(root, model, busy, tmp)


def test_tabular_server_exposes_what_the_rules_read(
    registry, copy_example: Callable[[str], Path], tmp_path: Path
) -> None:
    model = tabular.ServedModel(tabular.NAME, "tabular-classification", registry, tabular.COLUMNS, "fraud_score")
    state = tabular.ServingApp([model], tmp_path, poll_seconds=0.05, max_body_bytes=64 * 1024)

    def requests(client: httpx.Client) -> None:
        assert tabular.predict(client, tabular.instances(3)).status_code == 200
        assert client.post(f"/v1/models/{tabular.NAME}:predict", content=b"{not json").status_code == 400

    with tabular.ServerThread(state.app) as server:
        check_server(server, copy_example("tabular-fraud"), tabular.NAME, requests, tmp_path)
        samples = scrape(httpx.Client(base_url=server.url))
    by_status = {labels["status"]: v for name, labels, v in samples if name == "mlops:requests_total"}
    assert by_status.get("200") == 1 and by_status.get("400") == 1  # what the error rate divides; 5.. matches neither


def test_llm_server_exposes_what_the_rules_read(versions, copy_example: Callable[[str], Path], tmp_path: Path) -> None:
    reg, base = versions
    model = llm.ServedModel(llm.NAME, "llm-finetune", reg, ("prompt", "response", "latency_ms"), None, ())
    state = llm.ServingApp([model], base.parent, poll_seconds=0.05)

    def requests(client: httpx.Client) -> None:
        body = {"model": llm.NAME, "messages": [{"role": "user", "content": "my order"}], "max_tokens": 4}
        assert client.post("/v1/chat/completions", json=body).status_code == 200

    with llm.ServerThread(state.app) as server:
        check_server(server, copy_example("llm-support"), llm.NAME, requests, tmp_path)
