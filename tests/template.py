"""resources/template.yaml as the tests read it: CloudFormation's short forms (!Ref, !Sub, !GetAtt,
...) in their full JSON form, as CloudFormation (and cfn-lint) read them, or, with `plain`, as their
bare argument. PyYAML's C loader: a tenth of a second, not cfn-lint's two."""

from __future__ import annotations

import functools
from typing import Any

import yaml

from tests.conftest import ROOT

PATH = ROOT / "resources" / "template.yaml"


@functools.cache
def template(plain: bool = False) -> dict[str, Any]:
    loader = type("Loader", (getattr(yaml, "CSafeLoader", yaml.SafeLoader),), {})
    loader.add_multi_constructor("!", _plain if plain else _full)
    return yaml.load(PATH.read_text(), Loader=loader)  # noqa: S506 (a safe loader)


def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _full(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, object]:
    value = _plain(loader, suffix, node)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}
