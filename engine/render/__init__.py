"""Stage: render. Specs in, files out: docs/SCHEMA.md, generated/** and databricks.yml.

    outputs = render_all(load_project(Path("specs")))   # {relative path: text}, byte-stable

Renderers live in one registry (engine.render.registry); each builds a small view-model
(engine.render.viewmodel) and fills a template from engine/render/templates. `writer` compares and
writes files atomically; `commands` adds `tablesmith generate` and `tablesmith new`.
"""

from typing import Any

__all__ = ["RenderContext", "render_all"]


def __getattr__(name: str) -> Any:
    # Lazy: the CLI imports this package to register commands; Jinja loads only when rendering.
    if name in __all__:
        from engine.render import registry

        return getattr(registry, name)
    raise AttributeError(name)
