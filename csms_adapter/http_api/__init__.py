"""The HTTP side of the controller: dashboard, JSON API with OpenAPI, operator writes, Prometheus metrics."""

from csms_adapter.http_api.auth import OperatorAuth
from csms_adapter.http_api.server import HttpApi, attach_http_api

__all__ = ["HttpApi", "OperatorAuth", "attach_http_api"]
