"""The body a webhook receives, per format, built from one event (no Django).

- "json": the event itself (see `event_payload` in services/webhooks.py).
- "slack": a Slack incoming-webhook message, `{"text": ..., "blocks": [...]}` (the text is the fallback
  shown in notifications).
- "teams": a Microsoft Teams incoming-webhook message carrying an Adaptive Card attachment (what Teams
  workflows and the classic connectors both accept).
"""

from __future__ import annotations

from typing import Any

MAX_CHANGES_SHOWN = 8
MAX_VALUE_LENGTH = 200


def _short(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {v}" for k, v in value.items())
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 1] + "…"


def headline(event: dict[str, Any]) -> str:
    """One line for people: "ada@example.com updated goal “Grow revenue” (goal.updated)"."""
    obj = event.get("object") or {}
    title = obj.get("title") or ""
    kind = str(event.get("event", ""))
    if kind == "test":
        return "Test event from TrueNorth: this webhook is set up."
    actor = event.get("actor") or "TrueNorth"
    noun = str(obj.get("type") or kind.split(".", 1)[0]).replace("_", " ")
    verb = kind.split(".", 1)[1] if "." in kind else str(event.get("action", ""))
    what = f"{noun} “{title}”" if title else noun
    return f"{actor} {verb.replace('_', ' ')} {what} ({kind})"


def change_lines(event: dict[str, Any]) -> list[str]:
    changes = event.get("changes") or {}
    lines = []
    for name, change in list(changes.items())[:MAX_CHANGES_SHOWN]:
        if isinstance(change, dict) and ("old" in change or "new" in change):
            old, new = change.get("old"), change.get("new")
            lines.append(
                f"{name}: {_short(new)}" if old is None else f"{name}: {_short(old)} → {_short(new)}"
            )
        else:
            lines.append(f"{name}: {_short(change)}")
    if len(changes) > MAX_CHANGES_SHOWN:
        lines.append(f"… and {len(changes) - MAX_CHANGES_SHOWN} more")
    return lines


def _context(event: dict[str, Any]) -> str:
    org = (event.get("organisation") or {}).get("name") or ""
    return f"{org} · {event.get('occurred_at', '')}".strip(" ·")


def slack(event: dict[str, Any]) -> dict[str, Any]:
    text = headline(event)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape_slack(text)}}
    ]
    lines = change_lines(event)
    if lines:
        body = "\n".join(f"• {_escape_slack(line)}" for line in lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
    link = event.get("link")
    context: list[dict[str, Any]] = [
        {"type": "mrkdwn", "text": _escape_slack(_context(event)) or "TrueNorth"}
    ]
    if link:
        context.append({"type": "mrkdwn", "text": f"<{link}|Open in TrueNorth>"})
    blocks.append({"type": "context", "elements": context})
    return {"text": text, "blocks": blocks}


def _escape_slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams(event: dict[str, Any]) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": headline(event), "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": _context(event), "isSubtle": True, "spacing": "None", "wrap": True},
    ]
    facts = []
    for line in change_lines(event):
        name, _, value = line.partition(": ")
        facts.append({"title": name, "value": value})
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    link = event.get("link")
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in TrueNorth", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def render(fmt: str, event: dict[str, Any]) -> dict[str, Any]:
    if fmt == "slack":
        return slack(event)
    if fmt == "teams":
        return teams(event)
    return event
