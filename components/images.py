"""The one place that names the runtime images the components run in.

Component files take their image from here and the local runner maps an image
back to its runtime, so a runtime is renamed or retagged in one line. The
registry prefix can be changed at compile time (``make compile
IMAGE_REGISTRY=...``) without touching code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Runtimes, one per folder under ``images/``.
RUNTIMES = ("data", "feature", "train", "serve", "monitor", "dev")

#: Default registry prefix; images built locally with podman are named so.
DEFAULT_REGISTRY = "localhost/kfp-ct"

#: Image tag; bumped with the project version.
VERSION = "0.1.0"


#: The scikit-learn modules a trained model's pickle needs (train's pipeline: ColumnTransformer with an
#: OrdinalEncoder, then HistGradientBoosting): train imports them to fit it; infra_validate and deploy
#: preload them so the model servers they fork load a model in 0.04 s, not 0.7 s (measured).
MODEL_MODULES = ("sklearn.ensemble", "sklearn.pipeline", "sklearn.compose", "sklearn.preprocessing")

#: What a runtime's programs run with beyond the defaults, in its image (``make images`` passes it as
#: build arguments) and in local runs (tasks, warm servers). The feature runtime runs optimized: Feast
#: decorates its classes with typeguard's ``@typechecked``, which reads, re-parses and recompiles each
#: class's source when Feast is imported (2.0 s of the import's 3.0 s, measured; 1.0 s optimized with
#: byte code compiled so). typeguard documents optimized mode as its off switch
#: (typeguard 4.6.1 ``_decorators.typechecked``: ``if not __debug__: return target``). It also drops
#: ``assert`` statements: the project's code raises on bad input, never asserts (tests/components).
RUNTIME_ENV: dict[str, dict[str, str]] = {"feature": {"PYTHONOPTIMIZE": "1"}}


@dataclass(frozen=True)
class PodSettings:
    """What a step's pod needs on a cluster (kfp.local ignores it); declared in the step's ``component.py``.

    Attributes:
        cpu: (request, limit).
        memory: (request, limit).
        s3: The step's program reaches S3 itself, so its pod gets the S3 endpoint and credentials.
        feature_store: The step opens the Feast repository: its pod gets the repository
            (ConfigMap ``ct-feature-store``), the Redis password and the online store's label.
        preload: The libraries the step's program imports, for local runs: a warm runtime imports
            them once and forks each task from it (``pipelines/local/warm.py``).
    """

    cpu: tuple[str, str]
    memory: tuple[str, str]
    s3: bool = False
    feature_store: bool = False
    preload: tuple[str, ...] = ()


def image(runtime: str, registry: str | None = None) -> str:
    """Returns the image reference of a runtime.

    Args:
        runtime: One of ``RUNTIMES``.
        registry: Registry prefix; defaults to ``$IMAGE_REGISTRY`` or ``DEFAULT_REGISTRY``.

    Returns:
        An image reference such as ``localhost/kfp-ct/data:0.1.0``.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    prefix = registry or os.environ.get("IMAGE_REGISTRY") or DEFAULT_REGISTRY
    return f"{prefix.rstrip('/')}/{runtime}:{VERSION}"


def runtime_env(runtime: str) -> dict[str, str]:
    """Returns the environment variables a runtime's programs run with beyond the defaults (``RUNTIME_ENV``)."""
    return dict(RUNTIME_ENV.get(runtime, {}))


def runtime_of(image_ref: str) -> str:
    """Returns the runtime that an image reference built by ``image()`` belongs to.

    Raises:
        ValueError: The reference names no runtime of this project.
    """
    name = image_ref.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    if name not in RUNTIMES:
        raise ValueError(
            f"image {image_ref!r} is not one of this project's runtimes ({', '.join(RUNTIMES)})"
        )
    return name
