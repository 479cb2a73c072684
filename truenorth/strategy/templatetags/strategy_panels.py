"""`{% render_panel panel %}`: render a panel another pillar contributed to a Vision page
(strategy/panels.py), as `{% include %}` would, with the panel's own context pushed on the page's."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from truenorth.strategy.panels import Panel

register = template.Library()


@register.simple_tag(takes_context=True)
def render_panel(context: template.Context, panel: Panel) -> SafeString:
    included = context.template.engine.get_template(panel.template)  # type: ignore[union-attr]
    with context.push(**panel.context):
        return included.render(context)
