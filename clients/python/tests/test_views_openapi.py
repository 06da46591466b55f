"""Every view dataclass has exactly the properties of the OpenAPI schema it mirrors."""

import dataclasses
from pathlib import Path
from typing import Any, Dict, Set

import pytest
import yaml

from mock_camber.views import SCHEMAS

OPENAPI = Path(__file__).resolve().parents[3] / "mock-camber" / "openapi.yaml"


@pytest.fixture(scope="module")
def schemas() -> Dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]


def properties(schemas: Dict[str, Any], schema: Dict[str, Any]) -> Dict[str, Any]:
    """The properties of a schema, its `$ref`s followed and its `allOf` merged."""
    if "$ref" in schema:
        return properties(schemas, schemas[schema["$ref"].rsplit("/", 1)[1]])
    props = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        props.update(properties(schemas, part))
    return props


def resolve(schemas: Dict[str, Any], path: str) -> Dict[str, Any]:
    """`Name`, `Name.property` or `Name.property[]` (the items of an array property)."""
    name, *rest = path.split(".")
    schema: Dict[str, Any] = schemas[name]
    for part in rest:
        schema = properties(schemas, schema)[part.rstrip("[]")]
        if part.endswith("[]"):
            schema = schema["items"]
    return schema


def required(schemas: Dict[str, Any], schema: Dict[str, Any]) -> Set[str]:
    if "$ref" in schema:
        return required(schemas, schemas[schema["$ref"].rsplit("/", 1)[1]])
    req = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        req |= required(schemas, part)
    return req


@pytest.mark.parametrize("cls", list(SCHEMAS), ids=lambda c: c.__name__)
def test_dataclass_fields_are_the_schema_properties(schemas: Dict[str, Any], cls: type):
    schema = resolve(schemas, SCHEMAS[cls])
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields == set(properties(schemas, schema)), SCHEMAS[cls]


@pytest.mark.parametrize("cls", list(SCHEMAS), ids=lambda c: c.__name__)
def test_required_properties_are_fields_without_a_default(schemas: Dict[str, Any], cls: type):
    schema = resolve(schemas, SCHEMAS[cls])
    no_default = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert required(schemas, schema) <= no_default, SCHEMAS[cls]


def test_the_document_read_is_the_mocks(schemas: Dict[str, Any]):
    assert {"JobView", "Delivery", "Attempt", "AdminJobDetail"} <= set(schemas)
