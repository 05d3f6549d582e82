"""One rule for system schema states: `tablesmith deploy plan` and the enable-system-schemas job agree.

The job is the notebook the generator renders, run in a subprocess against the in-memory workspace
(fake_databricks.py, real databricks-sdk client) from a copy of the bundle (engine/ + the notebook),
with the editable install hidden: it finds the rule in the synced bundle root, as on Databricks.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from databricks.sdk.service.catalog import SystemSchemaInfo

from engine.deploy.plan import Kind, ProviderDesired, ProviderState, provider_plan
from engine.deploy.system_schemas import DOCUMENTED_STATES, Action, decide
from engine.errors import UserError
from engine.render.registry import RenderContext, render_system_schemas, template
from engine.render.viewmodel import HEADER, SystemSchemasView
from engine.spec import load_project
from tests.deploy.fake_databricks import FakeDatabricks
from tests.synced_bundle import HIDE_INSTALLED_ENGINE, copy_bundle

ROOT = Path(__file__).resolve().parents[2]
ABSENT = None  # the metastore does not list the schema

# Every state a metastore can report, the SDK's documented ones first (test below), then the
# empty string (documented as "available"), a schema the metastore does not list, and a state
# this engine has never seen.
CASES = {
    "ENABLE_COMPLETED": Action.KEEP,
    "MANAGED": Action.KEEP,
    "ENABLE_INITIALIZED": Action.KEEP,
    "AVAILABLE": Action.ENABLE,
    "DISABLE_INITIALIZED": Action.ENABLE,
    "UNAVAILABLE": Action.FAIL,
    "": Action.ENABLE,
    ABSENT: Action.FAIL,
    "SOMETHING_NEW": Action.FAIL,
}


def _schema(state) -> str:
    return "s_" + ("absent" if state is None else (state.lower() or "empty"))


def test_the_rule_covers_exactly_the_states_the_sdk_documents():
    text = " ".join(inspect.getsource(SystemSchemaInfo).split())
    listed = re.search(r"Possible values: ([A-Z_ |]+[A-Z_])", text)
    assert listed, "databricks-sdk no longer documents SystemSchemaInfo.state values"
    assert {s.strip() for s in listed.group(1).split("|")} == DOCUMENTED_STATES
    assert "An empty string means the system schema is available" in text
    assert DOCUMENTED_STATES <= {s for s in CASES if s}


@pytest.mark.parametrize("state", list(CASES), ids=[_schema(s) for s in CASES])
def test_decision(state):
    assert decide("x", state).action is CASES[state]


def test_an_enum_state_from_another_sdk_version_reads_the_same():
    class Legacy:  # older SDKs returned SystemSchemaInfoState members
        value = "MANAGED"

    assert decide("x", Legacy()).action is Action.KEEP and decide("x", Legacy()).state == "MANAGED"


def _plan_action(schema: str, listed: dict[str, str]) -> Action:
    desired = ProviderDesired(system_schemas=(schema,), shares=(), objects=(), recipients=(), grants=())
    actual = ProviderState(system_schemas=listed, shares={}, recipients={}, grants=frozenset(), missing_tables=frozenset())
    try:
        [step] = provider_plan("t", desired, actual).steps
    except UserError:
        return Action.FAIL
    return Action.ENABLE if step.kind is Kind.ENABLE_SCHEMA else Action.KEEP


@pytest.fixture
def bundle(tmp_path) -> Path:
    """What the bundle syncs that the job needs: engine/ and the rendered notebook."""
    root = copy_bundle(tmp_path / "bundle", generated=False)
    schemas = tuple(_schema(s) for s in CASES)
    notebook = template("enable_system_schemas.py.j2").render(view=SystemSchemasView(HEADER, repr(schemas)))
    (root / "generated" / "jobs").mkdir(parents=True)
    (root / "generated" / "jobs" / "enable_system_schemas.py").write_text(notebook)
    return root


# Runs the notebook as a job would: cwd = its folder, no installed `engine` (editable finder removed).
RUN_JOB = HIDE_INSTALLED_ENGINE + """
import runpy
try:
    runpy.run_path("enable_system_schemas.py", run_name="__main__")
finally:
    print("ENGINE_FROM", sys.modules["engine"].__file__ if "engine" in sys.modules else None)
"""


def test_the_job_and_deploy_plan_agree_on_every_state(bundle, tmp_path):
    listed = {_schema(s): s for s in CASES if s is not ABSENT}
    with FakeDatabricks() as fake:
        fake.system_schemas = dict(listed)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "GOOGLE_"))}
        env.update(DATABRICKS_HOST=fake.url, DATABRICKS_TOKEN=fake.token, HOME=str(tmp_path),
                   DATABRICKS_CONFIG_FILE=str(tmp_path / "none"), PYTHONPATH="")
        job = subprocess.run([sys.executable, "-c", RUN_JOB], cwd=bundle / "generated" / "jobs", env=env,
                             capture_output=True, text=True, timeout=120)
        enabled = {w.path.rsplit("/", 1)[-1] for w in fake.writes if w.method == "PUT"}
    assert f"ENGINE_FROM {bundle / 'engine' / '__init__.py'}" in job.stdout, job.stdout + job.stderr
    lines = {line.split("system.")[1].split(":")[0].split(" ")[0]: line for line in job.stdout.splitlines() if "system." in line}

    job_actions = {}
    for state in CASES:
        schema = _schema(state)
        line = lines[schema]
        if line.startswith("left alone"):
            job_actions[schema] = Action.KEEP
        elif line.startswith("enabled"):
            job_actions[schema] = Action.ENABLE
        else:
            job_actions[schema] = Action.FAIL
        assert (schema in enabled) == (job_actions[schema] is Action.ENABLE), line

    plan_actions = {_schema(s): _plan_action(_schema(s), listed) for s in CASES}
    assert job_actions == plan_actions == {_schema(s): action for s, action in CASES.items()}
    # The task reports every schema, then fails naming the ones that cannot be enabled.
    assert job.returncode != 0
    failed = re.search(r"RuntimeError: could not enable: (.*)", job.stderr).group(1)
    assert sorted(re.findall(r"system\.(\w+):", failed)) == sorted(_schema(s) for s, a in CASES.items() if a is Action.FAIL)


def test_the_generated_job_is_this_template():
    """The notebook deployed is the template tested above, and holds no second copy of the rule."""
    [(path, text)] = render_system_schemas(load_project(ROOT / "specs"), RenderContext()).items()
    assert (ROOT / path).read_text() == text
    assert "from engine.deploy.system_schemas import Action, decide, state_name" in text
    assert not [state for state in DOCUMENTED_STATES if state in text]
