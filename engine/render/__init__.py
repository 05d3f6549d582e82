"""Stage: render. Specs in, files out: docs/SCHEMA.md, generated/** and databricks.yml.

    outputs = render_all(load_project(Path("specs")))   # {relative path: text}, byte-stable

Renderers live in one registry (engine.render.registry); each builds a small view-model
(engine.render.viewmodel) and fills a template from engine/render/templates. `writer` compares and
writes files atomically; `generate` renders and writes (or checks) them for `tablesmith generate`,
`scaffold` writes the starter spec of `tablesmith new`.
"""

from typing import Any

__all__ = ["RenderContext", "render_all"]


def __getattr__(name: str) -> Any:
    # Lazy: importing one module (the CLI reads scaffold's choices) loads neither the registry nor Jinja.
    if name in __all__:
        from engine.render import registry

        return getattr(registry, name)
    raise AttributeError(name)
