"""The manifests of both overlays, rendered once per session (or read from ``make k8s-render``'s files), and the
compose model they mirror."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.compose import scale_model
from tests.support.kubernetes import OVERLAYS, Pod, pods, rendered


@pytest.fixture(scope="session")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    return rendered(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="session")
def compose(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    """The scale-out stack's resolved compose model, and the secrets it was resolved with."""
    return scale_model(tmp_path_factory.mktemp("compose"))


@pytest.fixture(params=OVERLAYS)
def overlay(
    request: pytest.FixtureRequest, manifests: dict[str, list[dict[str, Any]]]
) -> tuple[str, list[dict[str, Any]]]:
    return request.param, manifests[request.param]


@pytest.fixture(scope="session")
def all_pods(manifests: dict[str, list[dict[str, Any]]]) -> dict[str, list[Pod]]:
    """Each overlay's pods (tests that break one copy it first)."""
    return {name: pods(docs) for name, docs in manifests.items()}


@pytest.fixture
def overlay_pods(overlay: tuple[str, list[dict[str, Any]]], all_pods: dict[str, list[Pod]]) -> list[Pod]:
    return all_pods[overlay[0]]
