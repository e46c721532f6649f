"""botocore's data for the services the app calls, lighter to load on a cold start.

chalicelib/aws/data holds, for each service in SERVICES, its service model without its
documentation (every operation and shape kept: the client is the same, its methods only lack
docstrings), and an endpoints.json that lists those services alone (each one's entries as
botocore has them). A client of these services reads them before botocore's own files
(chalicelib.aws.clients), and everything else (endpoint rule sets, paginators, waiters, a newer
API version) from botocore's. Written from the installed botocore by

    python -m chalicelib.aws.trimmed

and checked against it by tests/test_clients.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data")
SERVICES = ("cloudwatch", "dynamodb", "s3", "ses", "sns", "sqs", "ssm", "sts")
_UNDOCUMENTED = ("documentation", "documentationUrl")


def files() -> dict[str, str]:
    """Each file of chalicelib/aws/data (a path under it) and its text, from the installed botocore."""
    import botocore.session

    loader = botocore.session.Session().get_component("data_loader")
    out, prefixes = {}, set()
    for service in SERVICES:
        version = loader.determine_latest_version(service, "service-2")
        model = loader.load_data(f"{service}/{version}/service-2")
        prefixes.add(model["metadata"]["endpointPrefix"])
        out[f"{service}/{version}/service-2.json"] = _dump(_undocumented(model))
    endpoints = loader.load_data("endpoints")
    for partition in endpoints["partitions"]:
        partition["services"] = {name: s for name, s in partition["services"].items() if name in prefixes}
    out["endpoints.json"] = _dump(endpoints)
    return out


def _undocumented(model: dict[str, Any]) -> dict[str, Any]:
    """The model without the documentation of its operations, shapes and their members (where
    botocore only makes docstrings of it); clientContextParams, which botocore reads, kept whole."""

    def strip(node: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in node.items() if key not in _UNDOCUMENTED}

    out = strip(model)
    out["operations"] = {name: strip(operation) for name, operation in model["operations"].items()}
    shapes = {}
    for name, shape in model["shapes"].items():
        shape = strip(shape)
        if "members" in shape:
            shape["members"] = {member: strip(spec) for member, spec in shape["members"].items()}
        shapes[name] = shape
    out["shapes"] = shapes
    return out


def _dump(data: Any) -> str:
    return json.dumps(data, separators=(",", ":")) + "\n"  # in botocore's order: members serialise in it


def main() -> None:
    written = files()
    for old in DATA.rglob("*.json"):
        if str(old.relative_to(DATA)) not in written:
            old.unlink()
    for name, text in written.items():
        (DATA / name).parent.mkdir(parents=True, exist_ok=True)
        (DATA / name).write_text(text)
    print(f"{len(written)} files in {DATA}")


if __name__ == "__main__":
    main()
