"""The champion model in memory: loaded once, then followed by polling its alias in the registry.

Requests read :attr:`ModelHolder.model` once and use that object for the whole request, so a swap
(one attribute assignment, made only after the new version has loaded and answered a warm-up
prediction) never mixes two versions in one answer. When MLflow cannot be reached, the last good
model keeps serving and :meth:`ModelHolder.status` says why it could not follow the alias.

A version is loaded only when it is signed by this stack's training and its files are the ones signed
(:meth:`heartrisk.registry.Registry.load` checks before anything is deserialised); otherwise it is
refused. A version with an ONNX export is served by ONNX Runtime, after its probabilities matched the
version's own scikit-learn pipeline on the reference rows. If they differ, the two runtimes of this
machine disagree about that version and nothing tells which one is right, so it is refused too. A
refused version never replaces the model that answers, :meth:`ModelHolder.status` says which version
was refused and why (``/readyz``, a metric), and it is not loaded again until the alias moves. A version
without an export is served by scikit-learn.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from heartrisk import export, signing
from heartrisk.schema import FEATURE_NAMES, VALID_RECORD, as_matrix
from heartrisk.scoring import LoadedModel
from heartrisk.settings import Settings

if TYPE_CHECKING:
    from heartrisk.registry import StoredModel
    from heartrisk.tracking import TrainingInProgress

log = logging.getLogger(__name__)
RUNTIMES_DISAGREE = "runtimes_disagree"  # the refusal kind of a version whose ONNX export disagrees here


@dataclass(frozen=True)
class Refusal:
    """A version the holder will not serve: ``kind`` in one word (a metric label), ``reason`` in a sentence."""

    model: str
    version: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.model} version {self.version} refused: {self.reason}"


class Refused(Exception):
    """A version that must not serve: untrusted (:mod:`heartrisk.signing`), or its runtimes disagree here."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class Source(Protocol):
    """Where the holder finds the champion: :class:`heartrisk.registry.Registry` (tests pass a fake)."""

    def champion_version(self) -> str | None: ...
    def load(self, version: str) -> StoredModel: ...
    def training(self) -> TrainingInProgress | None: ...


@dataclass(frozen=True)
class HolderStatus:
    """What /readyz reports."""

    model: LoadedModel | None
    problem: str
    mlflow_reachable: bool
    checked_at: float | None
    tracking_uri: str
    training: TrainingInProgress | None = None
    refused: Refusal | None = None  # the version the alias points to, when it was refused
    alias_version: str | None = None  # what the alias pointed to at the last lookup that reached MLflow


