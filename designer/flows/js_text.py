"""The canvas editor's strings used by ``static/editor/editor.js`` (status line, problems, confirmations):
the script looks them up by these keys and fills ``%(name)s`` placeholders; the page hands it the texts in
the reader's language."""

from __future__ import annotations

from designer import display
from designer.i18n import N_, gettext, pgettext

JS_TEXT: dict[str, str] = {
    "saved": N_("Draft saved"), "saving": N_("Saving…"), "save_failed": N_("Saving failed: "),
    "published": N_("Published as v%(version)s"), "publish_failed": N_("Publishing failed: "),
    "publish_blocked": N_("Fix the problems before publishing"), "unsaved": N_("Unsaved changes"),
    "selected": N_("Nodes selected: %(n)s. Move or delete them together."),
    "rollback_confirm": N_("Roll back to v%(version)s? This publishes its content as a new version and replaces "
                           "the draft."),
    "rolled_back": N_("Rolled back: published as v%(version)s"), "problems_n": N_("Problems: %(n)s"),
    "fix": N_("Fix: "), "flow": N_("Flow"), "entered": N_("in"), "waiting": N_("waiting"), "failed": N_("failed"),
    "applied": N_("Applied"), "applying": N_("Applying…"),
    "invalid_fields": N_("Some fields need attention (kept in the draft)"),
    "node_added": N_("Added node %(id)s"), "deleted": N_("Nodes deleted: %(n)s"),
    "no_problems": N_("No problems: ready to publish."),
    "saved_problems": N_("Draft saved (problems left: %(n)s; see Problems)"), "not_applied": N_("Not applied: "),
    "save_blocked": N_("Not saved: the server did not accept the change in the property form."),
    "copied": N_("Nodes copied: %(n)s"), "pasted": N_("Nodes pasted: %(n)s"),
    "pasted_skipped": N_("Nodes pasted: %(n)s; this kind of flow cannot hold: %(types)s"),
    "paste_none": N_("Nothing to paste (the clipboard is empty, or its nodes do not fit this kind of flow)"),
    "menu.copy": N_("Copy"), "menu.cut": N_("Cut"), "menu.duplicate": N_("Duplicate"), "menu.paste": N_("Paste"),
    "menu.delete": N_("Delete"), "menu.select_all": N_("Select all"),
    # a send node's badge: the sending rules that apply to it (designer/policies)
    "pol.badge.cap": N_("cap %(count)s/%(window)s"), "pol.badge.quiet": N_("quiet %(start)s–%(end)s"),
    "pol.badge.exempt": N_("transactional"),
}


def js_text() -> dict[str, str]:
    """The editor's strings in the current language; ``port.<id>``: the label the canvas draws for each port of
    ours (``display.port_label``; a port not listed is drawn as its id)."""
    return {**{key: gettext(text) for key, text in JS_TEXT.items()}, "active": pgettext("flow status", "Active"),
            **{f"port.{port}": display.port_label(port) for port in display.LABELS["port"].entries}}
