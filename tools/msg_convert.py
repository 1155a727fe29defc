"""Turn the English messages of error constructors into ``Msg`` templates, so pages (and the API, when asked)
can show them translated:

    raise ApiError(404, f"there is no flow '{flow_id}'", "GET /api/flows lists them")
    → raise ApiError(404, Msg("there is no flow '%(flow_id)s'", flow_id=flow_id), Msg("GET /api/flows lists them"))

    .venv/bin/python tools/msg_convert.py designer/<area>/api.py ...   # then `make i18n` and translate

Only the message and fix arguments of the constructors listed in CALLS are rewritten (f-strings and plain
strings; a placeholder is named after the variable or attribute it shows); anything else is left alone.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

#: constructor → (positional indexes of its message and fix, their keyword names)
CALLS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "ApiError": ((1, 2), ("message", "fix")),
    "TicketError": ((0, 1), ("message", "fix")),
    "WorkforceError": ((0, 1), ("message", "fix")),
    "LibraryError": ((0, 1), ("message", "fix")),
    "FieldProblem": ((1, 2), ("message", "fix")),
    "StatementStateError": ((0,), ()),
    "SettlementError": ((0,), ()),
    "AuthError": ((0,), ()),
    "JourneyActionError": ((0, 1), ("message", "fix")),
    "DurationError": ((0,), ()),
    "HolidaysUnknown": ((0,), ()),
    "RangeError": ((1,), ()),
    # a validator's refusal (pydantic hands a Msg on) and the errors of decisions/ (FEEL, tables, DRG, DMN import)
    "ValueError": ((0,), ()),
    "FeelError": ((0,), ()),
    "FeelSyntaxError": ((0,), ()),
    "FeelLimitError": ((0,), ()),
    "DrgError": ((0,), ()),
    "DmnImportError": ((0,), ()),
    "DecideError": ((0,), ()),
    "DecisionTableError": ((0,), ()),
    "DecisionInputError": ((0,), ()),
    "HitPolicyViolation": ((0,), ()),
    "WorkbenchError": ((1, 2), ("message", "fix")),
    "error": ((0,), ()),  # the FEEL parsers' ``self.error(problem, token)``
    "null": ((1,), ()),  # FEEL's null with its reason noted (``fi.null(scope, reason)``)
    # the errors of connectors/ (a platform's own errmsg goes in as a value, never as the template)
    **{name: ((0,), ()) for name in (
        "ConnectorProtocolError", "SignatureVerificationError", "WebhookSignatureError", "MalformedSignatureHeader",
        "WebhookSignatureMismatch", "TimestampOutsideTolerance", "ShopifyWebhookError", "ShopifyApiError",
        "DouyinApiError", "DouyinSignatureError", "SmsDeliveryError", "MissingRecipient", "WeComCryptoError",
        "BadKey", "SignatureMismatch", "BadCiphertext", "ReceiveIdMismatch", "BadEnvelope", "MalformedMessage",
        "WeComRetryable", "WeComRejected", "WeComCredentialsRejected", "WelcomeCodeUnusable", "WeChatOARetryable",
        "WeChatOARejected", "ArchiveRetryable", "ArchiveRejected", "ArchiveDecryptError", "EmailDeliveryError",
        "ShopApiError", "ShopApiRetryable", "ShopApiRejected", "WindowTooLarge", "YouzanApiError",
        "YouzanSignatureError", "WebhookDeliveryError", "ApiRetryable", "ApiRejected", "retryable_error",
        "rejected_error", "fail", "LookupError")},
    "note": ((0,), ()),  # a reason noted on the evaluation's budget
}

#: packages below the engine (the layers contract) take Msg from its own home
BELOW_ENGINE = ("decisions", "connectors")


def _name(expr: ast.expr, taken: dict[str, str], source: str) -> str:
    if isinstance(expr, ast.Name):
        base = expr.id
    elif isinstance(expr, ast.Attribute):
        base = expr.attr
    elif isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Constant) and isinstance(
            expr.slice.value, str):
        base = expr.slice.value
    else:
        base = "value"
    base = re.sub(r"\W", "_", base).strip("_") or "value"
    name, n = base, 2
    while name in taken and taken[name] != source:
        name, n = f"{base}{n}", n + 1
    taken[name] = source
    return name


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' if "\n" not in text else repr(text)


def _msg(node: ast.expr, text: str) -> str | None:
    """The ``Msg(...)`` source for a string or f-string node, or None when it is neither."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return f"Msg({_quote(node.value.replace('%', '%%'))})" if node.value else None
    if not isinstance(node, ast.JoinedStr):
        return None
    template, values, taken = "", [], {}  # type: ignore[var-annotated]
    for part in node.values:
        if isinstance(part, ast.Constant):
            template += str(part.value).replace("%", "%%")
            continue
        assert isinstance(part, ast.FormattedValue)
        source = ast.get_source_segment(text, part.value) or ast.unparse(part.value)
        if part.conversion == ord("r"):
            source = f"repr({source})"
        if part.format_spec is not None:
            spec = "".join(str(v.value) for v in part.format_spec.values if isinstance(v, ast.Constant))  # type: ignore[attr-defined]
            source = f"format({source}, {spec!r})"
        name = _name(part.value, taken, source)
        template += f"%({name})s"
        if (name, source) not in values:
            values.append((name, source))
    args = "".join(f", {name}={source}" for name, source in values)
    return f"Msg({_quote(template)}{args})"


