"""Prometheus target: rendered/<env>/prometheus/<model>.rules.yaml, the model's alerting rules.

A rules file as Prometheus loads it (`rule_files:`) and `promtool check rules` reads it, in every
environment, locally too (a Prometheus next to `mlops serve`). On clusters the Pulumi program
declares the same groups as a PrometheusRule. The groups are data (mlops.alert_rules), serialized here.
"""

from __future__ import annotations

import yaml

from mlops import alert_rules
from mlops.block_yaml import Emitter
from mlops.model import ResolvedModel
from mlops.targets.base import Artifact

TARGET = "prometheus"


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml: fast at thousands of models
    pass


_EMITTER = Emitter(_Dumper, width=1000, allow_unicode=True, sort_keys=False)  # yaml.dump's bytes, faster


def render(m: ResolvedModel) -> list[Artifact]:
    groups = alert_rules.groups(m)
    if not groups:
        return []
    env = m.environment.name
    # names are validated DNS labels; everything else reaches the file through the YAML dumper
    header = (
        f"# Prometheus alerting rules of {m.name} in environment {env}, rendered by `mlops compile` from its\n"
        "# serving.slo and training.alerts. Do not edit: change the spec and compile again.\n"
    )
    body = _EMITTER.dump({"groups": groups})
    return [Artifact(f"{env}/{TARGET}/{m.name}.rules.yaml", (header + body).encode(), TARGET, env, m.name)]
