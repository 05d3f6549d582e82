"""Stage: render. The one registry of renderers: each turns the Project into {relative path: text}.

A renderer builds a view-model (engine.render.viewmodel) and hands it to a Jinja template shipped in
engine/render/templates. Jinja runs with StrictUndefined (a missing field is an error, never an empty
string) and keep_trailing_newline, so output is byte-stable for the same specs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import jinja2

from engine import escape
from engine.render import viewmodel as vm
from engine.spec import manifest
from engine.spec.model import Project, Schedule


@dataclass(frozen=True)
class RenderContext:
    specs_path: str = "specs"  # the specs folder relative to the project root, POSIX style


RenderFn = Callable[[Project, RenderContext], dict[str, str]]


@dataclass(frozen=True)
class Renderer:
    name: str
    description: str
    render: RenderFn


RENDERERS: dict[str, Renderer] = {}
# Modules that register more renderers on import (kept apart because they are larger).
RENDERER_MODULES = ("engine.render.sharing", "engine.render.alerts", "engine.render.data_tests", "engine.render.lakeview")


def renderer(name: str, description: str) -> Callable[[RenderFn], RenderFn]:
    def register(fn: RenderFn) -> RenderFn:
        RENDERERS[name] = Renderer(name, description, fn)
        return fn

    return register


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("engine.render", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # outputs are Markdown, SQL, YAML and Python: the view-model escapes for each
    )
    # The one rule for text after `--`: where the template writes a line comment, it says so.
    env.filters["sql_comment"] = escape.sql_comment
    return env


def template(name: str) -> jinja2.Template:
    return environment().get_template(name)


def all_renderers() -> dict[str, Renderer]:
    for module in RENDERER_MODULES:
        importlib.import_module(module)
    return dict(sorted(RENDERERS.items()))


def render_all(project: Project, context: RenderContext | None = None) -> dict[str, str]:
    """Every generated file, by path relative to the project root, in sorted order."""
    context = context or RenderContext()
    outputs: dict[str, str] = {}
    owners: dict[str, str] = {}
    for name, entry in all_renderers().items():
        for path, text in entry.render(project, context).items():
            if path in owners:
                raise RuntimeError(f"renderers '{owners[path]}' and '{name}' both produce {path}")
            owners[path] = name
            outputs[path] = text
    return dict(sorted(outputs.items()))


# --- renderers ---------------------------------------------------------------------------------

@renderer("schema_doc", "docs/SCHEMA.md: every table, its lineage, columns, expectations and sharing")
def render_schema_doc(project: Project, _context: RenderContext) -> dict[str, str]:
    return {"docs/SCHEMA.md": template("schema.md.j2").render(doc=vm.schema_doc(project))}


@renderer("bundle", "databricks.yml and generated/resources/*.yml: pipelines and jobs")
def render_bundle(project: Project, context: RenderContext) -> dict[str, str]:
    bundle = vm.bundle_view(project, context.specs_path)
    outputs = {
        "databricks.yml": template("databricks.yml.j2").render(bundle=bundle),
        "generated/resources/tablesmith_pipeline.yml": template("pipeline.yml.j2").render(
            bundle=bundle, key="tablesmith_pipeline", name=f"{bundle.name}_pipeline", schedule=Schedule.PIPELINE.value),
        "generated/resources/tablesmith_refresh_job.yml": template("refresh_job.yml.j2").render(bundle=bundle),
        "generated/resources/tablesmith_daily_job.yml": template("daily_job.yml.j2").render(bundle=bundle),
        "generated/resources/tablesmith_enable_system_schemas_job.yml": template("enable_system_schemas_job.yml.j2").render(bundle=bundle),
    }
    if bundle.has_daily:
        outputs["generated/resources/tablesmith_daily_pipeline.yml"] = template("pipeline.yml.j2").render(
            bundle=bundle, key="tablesmith_daily_pipeline", name=f"{bundle.name}_daily_pipeline", schedule=Schedule.DAILY.value)
    if bundle.has_shares:
        outputs["generated/resources/tablesmith_sharing_setup_job.yml"] = template("sharing_setup_job.yml.j2").render(bundle=bundle)
    return outputs


@renderer("maintenance", "generated/sql/maintenance.sql: OPTIMIZE/VACUUM for tables no pipeline maintains")
def render_maintenance(project: Project, _context: RenderContext) -> dict[str, str]:
    return {"generated/sql/maintenance.sql": template("maintenance.sql.j2").render(maintenance=vm.maintenance_view(project))}


@renderer("manifest", "generated/manifest.json: the validated project the pipeline registers (read without checks)")
def render_manifest(project: Project, context: RenderContext) -> dict[str, str]:
    header = f"{vm.HEADER}: run `tablesmith generate`; the pipeline registers exactly this"
    return {manifest.MANIFEST_PATH: manifest.dumps(project, context.specs_path, comment=header)}


@renderer("system_schemas", "generated/jobs/enable_system_schemas.py: notebook enabling the system schemas tables require")
def render_system_schemas(project: Project, _context: RenderContext) -> dict[str, str]:
    return {"generated/jobs/enable_system_schemas.py": template("enable_system_schemas.py.j2").render(view=vm.system_schemas_view(project))}
