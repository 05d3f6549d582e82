"""Stage: deploy. The only module importing databricks.sdk: read a workspace's state, apply changes.

Every SDK call runs inside `Workspace.api(...)`, the one place where `databricks.sdk.errors`
exceptions become one-line `UserError`s that say what failed and which privilege it needs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import time
import urllib.parse
from contextlib import contextmanager
from typing import Iterator

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import BadRequest, DatabricksError, NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service.sharing import (
    AuthenticationType,
    PermissionsChange,
    SharedDataObject,
    SharedDataObjectDataObjectType,
    SharedDataObjectHistoryDataSharingStatus,
    SharedDataObjectUpdate,
    SharedDataObjectUpdateAction,
)
from databricks.sdk.service.sql import ExecuteStatementRequestOnWaitTimeout, StatementState

from engine import __version__
from engine.deploy.plan import ActualObject, Change, Kind, ProviderDesired, ProviderState, SharedObjectSpec
from engine.deploy.system_schemas import state_name
from engine.deploy.targets import Target
from engine.errors import UserError
from engine.spec.outbound import url_problem

STATEMENT_WAIT = "30s"  # the API's synchronous wait (5-50 s); longer statements are polled
STATEMENT_DEADLINE_SECONDS = 600.0
POLL_SECONDS = 2.0
_MAX_MESSAGE = 300

HTTP_TIMEOUT_SECONDS = 10
RETRY_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5

# Privileges named in permission errors, by what was being done.
ADMIN = "a metastore admin or account admin"
SHARE_OWNER = "ownership of the share (or USE SHARE and SET SHARE PERMISSION on the metastore)"


def _one_line(text: object) -> str:
    line = re.sub(r"\s+", " ", str(text)).strip()
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


def _refuse_unsafe_host(target: Target, host: str) -> None:
    problem = url_problem(host) if host else None
    if problem:  # a token must never travel in clear text, nor to a metadata address
        raise UserError(f"refusing to connect to {host} (target {target.name}): the host {problem}")


def _probe(target: Target) -> None:
    """One TCP connection before any API call: an unreachable host is one clear error, at once."""
    parts = urllib.parse.urlsplit(target.host or "")
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot reach {target.host} (target {target.name}): {reason}; check the host and the network") from None


class Workspace:
    def __init__(self, target: Target, client: WorkspaceClient):
        self.target = target
        self.w = client
        self._metastore_id: str | None = None

    @classmethod
    def connect(cls, target: Target, *, quiet: bool = True) -> "Workspace":
        if quiet:
            # The SDK logs config probes as warnings; a CLI shows its own one-line errors instead.
            logging.getLogger("databricks.sdk").addHandler(logging.NullHandler())
            logging.getLogger("databricks.sdk").propagate = False
        _refuse_unsafe_host(target, target.host or os.environ.get("DATABRICKS_HOST", ""))  # before the SDK's first request
        if target.host:
            _probe(target)  # the SDK's Config may already call the host (retrying for seconds): probe first
        try:
            # Bounded: an unreachable host fails in seconds, not after the SDK's 5-minute retries.
            config = Config(host=target.host, profile=target.profile, product="tablesmith", product_version=__version__,
                            http_timeout_seconds=HTTP_TIMEOUT_SECONDS, retry_timeout_seconds=RETRY_TIMEOUT_SECONDS)
        except ValueError as exc:  # the SDK's "no credentials" / "no such profile" errors
            first = re.split(r"\. |, please ", _one_line(exc))[0]  # drop the SDK's docs link and config dump
            raise UserError(f"not authenticated: no usable Databricks credentials for target {target.name} ({target.where}): "
                            f"{first}; {cls._login_hint(target)}") from None
        _refuse_unsafe_host(target, config.host or "")  # the host a profile named
        if config.host != target.host:  # a profile or the environment named the host
            target = dataclasses.replace(target, host=config.host)
            _probe(target)
        return cls(target, WorkspaceClient(config=config))

    @staticmethod
    def _login_hint(target: Target) -> str:
        profile = f" --profile {target.profile}" if target.profile else ""
        host = f" --host {target.host}" if target.host else ""
        return f"run `databricks auth login{host}{profile}` or set a token in ~/.databrickscfg"

    @contextmanager
    def api(self, doing: str, *, privilege: str = "", not_found: str = "", bad_value: str = "") -> Iterator[None]:
        """The one place SDK errors become one-line messages (exit 2, no traceback)."""
        try:
            yield
        except Unauthenticated as exc:
            raise UserError(f"not authenticated to {self.target.where} (target {self.target.name}): {_one_line(exc)}; "
                            f"{self._login_hint(self.target)}") from None
        except PermissionDenied as exc:
            needs = f": needs {privilege}" if privilege else ""
            raise UserError(f"permission denied {doing}{needs} ({_one_line(exc)})") from None
        except NotFound as exc:  # also ResourceDoesNotExist
            message = not_found.format(message=_one_line(exc)) if not_found else f"{doing}: not found ({_one_line(exc)})"
            raise UserError(message) from None
        except BadRequest as exc:  # also InvalidParameterValue, InvalidState
            raise UserError(bad_value.format(message=_one_line(exc)) if bad_value else f"{doing} failed: {_one_line(exc)}") from None
        except DatabricksError as exc:
            code = f"{exc.error_code}: " if exc.error_code else ""
            raise UserError(f"{doing} failed: {code}{_one_line(exc)}") from None
        except (requests.RequestException, TimeoutError) as exc:
            raise UserError(f"cannot reach {self.target.where} (target {self.target.name}) while {doing}: {_one_line(exc)}") from None
        except (OSError, ValueError) as exc:  # credential providers failing at request time (expired CLI/OAuth token)
            raise UserError(f"not authenticated to {self.target.where} (target {self.target.name}): {_one_line(exc)}; "
                            f"{self._login_hint(self.target)}") from None

    # --- reading ----------------------------------------------------------------------------------

    def check_access(self) -> str:
        """One cheap authenticated call: the id of the metastore the workspace is attached to."""
        return self.metastore_id

    @property
    def metastore_id(self) -> str:
        if self._metastore_id is None:
            with self.api("reading the workspace's metastore", privilege="access to the workspace",
                          not_found="this workspace has no Unity Catalog metastore assigned ({message})"):
                self._metastore_id = self.w.metastores.current().metastore_id
        return self._metastore_id

    def provider_state(self, desired: ProviderDesired) -> ProviderState:
        metastore_id = self.metastore_id
        with self.api("listing system schemas", privilege=ADMIN):
            schemas = {s.schema: state_name(s.state) for s in self.w.system_schemas.list(metastore_id)}
        shares = {}
        grants = set()
        for share, _comment in desired.shares:
            objects = self._share_objects(share)
            if objects is not None:
                shares[share] = objects
                grants.update((share, principal) for principal in self._select_grantees(share))
        recipients = {}
        for recipient in desired.recipients:
            identifier = self._recipient_identifier(recipient.name)
            if identifier is not None:
                recipients[recipient.name] = identifier
        missing = frozenset(name for name in sorted({o.name for o in desired.objects}) if not self._table_exists(name))
        return ProviderState(schemas, shares, recipients, frozenset(grants), missing)

    def _share_objects(self, share: str) -> tuple[ActualObject, ...] | None:
        with self.api(f"reading share {share}", privilege="USE SHARE on the metastore (or ownership of the share)"):
            try:
                info = self.w.shares.get(share, include_shared_data=True)
            except NotFound:
                return None
        return tuple(
            ActualObject(
                name=o.name,
                data_object_type=o.data_object_type.value if o.data_object_type else "TABLE",
                shared_as=o.shared_as,
                history=None if o.history_data_sharing_status is None
                else o.history_data_sharing_status is SharedDataObjectHistoryDataSharingStatus.ENABLED,
                comment=o.comment or "",
            )
            for o in info.objects or ()
        )

    def _select_grantees(self, share: str) -> set[str]:
        principals: set[str] = set()
        token = None
        with self.api(f"reading the permissions of share {share}", privilege=SHARE_OWNER):
            while True:
                response = self.w.shares.share_permissions(share, max_results=0, page_token=token)
                for assignment in response.privilege_assignments or ():
                    if any(p.value in ("SELECT", "ALL_PRIVILEGES") for p in assignment.privileges or ()):
                        principals.add(assignment.principal)
                token = response.next_page_token
                if not token:
                    return principals

    def _recipient_identifier(self, name: str) -> str | None:
        with self.api(f"reading recipient {name}", privilege="USE RECIPIENT on the metastore (or ownership of the recipient)"):
            try:
                return self.w.recipients.get(name).data_recipient_global_metastore_id or ""
            except NotFound:
                return None

    def _table_exists(self, full_name: str) -> bool:
        with self.api(f"checking that table {full_name} exists",
                      privilege=f"USE CATALOG and USE SCHEMA on {full_name.rsplit('.', 1)[0]} and SELECT on the table"):
            try:
                return bool(self.w.tables.exists(full_name).table_exists)
            except NotFound:  # the catalog or schema is missing too
                return False

    # --- writing ----------------------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        if change.kind is Kind.KEEP:
            return
        getattr(self, "_" + change.kind.value)(change)

    def _enable_schema(self, change: Change) -> None:
        schema = change.subject
        with self.api(f"enabling system schema {schema}", privilege=ADMIN,
                      bad_value=f"system schema {schema} cannot be enabled: {{message}}",
                      not_found=f"system schema {schema} cannot be enabled: {{message}}"):
            self.w.system_schemas.enable(self.metastore_id, schema)

    def _create_share(self, change: Change) -> None:
        with self.api(f"creating share {change.subject}", privilege="CREATE SHARE on the metastore"):
            self.w.shares.create(change.subject, comment=change.comment or None)

    def _add_object(self, change: Change) -> None:
        self._update_share(change, SharedDataObjectUpdateAction.ADD)

    def _update_object(self, change: Change) -> None:
        self._update_share(change, SharedDataObjectUpdateAction.UPDATE)

    def _remove_object(self, change: Change) -> None:
        self._update_share(change, SharedDataObjectUpdateAction.REMOVE)

    def _update_share(self, change: Change, action: SharedDataObjectUpdateAction) -> None:
        obj = change.obj
        assert obj is not None
        data_object = _data_object(obj, full=action is not SharedDataObjectUpdateAction.REMOVE)
        missing = f"table {obj.name} does not exist: run the pipeline first" if action is SharedDataObjectUpdateAction.ADD else ""
        with self.api(f"updating share {change.subject} ({action.value.lower()} {obj.name})",
                      privilege=f"ownership of share {change.subject} and SELECT on {obj.name}", not_found=missing):
            self.w.shares.update(change.subject, updates=[SharedDataObjectUpdate(action=action, data_object=data_object)])

    def _create_recipient(self, change: Change) -> None:
        r = change.recipient
        assert r is not None
        rejected = (f"recipient {r.name}: sharing identifier {r.sharing_identifier} was not accepted ({{message}}); "
                    f"use the central metastore's global id: SELECT CURRENT_METASTORE() in the central workspace")
        with self.api(f"creating recipient {r.name}", privilege="CREATE RECIPIENT on the metastore",
                      bad_value=rejected, not_found=rejected):
            self.w.recipients.create(r.name, authentication_type=AuthenticationType.DATABRICKS,
                                     data_recipient_global_metastore_id=r.sharing_identifier, comment=r.comment or None)

    def _grant(self, change: Change) -> None:
        recipient = change.recipient.name if change.recipient else ""
        with self.api(f"granting SELECT on share {change.subject} to {recipient}",
                      privilege=f"{SHARE_OWNER} and ownership of recipient {recipient}"):
            self.w.shares.update_permissions(change.subject, changes=[PermissionsChange(principal=recipient, add=["SELECT"])])

    def _run_sql(self, change: Change) -> None:
        warehouse = self.target.warehouse_id
        if not warehouse:
            raise UserError(f"target {self.target.name} has no warehouse_id: "
                            "set it under targets in specs/project.yaml or pass --warehouse-id")
        first = change.subject.strip().splitlines()[0]
        with self.api(f"running SQL on warehouse {warehouse}", privilege="CAN USE on the SQL warehouse",
                      not_found=f"SQL warehouse {warehouse} not found ({{message}})"):
            response = self.w.statement_execution.execute_statement(
                statement=change.subject, warehouse_id=warehouse, wait_timeout=STATEMENT_WAIT,
                on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE)
            deadline = time.monotonic() + STATEMENT_DEADLINE_SECONDS
            while response.status and response.status.state in (StatementState.PENDING, StatementState.RUNNING):
                if time.monotonic() > deadline:
                    self.w.statement_execution.cancel_execution(response.statement_id)
                    raise UserError(f"statement still running after {STATEMENT_DEADLINE_SECONDS:.0f}s, cancelled: {first}")
                time.sleep(POLL_SECONDS)
                response = self.w.statement_execution.get_statement(response.statement_id)
        state = response.status.state if response.status else None
        if state is not StatementState.SUCCEEDED:
            error = response.status.error if response.status else None
            reason = _one_line(error.message) if error and error.message else f"state {state.value if state else 'unknown'}"
            raise UserError(f"statement failed on warehouse {warehouse}: {reason} (statement: {first})")


def _data_object(obj: SharedObjectSpec, *, full: bool) -> SharedDataObject:
    kind = SharedDataObjectDataObjectType.__members__.get(obj.data_object_type)
    if not full:
        return SharedDataObject(name=obj.name, data_object_type=kind)
    status = SharedDataObjectHistoryDataSharingStatus
    history = None if obj.history is None else status.ENABLED if obj.history else status.DISABLED
    return SharedDataObject(name=obj.name, data_object_type=kind, shared_as=obj.shared_as,
                            history_data_sharing_status=history, comment=obj.comment or None)
