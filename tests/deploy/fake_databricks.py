"""A small in-memory Databricks workspace over HTTP, for `tablesmith deploy` tests.

It serves the few REST endpoints deploy uses, with the request/response JSON of the real API:
responses are built with databricks-sdk's own dataclasses (`ShareInfo(...).as_dict()`), errors
are Databricks error JSON (`{"error_code": ..., "message": ...}`) with the matching HTTP status.
The SDK talks to it through its normal config: `WorkspaceClient(host=fake.url, token="x")`.

    with FakeDatabricks() as fake:
        fake.tables["main.monitoring.t"] = "MANAGED"
        fake.fail("POST", "/api/2.1/unity-catalog/shares", 403, "PERMISSION_DENIED", "no CREATE SHARE")
        ...
        assert fake.writes == []

Bounded: binds 127.0.0.1 on an ephemeral port, daemon threads, 10 s socket timeout, 1 MB bodies.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlparse

from databricks.sdk.service.catalog import (
    GetMetastoreSummaryResponse,
    ListSystemSchemasResponse,
    MetastoreAssignment,
    SystemSchemaInfo,
    TableExistsResponse,
    TableInfo,
    TableType,
)
from databricks.sdk.service.sharing import (
    AuthenticationType,
    GetSharePermissionsResponse,
    ListSharesResponse,
    Privilege,
    PrivilegeAssignment,
    RecipientInfo,
    SharedDataObject,
    ShareInfo,
    UpdateSharePermissionsResponse,
)
from databricks.sdk.service.sql import ServiceError, ServiceErrorCode, StatementResponse, StatementState, StatementStatus

MAX_BODY = 1 << 20
UC = "/api/2.1/unity-catalog"
# Which SharedDataObject.data_object_type fits which TableInfo.table_type.
OBJECT_TYPES_BY_TABLE_TYPE = {
    "MANAGED": ("TABLE",), "EXTERNAL": ("TABLE",), "MANAGED_SHALLOW_CLONE": ("TABLE",), "EXTERNAL_SHALLOW_CLONE": ("TABLE",),
    "STREAMING_TABLE": ("STREAMING_TABLE",),
    "MATERIALIZED_VIEW": ("MATERIALIZED_VIEW",),
    "VIEW": ("VIEW",), "METRIC_VIEW": ("VIEW",),
    "FOREIGN": ("FOREIGN_TABLE",),
}


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


@dataclass
class Failure:
    method: str
    path: re.Pattern
    status: int
    error_code: str
    message: str
    times: int | None  # None: every matching request


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict


class FakeDatabricks:
    def __init__(self, token: str = "x"):
        self.token = token
        self.workspace_id = 1234567890123456
        self.metastore_id = "0a1b2c3d-0000-4000-8000-00000000abcd"
        self.global_metastore_id = f"aws:eu-west-1:{self.metastore_id}"
        # Metastores a recipient may name (their global ids); anything else is rejected as the API does.
        self.known_metastores = {"aws:us-west-2:8d3c8b1e-5a3f-4c1e-9f67-2b1f0c6a7d10"}
        self.system_schemas = {"access": "AVAILABLE", "billing": "ENABLE_COMPLETED", "compute": "AVAILABLE",
                               "lakeflow": "AVAILABLE", "query": "AVAILABLE", "serving": "UNAVAILABLE"}
        # full name -> TableInfo.table_type (MANAGED, EXTERNAL, STREAMING_TABLE, MATERIALIZED_VIEW, VIEW, ...):
        # a share object must name the type the table really has, as the service checks.
        self.tables: dict[str, str] = {}
        self.shares: dict[str, ShareInfo] = {}
        self.recipients: dict[str, RecipientInfo] = {}
        self.permissions: dict[str, dict[str, set[str]]] = {}  # share -> principal -> privileges
        self.warehouses = {"wh1"}
        self.statements: list[str] = []
        self.failing_statements: dict[str, str] = {}  # substring -> error message (state FAILED)
        self.running_polls = 0  # statements report RUNNING this many times before SUCCEEDED
        self.requests: list[Request] = []
        self._failures: list[Failure] = []
        self._polls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- test controls ------------------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int, error_code: str, message: str, times: int | None = None) -> None:
        """Answer requests whose path matches `path` (a regex, anchored) with a Databricks error."""
        self._failures.append(Failure(method, re.compile(path + "$"), status, error_code, message, times))

    @property
    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def reset_log(self) -> None:
        self.requests.clear()

    def share_objects(self, share: str) -> dict[str, SharedDataObject]:
        return {o.name: o for o in self.shares[share].objects or ()}

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeDatabricks":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "FakeDatabricks":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- dispatch -----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: dict, headers) -> tuple[int, dict]:
        if path == "/.well-known/databricks-config":  # the SDK's unauthenticated host probe
            return 200, {"oidc_endpoint": f"{self.url}/oidc", "workspace_id": str(self.workspace_id)}
        with self._lock:
            self.requests.append(Request(method, path, body))
            try:
                if headers.get("Authorization") != f"Bearer {self.token}":
                    # What a workspace answers a bad or missing token.
                    raise ApiError(401, "401", "Credential was not sent or was of an unsupported type for this API.")
                self._injected_failure(method, path)
                for route_method, pattern, fn in self._routes():
                    match = re.fullmatch(pattern, path)
                    if route_method == method and match:
                        return 200, fn(query, body, *map(unquote, match.groups()))
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
            except ApiError as exc:
                return exc.status, {"error_code": exc.error_code, "message": exc.message}

    def _injected_failure(self, method: str, path: str) -> None:
        for failure in self._failures:
            if failure.method == method and failure.path.match(path) and failure.times != 0:
                if failure.times is not None:
                    failure.times -= 1
                raise ApiError(failure.status, failure.error_code, failure.message)

    def _routes(self) -> list[tuple[str, str, Callable[..., dict]]]:
        return [
            ("GET", f"{UC}/current-metastore-assignment", self._current_metastore),
            ("GET", f"{UC}/metastore_summary", self._metastore_summary),
            ("GET", f"{UC}/metastores/([^/]+)/systemschemas", self._list_system_schemas),
            ("PUT", f"{UC}/metastores/([^/]+)/systemschemas/([^/]+)", self._enable_system_schema),
            ("GET", f"{UC}/shares", self._list_shares),
            ("POST", f"{UC}/shares", self._create_share),
            ("GET", f"{UC}/shares/([^/]+)", self._get_share),
            ("PATCH", f"{UC}/shares/([^/]+)", self._update_share),
            ("GET", f"{UC}/shares/([^/]+)/permissions", self._get_permissions),
            ("PATCH", f"{UC}/shares/([^/]+)/permissions", self._update_permissions),
            ("GET", f"{UC}/recipients/([^/]+)", self._get_recipient),
            ("POST", f"{UC}/recipients", self._create_recipient),
            ("GET", f"{UC}/tables/([^/]+)/exists", self._table_exists),
            ("GET", f"{UC}/tables/([^/]+)", self._get_table),
            ("POST", "/api/2.0/sql/statements", self._execute_statement),
            ("GET", "/api/2.0/sql/statements/([^/]+)", self._get_statement),
        ]

    # --- metastore and system schemas ---------------------------------------------------------------

    def _current_metastore(self, query, body) -> dict:
        return MetastoreAssignment(workspace_id=self.workspace_id, metastore_id=self.metastore_id,
                                   default_catalog_name="main").as_dict()

    def _metastore_summary(self, query, body) -> dict:
        return GetMetastoreSummaryResponse(metastore_id=self.metastore_id, global_metastore_id=self.global_metastore_id,
                                           name="fake", cloud="aws", region="eu-west-1").as_dict()

    def _metastore(self, metastore_id: str) -> None:
        if metastore_id != self.metastore_id:
            raise ApiError(404, "METASTORE_DOES_NOT_EXIST", f"Metastore '{metastore_id}' does not exist.")

    def _list_system_schemas(self, query, body, metastore_id) -> dict:
        self._metastore(metastore_id)
        schemas = [SystemSchemaInfo(schema=name, state=state) for name, state in sorted(self.system_schemas.items())]
        return ListSystemSchemasResponse(schemas=schemas).as_dict()

    def _enable_system_schema(self, query, body, metastore_id, schema) -> dict:
        self._metastore(metastore_id)
        state = self.system_schemas.get(schema)
        if state is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"System schema '{schema}' does not exist.")
        if state == "UNAVAILABLE":
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"System schema '{schema}' is not available for enablement.")
        self.system_schemas[schema] = "ENABLE_COMPLETED"
        return {}

    # --- shares -------------------------------------------------------------------------------------

    def _share(self, name: str) -> ShareInfo:
        if name not in self.shares:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Share '{name}' does not exist.")
        return self.shares[name]

    def _list_shares(self, query, body) -> dict:
        return ListSharesResponse(shares=[ShareInfo(name=s.name, comment=s.comment, owner=s.owner)
                                          for s in self.shares.values()]).as_dict()

    def _create_share(self, query, body) -> dict:
        name = body["name"]
        if name in self.shares:
            raise ApiError(409, "SHARE_ALREADY_EXISTS", f"Share '{name}' already exists.")
        self.shares[name] = ShareInfo(name=name, comment=body.get("comment"), owner="deployer@example.com",
                                      created_at=_now(), created_by="deployer@example.com", objects=[])
        self.permissions[name] = {}
        return self.shares[name].as_dict()

    def _get_share(self, query, body, name) -> dict:
        share = self._share(name)
        info = ShareInfo.from_dict(share.as_dict())
        if query.get("include_shared_data", "").lower() != "true":
            info.objects = None
        return info.as_dict()

    def _update_share(self, query, body, name) -> dict:
        share = self._share(name)
        objects = {o.name: o for o in share.objects or ()}
        for update in body.get("updates", ()):
            action, obj = update["action"], SharedDataObject.from_dict(update["data_object"])
            if action == "ADD":
                if obj.name not in self.tables:
                    raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table '{obj.name}' does not exist.")
                self._check_object_type(obj)
                if obj.name in objects:
                    raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"'{obj.name}' is already in share '{name}'.")
                obj.added_at, obj.added_by, obj.status = _now(), "deployer@example.com", None
                obj.shared_as = obj.shared_as or ".".join(obj.name.split(".")[1:])
                objects[obj.name] = obj
            elif action in ("UPDATE", "REMOVE"):
                if obj.name not in objects:
                    raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"'{obj.name}' is not in share '{name}'.")
                if action == "REMOVE":
                    del objects[obj.name]
                else:
                    self._check_object_type(obj)
                    current = objects[obj.name]
                    for field in ("shared_as", "history_data_sharing_status", "comment"):
                        if getattr(obj, field) is not None:
                            setattr(current, field, getattr(obj, field))
            else:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unknown action '{action}'.")
        share.objects = list(objects.values())
        share.updated_at = _now()
        return share.as_dict()

    def _check_object_type(self, obj: SharedDataObject) -> None:
        """The data object type must be the table's real one (an omitted type means TABLE)."""
        actual = self.tables.get(obj.name)
        declared = obj.data_object_type.value if obj.data_object_type else "TABLE"
        if actual is not None and declared not in OBJECT_TYPES_BY_TABLE_TYPE.get(actual, ()):
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"'{obj.name}' is a {actual} and cannot be shared as data object type {declared}.")

    def _get_permissions(self, query, body, name) -> dict:
        self._share(name)
        return GetSharePermissionsResponse(privilege_assignments=self._assignments(name)).as_dict()

    def _update_permissions(self, query, body, name) -> dict:
        self._share(name)
        for change in body.get("changes", ()):
            principal = change["principal"]
            if principal not in self.recipients:
                raise ApiError(404, "RECIPIENT_DOES_NOT_EXIST", f"Recipient '{principal}' does not exist.")
            held = self.permissions[name].setdefault(principal, set())
            held.update(change.get("add", ()))
            held.difference_update(change.get("remove", ()))
        return UpdateSharePermissionsResponse(privilege_assignments=self._assignments(name)).as_dict()

    def _assignments(self, share: str) -> list[PrivilegeAssignment]:
        return [PrivilegeAssignment(principal=p, privileges=[Privilege(x) for x in sorted(privileges)])
                for p, privileges in sorted(self.permissions[share].items()) if privileges]

    # --- recipients ---------------------------------------------------------------------------------

    def _get_recipient(self, query, body, name) -> dict:
        if name not in self.recipients:
            raise ApiError(404, "RECIPIENT_DOES_NOT_EXIST", f"Recipient '{name}' does not exist.")
        return self.recipients[name].as_dict()

    def _create_recipient(self, query, body) -> dict:
        name = body["name"]
        if name in self.recipients:
            raise ApiError(409, "RECIPIENT_ALREADY_EXISTS", f"Recipient '{name}' already exists.")
        if body.get("authentication_type") == "DATABRICKS":
            metastore = body.get("data_recipient_global_metastore_id", "")
            if metastore not in self.known_metastores:
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               f"Invalid sharing identifier '{metastore}': no metastore with this global id.")
        self.recipients[name] = RecipientInfo(
            name=name, authentication_type=AuthenticationType(body["authentication_type"]), comment=body.get("comment"),
            data_recipient_global_metastore_id=body.get("data_recipient_global_metastore_id"),
            owner="deployer@example.com", created_at=_now(), metastore_id=self.metastore_id, activated=True)
        return self.recipients[name].as_dict()

    # --- tables -------------------------------------------------------------------------------------

    def _table_exists(self, query, body, full_name) -> dict:
        return TableExistsResponse(table_exists=full_name in self.tables).as_dict()

    def _get_table(self, query, body, full_name) -> dict:
        if full_name not in self.tables:
            raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table '{full_name}' does not exist.")
        catalog, schema, name = full_name.split(".")
        return TableInfo(full_name=full_name, catalog_name=catalog, schema_name=schema, name=name,
                         table_type=TableType(self.tables[full_name])).as_dict()

    # --- statement execution ------------------------------------------------------------------------

    def _execute_statement(self, query, body) -> dict:
        if body.get("warehouse_id") not in self.warehouses:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Warehouse '{body.get('warehouse_id')}' does not exist.")
        statement = body["statement"]
        self.statements.append(statement)
        statement_id = str(uuid.uuid4())
        for fragment, message in self.failing_statements.items():
            if fragment in statement:
                status = StatementStatus(state=StatementState.FAILED,
                                         error=ServiceError(error_code=ServiceErrorCode.BAD_REQUEST, message=message))
                return StatementResponse(statement_id=statement_id, status=status).as_dict()
        self._polls[statement_id] = self.running_polls
        return self._get_statement(query, body, statement_id)

    def _get_statement(self, query, body, statement_id) -> dict:
        if statement_id not in self._polls:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Statement '{statement_id}' does not exist.")
        remaining = self._polls[statement_id]
        self._polls[statement_id] = max(0, remaining - 1)
        state = StatementState.RUNNING if remaining else StatementState.SUCCEEDED
        return StatementResponse(statement_id=statement_id, status=StatementStatus(state=state)).as_dict()


def _now() -> int:
    return int(time.time() * 1000)


def _handler(fake: FakeDatabricks) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's requests session expects
        timeout = 10

        def _serve(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "body too large"})
                return
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                self._send(400, {"error_code": "MALFORMED_REQUEST", "message": "body is not JSON"})
                return
            query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
            status, payload = fake.handle(self.command, parsed.path, query, body, self.headers)
            self._send(status, payload)

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, *args) -> None:  # quiet: tests read fake.requests instead
            pass

    return Handler