class ModelHolder:
    """Holds the current champion and follows its alias in a background thread."""

    def __init__(
        self,
        settings: Settings,
        source: Source | None = None,
        queued: Callable[[], TrainingInProgress | None] | None = None,
    ) -> None:
        """``source`` defaults to the MLflow registry, and then ``queued`` to asking Prefect for a training
        that has not reached MLflow yet (:mod:`heartrisk.serving.flow_runs`)."""
        self.settings = settings
        self._source = source
        self._queued = queued
        self._model: LoadedModel | None = None
        self._problem = "the model has not been looked up yet"
        self._reachable = False
        self._checked_at: float | None = None
        self._training: TrainingInProgress | None = None
        self._alias_version: str | None = None
        self._refused: dict[str, Refusal] = {}  # version -> why it was refused
        self._refusal: Refusal | None = None  # of the version the alias points to
        self._reference: np.ndarray | None = None
        self._refresh_lock = threading.Lock()
        self._listeners: list[Callable[[LoadedModel | None, LoadedModel], None]] = []
        self._refusal_listeners: list[Callable[[Refusal | None, Refusal | None], None]] = []
        self._poll_listeners: list[Callable[[HolderStatus], None]] = []
        self._stop = threading.Event()
        self._first_check = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    def status(self) -> HolderStatus:
        uri = self.settings.mlflow.tracking_uri
        return HolderStatus(self._model, self._problem, self._reachable, self._checked_at, uri, self._training,
                            self._refusal, self._alias_version)  # fmt: skip

    def subscribe(self, listener: Callable[[LoadedModel | None, LoadedModel], None]) -> None:
        """Call ``listener(old, new)`` after each swap (and now, if a model is already loaded)."""
        self._listeners.append(listener)
        if self._model is not None:
            listener(None, self._model)

    def subscribe_refusals(self, listener: Callable[[Refusal | None, Refusal | None], None]) -> None:
        """Call ``listener(old, new)`` when the refusal of the version the alias points to changes."""
        self._refusal_listeners.append(listener)

    def subscribe_polls(self, listener: Callable[[HolderStatus], None]) -> None:
        """Call ``listener(status)`` after each lookup of the alias, whether it reached MLflow or not."""
        self._poll_listeners.append(listener)

    def _refuse(self, refusal: Refusal | None) -> None:
        old, self._refusal = self._refusal, refusal
        if old != refusal:
            for listener in self._refusal_listeners:
                listener(old, refusal)

    def install(self, model: LoadedModel) -> None:
        """Make ``model`` the one that answers; requests already running keep the one they read."""
        old, self._model = self._model, model
        for listener in self._listeners:
            listener(old, model)

    def refresh(self) -> None:
        """Look up the alias once; load and swap in a new version. Never raises."""
        with self._refresh_lock:
            reachable, self._problem = self._refresh()
            self._log_reachability(reachable)
            self._reachable, self._checked_at = reachable, time.time()
        for listener in self._poll_listeners:
            listener(self.status())

    def _refresh(self) -> tuple[bool, str]:
        """(MLflow reachable, problem or "")."""
        name, uri = self.settings.mlflow.model_name, self.settings.mlflow.tracking_uri
        try:
            if self._source is None:
                from heartrisk.registry import Registry
                from heartrisk.serving.flow_runs import queued_training

                self._source = Registry.of(self.settings.mlflow)
                self._queued = self._queued or (lambda: queued_training(self.settings.prefect))
            version = self._source.champion_version()
        except Exception as exc:  # any failure to reach the registry is reported, not raised
            log.debug("MLflow unreachable at %s: %s", uri, exc)
            return False, f"MLflow is unreachable at {uri}: {_short(exc)}"
        self._alias_version = version
        self._refuse(self._refused.get(version) if version is not None else None)
        if version is None:
            self._training = self._training_in_progress()
            return True, f"no model {name!r} with alias {self.settings.mlflow.champion_alias!r} in MLflow yet"
        self._training = None
        current = self._model
        if current is not None and current.version == version:
            return True, ""
        if version in self._refused:
            return True, str(self._refused[version])
        try:
            candidate = self._load(version)
        except Refused as exc:
            log.error("%s", exc)
            self._refused[version] = exc.refusal
            self._refuse(exc.refusal)
            return True, str(exc)
        except signing.KeyMissing as exc:  # this host's setup, not the version's fault: tried again at each poll
            problem = f"cannot check {name} version {version}: {exc}"
            if problem != self._problem:
                log.warning("%s", problem)
            return True, problem
        except Exception as exc:  # a broken version must not replace a working one
            log.exception("could not load %s version %s", name, version)
            return True, f"could not load {name} version {version}: {_short(exc)}"
        self.install(candidate)
        log.info(
            "now serving %s version %s with %s (was %s): %s",
            *(name, version, candidate.runtime, current.version if current else "none", candidate.runtime_note),
        )
        return True, ""

    def _log_reachability(self, reachable: bool) -> None:
        """One line when MLflow goes away or comes back, not one per poll (the status says it every time)."""
        uri = self.settings.mlflow.tracking_uri
        if reachable and not self._reachable and self._checked_at is not None:
            log.info("MLflow at %s answers", uri)
        elif not reachable and self._reachable:
            log.warning(
                "MLflow unreachable at %s (%s); serving the last good model until it answers", uri, self._problem
            )
        elif not reachable and self._checked_at is None:
            log.info("waiting for MLflow at %s (it may still be starting)", uri)

    def _load(self, version: str) -> LoadedModel:
        """The version, answering through ONNX Runtime when its export passes the check here, and warmed up."""
        name = self.settings.mlflow.model_name
        try:
            stored = self._source.load(version)
        except signing.Untrusted as exc:
            raise Refused(Refusal(name, version, exc.kind, exc.reason)) from exc
        model = LoadedModel.of(name, version, stored.pipeline, stored.export_note)
        if stored.graph is not None:
            model = self._with_onnx(model, export.OnnxModel(stored.graph))
        model.predict(as_matrix([VALID_RECORD]))
        return model

    def _with_onnx(self, model: LoadedModel, onnx: export.OnnxModel) -> LoadedModel:
        """``model`` answered by ``onnx`` once both runtimes agree on the reference rows; else :class:`Refused`."""
        try:
            rows = self._reference_rows()
        except Exception as exc:  # cannot check, so the export is not used; scikit-learn answers
            log.warning(
                "reference rows unreadable, %s version %s served by scikit-learn: %s", model.name, model.version, exc
            )
            return dataclasses.replace(model, runtime_note=f"ONNX export not checked, so not used: {_short(exc)}")
        difference = export.max_difference(onnx, model.pipeline, rows)
        if not difference <= export.TOLERANCE:
            reason = (
                f"its ONNX export differs from its scikit-learn pipeline by up to {difference:.1e} "
                f"on {len(rows)} reference rows (tolerance {export.TOLERANCE:.0e})"
            )
            raise Refused(Refusal(model.name, model.version, RUNTIMES_DISAGREE, reason))
        note = f"ONNX export matches scikit-learn on {len(rows)} reference rows (largest difference {difference:.1e})"
        return dataclasses.replace(model, onnx=onnx, runtime_note=note)

    def _reference_rows(self) -> np.ndarray:
        """The reference data's features (read once) and the warm-up record, in schema order."""
        if self._reference is None:
            from heartrisk.data import load_csv

            frame = load_csv(self.settings.reference_path, require_target=False)
            self._reference = np.vstack([frame[list(FEATURE_NAMES)].to_numpy(float), as_matrix([VALID_RECORD])])
        return self._reference

    def _training_in_progress(self) -> TrainingInProgress | None:
        """A training MLflow shows, else one queued or started before its MLflow run began (``queued``)."""
        for look in (self._source.training, self._queued):
            try:
                found = look() if look is not None else None
            except Exception as exc:  # advice only: a failed lookup must not fail the refresh
                log.debug("could not look for a training run: %s", exc)
                continue
            if found is not None:
                return found
        return None

    def start(self) -> None:
        """Start following the alias: a first lookup at once, then one every ``model_poll_seconds``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="model-holder", daemon=True)
        self._thread.start()

    def wait_first_check(self, timeout: float) -> bool:
        """True once the first lookup (successful or not) has finished."""
        return self._first_check.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _follow(self) -> None:
        self.refresh()
        self._first_check.set()
        while not self._stop.wait(self.settings.app.model_poll_seconds):
            self.refresh()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"
