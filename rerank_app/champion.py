"""The registered version a server serves: the champion alias (or a named version), resolved through MLflow once.

Resolving at start pins what a server answers with: the log and every response name that version, and
`rerank promote` moving the alias takes effect when the server is restarted, never halfway through.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rerank_lib.errors import RerankError
from tasks.config import PipelineConfig
from tasks.mlflow_model import MODEL_ARTIFACT
from tasks.tracking import check_tracking_reachable, redact_uri, resolve_tracking_uri


class ServedModelError(RerankError):
    """The registry has no such model, alias or version, or cannot be reached."""


@dataclass(frozen=True)
class ServedVersion:
    """One registered version, and where its registry lives."""

    name: str
    version: str
    alias: str | None
    tracking_uri: str

    @property
    def uri(self) -> str:
        """The version's `models:/` URI (the version number, not the alias, so a moved alias changes nothing)."""
        return f"models:/{self.name}/{self.version}"

    def describe(self) -> str:
        return f"{self.name} version {self.version}" + (f" (@{self.alias})" if self.alias else "")


def registry_uri(cfg: PipelineConfig, root: Path) -> str:
    """The project's tracking/registry URI, refusing a sqlite file that does not exist (it would be created empty)."""
    uri = resolve_tracking_uri(cfg.tracking.tracking_uri, root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ServedModelError(
            f"No MLflow registry at {uri.removeprefix('sqlite:///')}: run the retraining flow first (`rerank run`)."
        )
    check_tracking_reachable(uri)
    return uri


def resolve_served_version(cfg: PipelineConfig, root: Path, version: str | None = None) -> ServedVersion:
    """``version`` of ``register.registered_model``, or the version its champion alias points at."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = registry_uri(cfg, root)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name, alias = cfg.register.registered_model, cfg.promote.champion_alias
    try:
        if version is None:
            found = client.get_model_version_by_alias(name, alias)
            return ServedVersion(name, str(found.version), alias, uri)
        found = client.get_model_version(name, str(version))
        return ServedVersion(name, str(found.version), None, uri)
    except MlflowException as error:
        wanted = f"version {version}" if version is not None else f"version with alias '{alias}'"
        raise ServedModelError(
            f"Registered model {name} has no {wanted} in {redact_uri(uri)}: run the retraining flow (`rerank run`) "
            f"or promote a version (`rerank promote --version N`). ({error.message})"
        ) from error


def download_model_folder(served: ServedVersion, destination: Path) -> Path:
    """Download the version's pyfunc and return the reranker folder inside it (what `rerank predict` loads)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=served.tracking_uri, registry_uri=served.tracking_uri)
    source = client.get_model_version_download_uri(served.name, served.version)
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source, tracking_uri=served.tracking_uri, dst_path=str(destination)
        )
    )
    artifacts = Model.load(str(local)).flavors["python_function"].get("artifacts", {})
    if MODEL_ARTIFACT not in artifacts:
        raise ServedModelError(f"{served.describe()} holds no '{MODEL_ARTIFACT}' artifact; it was not logged by us.")
    return local / artifacts[MODEL_ARTIFACT]["path"]
