"""The canvas editor's strings used by ``static/editor/editor.js`` (status line, problems, confirmations):
the script looks them up by these keys and fills ``%(name)s`` placeholders; the page hands it the texts in
the reader's language."""

from __future__ import annotations

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
    "applied": N_("Applied"), "invalid_fields": N_("Some fields need attention (kept in the draft)"),
    "node_added": N_("Added node %(id)s"), "deleted": N_("Nodes deleted: %(n)s"),
    "no_problems": N_("No problems: ready to publish."),
}


def js_text() -> dict[str, str]:
    """The editor's strings in the current language."""
    return {**{key: gettext(text) for key, text in JS_TEXT.items()}, "active": pgettext("flow status", "Active")}
