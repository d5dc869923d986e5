"""The local server: the current release of every model of an environment over HTTP.

    from mlops.runtime.serving import ServedModel, create_app, ServerThread
    app = create_app([ServedModel("fraud-detector", "tabular-classification", registry)], project_root)
    with ServerThread(app) as server:   # a real uvicorn on a free 127.0.0.1 port
        httpx.post(f"{server.url}/v1/models/fraud-detector:predict", json={"instances": [...]})

LLMs speak the OpenAI API (as vLLM does), tabular models KServe's V1 protocol; see `app` for the
routes, `log` for the inference log's records, `mlops.serving_metrics` for the metric names.
torch and transformers are imported only when a version is loaded.
"""

from mlops.runtime.serving.app import ServingApp, create_app
from mlops.runtime.serving.errors import RequestError, ServingError
from mlops.runtime.serving.log import InferenceLog, read_records
from mlops.runtime.serving.server import ServerThread, serve
from mlops.runtime.serving.slots import ServedModel

__all__ = [
    "InferenceLog",
    "RequestError",
    "ServedModel",
    "ServerThread",
    "ServingApp",
    "ServingError",
    "create_app",
    "read_records",
    "serve",
]