def convert(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    edits: list[tuple[int, int, str]] = []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(line: int, byte: int) -> int:  # ast columns count UTF-8 bytes, the text is characters
        return offsets[line - 1] + len(lines[line - 1].encode()[:byte].decode())

    def span(node: ast.AST) -> tuple[int, int]:
        return (at(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                at(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name not in CALLS:
            continue
        positions, keywords = CALLS[name]
        targets = [node.args[i] for i in positions if i < len(node.args) and not isinstance(node.args[i], ast.Starred)]
        targets += [k.value for k in node.keywords if k.arg in keywords]
        for target in targets:
            replacement = _msg(target, text)
            if replacement is not None:
                start, end = span(target)
                edits.append((start, end, replacement))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    text = "".join(wrap(line) for line in text.splitlines(keepends=True))
    try:
        top = path.resolve().relative_to(Path.cwd()).parts[0]
    except (ValueError, IndexError):
        top = ""
    home = "wording" if top in BELOW_ENGINE else "engine.text"
    if edits and not re.search(rf"^from {re.escape(home)} import .*\bMsg\b", text, re.M):
        text = re.sub(r"^(from __future__ import annotations\n)", rf"\1\nfrom {home} import Msg\n", text, count=1,
                      flags=re.M)
    path.write_text(text, encoding="utf-8")
    return len(edits)


def wrap(line: str, width: int = 120) -> str:
    """Break a too-long line after a comma inside brackets, continuing under the bracket's first argument."""
    body = line.rstrip("\n")
    if len(body) <= width:
        return line
    quote, opens, best = "", [], None
    i = 0
    while i < len(body):
        ch = body[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#":  # a comment (a type: ignore...) stays on its line: leave the line to a person
            return line
        elif ch in "([{":
            opens.append(i)
        elif ch in ")]}":
            if opens:
                opens.pop()
        elif ch == "," and opens and i < width - 1 and body[i + 1:i + 2] == " ":
            best = (i, opens[-1])
        i += 1
    if best is None:
        return line
    at, bracket = best
    head, rest = body[:at + 1], body[at + 2:]
    return head + "\n" + wrap(" " * (bracket + 1) + rest + "\n", width)


def main(argv: list[str]) -> int:
    for arg in argv:
        print(f"{arg}: {convert(Path(arg))} messages")
    print("then: ruff check --fix (imports, line lengths), make i18n, translate what it lists")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
