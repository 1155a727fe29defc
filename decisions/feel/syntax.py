"""FEEL's grammar (DMN 1.5 chapter 10): the tokenizer, the syntax tree and the parser.

Names in FEEL may contain spaces and some operator characters (``Applicant Age``, ``date and
time``, ``Loan-to-Value``), so they cannot be tokenized on their own: the parser joins a run of
words into one name when the joined text is a *known* name — a variable in scope, a built-in
function, a name the caller declares (inputs, decisions, context entries …) or one bound earlier
in the expression (context entries, ``for`` variables, function parameters). Otherwise each word
is a name of its own. Whitespace inside a name is normalised to one space. Backquoted names
(```a name```), as Camunda's FEEL writes them, are accepted too.

Limits: the source is at most :data:`MAX_SOURCE` characters and nests at most
:data:`MAX_NESTING` levels, so parsing never recurses deeper than Python allows, whoever calls it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from decisions.feel.values import NUMBERS
from wording import Msg

MAX_SOURCE = 20_000
MAX_NESTING = 48
#: the height of a parsed tree (``1+1+…+1`` is not nested in the text but is as deep as it is long);
#: evaluating recurses once per level, so this bounds the Python stack an evaluation uses
MAX_HEIGHT = 96
#: the longest run of words joined into one name
MAX_NAME_WORDS = 12


class FeelSyntaxError(ValueError):
    """The text is not FEEL; the message quotes the text and names the position."""


# --------------------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""(?P<space>(?:\s+|//[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)+)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<backquoted>`[^`]*`)
      | (?P<name>(?:[^\W\d]|[\U00010000-\U000EFFFF])
                 (?:\w|[\U00010000-\U000EFFFF]|\u00B7|[\u0300-\u036F]|[\u203F-\u2040])*)
      | (?P<op>\.\.|\*\*|<=|>=|!=|->|[-+*/<>=!(){}\[\],.:?@'])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string, number, name, backquoted, op, end
    text: str
    start: int
    end: int
    space_before: bool


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    spaced = False
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            char = text[position]
            problem = Msg("an unterminated string") if char == '"' else Msg("unexpected '%(char)s'", char=char)
            if text.startswith("/*", position):
                problem = Msg("an unterminated comment")
            raise FeelSyntaxError(Msg("%(expression)s: %(problem)s at position %(position)s", expression=_quote(text),
                                      problem=problem, position=position + 1))
        kind = match.lastgroup
        if kind == "space":
            spaced = True
        else:
            tokens.append(Token(kind, match.group(), match.start(), match.end(), spaced))
            spaced = False
        position = match.end()
    tokens.append(Token("end", "", len(text), len(text), spaced))
    return tokens


def _quote(text: str) -> str:
    return f"'{text}'" if len(text) <= 80 else f"'{text[:77]}…'"


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "'": "'", "b": "\b", "f": "\f"}


def unescape(quoted: str) -> str:
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        following = body[index + 1]
        if following == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2:index + 6]):
            code = int(body[index + 2:index + 6], 16)
            index += 6
            # a surrogate pair written as two \u escapes
            if 0xD800 <= code < 0xDC00 and body[index:index + 2] == "\\u" \
                    and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2:index + 6]):
                low = int(body[index + 2:index + 6], 16)
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
            out.append(chr(code))
        elif following == "U" and re.fullmatch(r"[0-9a-fA-F]{6}", body[index + 2:index + 8]):
            out.append(chr(min(int(body[index + 2:index + 8], 16), 0x10FFFF)))
            index += 8
        else:
            out.append(_ESCAPES.get(following, "\\" + following))
            index += 2
    return "".join(out)


def normalise_name(name: str) -> str:
    """A name with its whitespace runs made single spaces (``Applicant   Age`` → ``Applicant Age``)."""
    return " ".join(name.split())


# --------------------------------------------------------------------------------------------- tree


class Node:
    __slots__ = ()


@dataclass(slots=True)
class Literal(Node):
    value: Any


@dataclass(slots=True)
class Name(Node):
    name: str


@dataclass(slots=True)
class InputValue(Node):
    """``?``: the value a unary test is applied to."""


@dataclass(slots=True)
class TemporalLiteral(Node):
    text: str


@dataclass(slots=True)
class Path(Node):
    target: Node
    name: str


@dataclass(slots=True)
class Filter(Node):
    target: Node
    condition: Node


@dataclass(slots=True)
class Call(Node):
    target: Node
    args: list[Node]
    named: list[tuple[str, Node]] | None = None


@dataclass(slots=True)
class Negation(Node):
    operand: Node


@dataclass(slots=True)
class Arithmetic(Node):
    operator: str
    left: Node
    right: Node


@dataclass(slots=True)
class Comparison(Node):
    operator: str
    left: Node
    right: Node


@dataclass(slots=True)
class Logical(Node):
    operator: str  # and, or
    left: Node
    right: Node


@dataclass(slots=True)
class Between(Node):
    value: Node
    low: Node
    high: Node


@dataclass(slots=True)
class UnaryTest(Node):
    """One positive unary test: ``< 10`` (operator + endpoint) or an expression (operator None)."""

    operator: str | None
    operand: Node


@dataclass(slots=True)
class UnaryTests(Node):
    """An input entry: ``-`` (no tests, not negated), a list of tests, or ``not(…)`` of them."""

    tests: list[UnaryTest]
    negated: bool = False

    @property
    def is_any(self) -> bool:
        return not self.tests and not self.negated


@dataclass(slots=True)
class In(Node):
    value: Node
    tests: list[UnaryTest]


@dataclass(slots=True)
class TypeRef:
    """A type: a name (``number``, ``date and time``, an item definition) or ``list<T>``,
    ``context<a: T>``, ``range<T>``, ``function<T, U> -> R``."""

    name: str
    parameters: list[TypeRef] = field(default_factory=list)
    fields: list[tuple[str, TypeRef]] = field(default_factory=list)
    result: TypeRef | None = None

    def __str__(self) -> str:
        if self.name == "context" and self.fields:
            return "context<" + ", ".join(f"{k}: {v}" for k, v in self.fields) + ">"
        if self.name == "function":
            return "function<" + ", ".join(map(str, self.parameters)) + f"> -> {self.result}"
        if self.parameters:
            return f"{self.name}<" + ", ".join(map(str, self.parameters)) + ">"
        return self.name


@dataclass(slots=True)
class InstanceOf(Node):
    value: Node
    type: TypeRef


@dataclass(slots=True)
class If(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(slots=True)
class Iteration:
    name: str
    source: Node
    until: Node | None = None  # ``for i in 1..10``: the range's end


@dataclass(slots=True)
class For(Node):
    iterations: list[Iteration]
    body: Node


@dataclass(slots=True)
class Quantified(Node):
    kind: str  # some, every
    iterations: list[Iteration]
    condition: Node


@dataclass(slots=True)
class ListExpr(Node):
    items: list[Node]


@dataclass(slots=True)
class ContextExpr(Node):
    entries: list[tuple[str, Node]]


@dataclass(slots=True)
class RangeExpr(Node):
    start: Node | None
    end: Node | None
    start_included: bool
    end_included: bool


@dataclass(slots=True)
class FunctionDef(Node):
    params: list[tuple[str, TypeRef | None]]
    body: Node
    external: bool = False


# --------------------------------------------------------------------------------------------- parser

#: built-in names made of several words; joined like any other known name
MULTI_WORD_BUILTINS = frozenset({
    "date and time", "days and time duration", "years and months duration", "string length",
    "upper case", "lower case", "substring before", "substring after", "starts with", "ends with",
    "list contains", "insert before", "index of", "distinct values", "get value", "get entries",
    "day of year", "day of week", "month of year", "week of year", "round up", "round down",
    "round half up", "round half down", "string join", "context put", "context merge",
    "list replace", "met by", "overlapped by", "overlaps before", "overlaps after", "finished by",
    "started by", "is defined", "get or else", "time offset", "start included", "end included",
    "duplicate values",
})
_KEYWORDS = frozenset({"for", "return", "if", "then", "else", "some", "every", "satisfies", "instance",
                       "of", "function", "external", "or", "and", "between", "in", "null", "true", "false"})
#: words that end an expression, so a name is never extended over them unless the whole is known
_JOINABLE_OPS = frozenset({".", "/", "-", "+", "*", "'"})
_COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_CLOSING = frozenset({")", "]", ",", "}", ":", ".", "then", "else", "and", "or", "return", "satisfies", "in", "="})


class Parser:
    """One parse of one text. ``names`` are the names known outside the expression."""

    def __init__(self, text: str, names: Iterable[str] = ()) -> None:
        if len(text) > MAX_SOURCE:
            raise FeelSyntaxError(Msg("the expression is %(length)s characters long; the limit is %(limit)s",
                                      length=len(text), limit=MAX_SOURCE))
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.names: set[str] = set(MULTI_WORD_BUILTINS)
        self.names.update(normalise_name(name) for name in names)
        self.depth = 0
        self.uses_input = False
        #: parsing a range's end: a '[' followed by what cannot start an expression closes the range
        self.range_end = False

    # --------------------------------------------------------------------- helpers

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def at(self, text: str) -> bool:
        token = self.tokens[self.index]
        return token.text == text and token.kind in ("op", "name")

    def at_word(self, word: str) -> bool:
        token = self.tokens[self.index]
        return token.kind == "name" and token.text == word

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise self.error(Msg("expected '%(text)s'", text=text))
        return self.advance()

    def error(self, problem: Msg, token: Token | None = None) -> FeelSyntaxError:
        token = token or self.token
        if token.kind == "end":
            return FeelSyntaxError(Msg("%(expression)s: %(problem)s at the end", expression=_quote(self.text),
                                       problem=problem))
        return FeelSyntaxError(Msg("%(expression)s: %(problem)s at position %(position)s ('%(token)s')",
                                   expression=_quote(self.text), problem=problem, position=token.start + 1,
                                   token=token.text))

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FeelSyntaxError(Msg("%(expression)s nests more than %(limit)s levels deep; simplify it",
                                      expression=_quote(self.text), limit=MAX_NESTING))

    def leave(self) -> None:
        self.depth -= 1

    def finish(self, node: Node) -> Node:
        if self.token.kind != "end":
            raise self.error(Msg("unexpected text"))
        if tree_height(node) > MAX_HEIGHT:
            raise FeelSyntaxError(Msg("%(expression)s is too deeply composed (more than %(limit)s levels of operators "
                                      "and calls); split it, e.g. into context entries", expression=_quote(self.text),
                                      limit=MAX_HEIGHT))
        return node

    # --------------------------------------------------------------------- entry points

    def parse_expression(self) -> Node:
        if self.token.kind == "end":
            raise self.error(Msg("expected an expression"))
        return self.finish(self.expression())

    def parse_unary_tests(self) -> UnaryTests:
        if self.at("-") and self.peek().kind == "end":
            self.advance()
            return UnaryTests([])
        if self.token.kind == "end":
            return UnaryTests([])
        if self.at_word("not") and self.peek().text == "(":
            start = self.index
            self.advance()
            self.advance()
            tests = self.positive_unary_tests()
            if self.at(")") and self.peek().kind == "end":
                self.advance()
                return UnaryTests(tests, negated=True)
            self.index = start  # not(…) followed by more: a call of the not function
        tests = self.positive_unary_tests()
        self.finish(Literal(None))
        return UnaryTests(tests)

    # --------------------------------------------------------------------- unary tests

    def positive_unary_tests(self) -> list[UnaryTest]:
        tests = [self.positive_unary_test()]
        while self.at(","):
            self.advance()
            tests.append(self.positive_unary_test())
        return tests

    def positive_unary_test(self) -> UnaryTest:
        if self.token.kind == "op" and self.token.text in _COMPARISONS:
            operator = self.advance().text
            if self.token.kind == "op" and self.token.text in _COMPARISONS:
                raise self.error(Msg("expected an expression"))
            return UnaryTest(operator, self.additive())
        return UnaryTest(None, self.expression())

    # --------------------------------------------------------------------- expressions

    def expression(self) -> Node:
        self.enter()
        try:
            token = self.token
            if token.kind == "name" and not self.known_name_ahead():
                if token.text == "if":
                    return self.if_expression()
                if token.text == "for" and self.peek().kind in ("name", "backquoted"):
                    return self.for_expression()
                if token.text in ("some", "every") and self.peek().kind in ("name", "backquoted"):
                    return self.quantified()
                if token.text == "function" and self.peek().text == "(":
                    return self.function_definition()
            return self.disjunction()
        finally:
            self.leave()

    def known_name_ahead(self) -> bool:
        """Whether the words ahead form a known multi-word name (which wins over a keyword)."""
        return self.longest_name(self.index)[1] > 1

    def if_expression(self) -> Node:
        self.advance()
        condition = self.expression()
        self.expect_word("then")
        then = self.expression()
        self.expect_word("else")
        return If(condition, then, self.expression())

    def expect_word(self, word: str) -> None:
        if not self.at_word(word):
            raise self.error(Msg("expected '%(word)s'", word=word))
        self.advance()

    def iterations(self, allow_range: bool) -> list[Iteration]:
        iterations: list[Iteration] = []
        while True:
            name = self.binding_name(("in",))
            self.expect_word("in")
            source = self.expression()
            until = None
            if self.at(".."):
                if not allow_range:
                    raise self.error(Msg("a range 'a..b' iterates only in 'for'"))
                self.advance()
                until = self.expression()
            iterations.append(Iteration(name, source, until))
            self.names.add(name)
            if not self.at(","):
                return iterations
            self.advance()

    def for_expression(self) -> Node:
        self.advance()
        saved = set(self.names)
        self.names.add("partial")
        iterations = self.iterations(allow_range=True)
        self.expect_word("return")
        body = self.expression()
        self.names = saved
        return For(iterations, body)

    def quantified(self) -> Node:
        kind = self.advance().text
        saved = set(self.names)
        iterations = self.iterations(allow_range=False)
        self.expect_word("satisfies")
        condition = self.expression()
        self.names = saved
        return Quantified(kind, iterations, condition)

    def binding_name(self, stop_words: tuple[str, ...], stop_ops: tuple[str, ...] = ()) -> str:
        """A name being bound (a for variable, parameter, context key): every word up to a stop word."""
        token = self.token
        if token.kind == "backquoted":
            self.advance()
            return normalise_name(token.text[1:-1])
        if token.kind == "string":
            self.advance()
            return unescape(token.text)
        start = self.index
        while self.token.kind != "end" and not (self.token.kind == "name" and self.token.text in stop_words) \
                and not (self.token.kind == "op" and self.token.text in stop_ops):
            if self.token.kind not in ("name", "number") and self.token.text not in _JOINABLE_OPS \
                    and self.token.text != "?":
                break
            self.advance()
        if self.index == start:
            raise self.error(Msg("expected a name"))
        return normalise_name(self.text[self.tokens[start].start:self.tokens[self.index - 1].end])

    def function_definition(self) -> Node:
        self.advance()
        self.expect("(")
        params: list[tuple[str, TypeRef | None]] = []
        saved = set(self.names)
        while not self.at(")"):
            name = self.binding_name((), (",", ":", ")"))
            declared = None
            if self.at(":"):
                self.advance()
                declared = self.type_ref()
            params.append((name, declared))
            self.names.add(name)
            if not self.at(","):
                break
            self.advance()
        self.expect(")")
        external = False
        if self.at_word("external"):
            self.advance()
            external = True
        body = self.expression()
        self.names = saved
        return FunctionDef(params, body, external)

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.at_word("or"):
            self.advance()
            node = Logical("or", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.comparison()
        while self.at_word("and"):
            self.advance()
            node = Logical("and", node, self.comparison())
        return node

    def comparison(self) -> Node:
        node = self.instance_of()
        while True:
            token = self.token
            if token.kind == "op" and token.text in _COMPARISONS:
                self.advance()
                node = Comparison(token.text, node, self.instance_of())
            elif self.at_word("between"):
                self.advance()
                low = self.instance_of()
                self.expect_word("and")
                node = Between(node, low, self.instance_of())
            elif self.at_word("in"):
                self.advance()
                node = In(node, self.in_tests())
            else:
                return node

    def in_tests(self) -> list[UnaryTest]:
        if self.at("("):
            start = self.index
            self.advance()
            tests = self.positive_unary_tests()
            if self.at(")"):
                self.advance()
                if not self.at(".."):
                    return tests
            self.index = start  # (a..b]: an open range, not a parenthesised list
        return [self.positive_unary_test()]

    def instance_of(self) -> Node:
        node = self.additive()
        if self.at_word("instance") and self.peek().text == "of":
            self.advance()
            self.advance()
            node = InstanceOf(node, self.type_ref())
        return node

    def type_ref(self) -> TypeRef:
        self.enter()
        try:
            token = self.token
            if token.kind == "name" and token.text in ("list", "range", "context", "function") \
                    and self.peek().text == "<":
                self.advance()
                self.advance()
                if token.text == "context":
                    fields = []
                    while not self.at(">"):
                        key = self.binding_name((), (":",))
                        self.expect(":")
                        fields.append((key, self.type_ref()))
                        if not self.at(","):
                            break
                        self.advance()
                    self.expect(">")
                    return TypeRef("context", fields=fields)
                parameters = []
                while not self.at(">"):
                    parameters.append(self.type_ref())
                    if not self.at(","):
                        break
                    self.advance()
                self.expect(">")
                if token.text == "function":
                    self.expect("->")
                    return TypeRef("function", parameters, result=self.type_ref())
                return TypeRef(token.text, parameters)
            if token.kind == "backquoted":
                self.advance()
                return TypeRef(normalise_name(token.text[1:-1]))
            if token.kind != "name":
                raise self.error(Msg("expected a type name"))
            _, words = self.longest_name(self.index, types=True)
            name = normalise_name(self.text[token.start:self.tokens[self.index + words - 1].end])
            self.index += words
            while self.at(".") and self.peek().kind == "name":  # a qualified type: import.Type
                self.advance()
                name += "." + self.advance().text
            return TypeRef(name)
        finally:
            self.leave()

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.token.kind == "op" and self.token.text in ("+", "-"):
            operator = self.advance().text
            node = Arithmetic(operator, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.power()
        while self.token.kind == "op" and self.token.text in ("*", "/"):
            operator = self.advance().text
            node = Arithmetic(operator, node, self.power())
        return node

    def power(self) -> Node:
        node = self.unary()
        while self.at("**"):
            self.advance()
            node = Arithmetic("**", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.at("-"):
            self.enter()
            try:
                self.advance()
                operand = self.unary()
            finally:
                self.leave()
            if isinstance(operand, Literal) and isinstance(operand.value, Decimal):
                return Literal(-operand.value)
            return Negation(operand)
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.at(".") and self.peek().kind in ("name", "backquoted", "string"):
                self.advance()
                node = Path(node, self.member_name())
            elif self.at("[") and not ((self.range_end and self.peek().kind == "end")
                                       or (self.range_end and self.peek().text in _CLOSING)):
                self.enter()
                self.advance()
                saved = set(self.names)
                self.names.add("item")
                condition = self.expression()
                self.names = saved
                self.expect("]")
                self.leave()
                node = Filter(node, condition)
            elif self.at("("):
                self.enter()
                node = self.call(node)
                self.leave()
            else:
                return node

    def member_name(self) -> str:
        token = self.token
        if token.kind == "backquoted":
            self.advance()
            return normalise_name(token.text[1:-1])
        if token.kind == "string":
            self.advance()
            return unescape(token.text)
        _, words = self.longest_name(self.index)
        name = normalise_name(self.text[token.start:self.tokens[self.index + words - 1].end])
        self.index += words
        return name

    def call(self, target: Node) -> Node:
        self.expect("(")
        args: list[Node] = []
        named: list[tuple[str, Node]] = []
        while not self.at(")"):
            colon = self.named_argument_colon()
            if colon is not None:
                name = normalise_name(self.text[self.token.start:self.tokens[colon - 1].end])
                if self.token.kind == "backquoted":
                    name = normalise_name(self.token.text[1:-1])
                self.index = colon + 1
                named.append((name, self.expression()))
            else:
                if named:
                    raise self.error(Msg("positional arguments cannot follow named ones"))
                args.append(self.expression())
            if not self.at(","):
                break
            self.advance()
        self.expect(")")
        if named and args:
            raise self.error(Msg("a call takes either positional or named arguments, not both"))
        return Call(target, args, named or None)

    def named_argument_colon(self) -> int | None:
        """If the argument ahead is ``name: expression``, the index of the ``:``."""
        index = self.index
        if self.tokens[index].kind == "backquoted":
            return index + 1 if self.tokens[index + 1].text == ":" else None
        while self.tokens[index].kind in ("name", "number") or (
                self.tokens[index].kind == "op" and self.tokens[index].text in _JOINABLE_OPS):
            index += 1
        if index > self.index and self.tokens[index].text == ":" and self.tokens[index].kind == "op":
            return index
        return None

    def longest_name(self, start: int, types: bool = False) -> tuple[int, int]:
        """The known name starting at token ``start``: (end index, words). One word when none is known."""
        first = self.tokens[start]
        if first.kind != "name":
            return start + 1, 1
        best = 1
        end = start
        last = min(len(self.tokens) - 1, start + MAX_NAME_WORDS)
        while end + 1 < last:
            following = self.tokens[end + 1]
            if following.kind not in ("name", "number") and not (
                    following.kind == "op" and following.text in _JOINABLE_OPS):
                break
            end += 1
            if following.kind in ("name", "number"):
                candidate = normalise_name(self.text[first.start:following.end])
                if candidate in self.names or (types and candidate in _TYPE_WORDS):
                    best = end - start + 1
        return start + best, best

    def primary(self) -> Node:
        token = self.token
        kind = token.kind
        if kind == "number":
            self.advance()
            try:
                return Literal(NUMBERS.create_decimal(token.text))
            except (InvalidOperation, ArithmeticError):
                raise self.error(Msg("the number is out of range"), token) from None
        if kind == "string":
            self.advance()
            return Literal(unescape(token.text))
        if kind == "backquoted":
            self.advance()
            return Name(normalise_name(token.text[1:-1]))
        if kind == "name":
            end, words = self.longest_name(self.index)
            if words > 1:
                name = normalise_name(self.text[token.start:self.tokens[end - 1].end])
                self.index = end
                return Name(name)
            if token.text in ("true", "false"):
                self.advance()
                return Literal(token.text == "true")
            if token.text == "null":
                self.advance()
                return Literal(None)
            if token.text in ("if", "for", "some", "every", "function") and token.text not in self.names:
                return self.expression()
            if token.text in _KEYWORDS and token.text not in self.names:
                raise self.error(Msg("'%(text)s' cannot start an expression", text=token.text))
            self.advance()
            return Name(token.text)
        if kind == "op":
            text = token.text
            if text == "?":
                self.advance()
                self.uses_input = True
                return InputValue()
            if text == "@":
                self.advance()
                if self.token.kind != "string":
                    raise self.error(Msg("expected a string after @, such as @\"2026-11-11\""))
                return TemporalLiteral(unescape(self.advance().text))
            if text == "(":
                return self.parenthesised()
            if text == "[":
                return self.bracketed()
            if text == "]":
                return self.range_after(self.advance(), False)
            if text == "{":
                return self.context()
            if text in _COMPARISONS:  # a range value such as < 10 (DMN 1.4)
                self.advance()
                return UnaryTest(text, self.additive())
        raise self.error(Msg("expected an expression"))

    def parenthesised(self) -> Node:
        self.enter()
        try:
            opening = self.advance()
            node = self.expression()
            if self.at(".."):
                return self.range_rest(opening, False, node)
            self.expect(")")
            return node
        finally:
            self.leave()

    def bracketed(self) -> Node:
        self.enter()
        try:
            self.advance()
            if self.at("]"):
                self.advance()
                return ListExpr([])
            first = self.expression()
            if self.at(".."):
                return self.range_rest(self.tokens[self.index - 1], True, first)
            items = [first]
            while self.at(","):
                self.advance()
                items.append(self.expression())
            self.expect("]")
            return ListExpr(items)
        finally:
            self.leave()

    def range_after(self, opening: Token, start_included: bool) -> Node:
        self.enter()
        try:
            start = self.expression()
            return self.range_rest(opening, start_included, start)
        finally:
            self.leave()

    def range_rest(self, opening: Token, start_included: bool, start: Node) -> Node:
        self.expect("..")
        outer, self.range_end = self.range_end, True
        try:
            end = self.expression()
        finally:
            self.range_end = outer
        closing = self.advance()
        if closing.text not in ("]", ")", "["):
            raise self.error(Msg("expected ']', ')' or '[' to close the range"), closing)
        return RangeExpr(start, end, start_included, closing.text == "]")

    def context(self) -> Node:
        self.enter()
        try:
            self.advance()
            entries: list[tuple[str, Node]] = []
            saved = set(self.names)
            while not self.at("}"):
                key = self.binding_name((), (":",))
                self.expect(":")
                self.names.add(key)
                entries.append((key, self.expression()))
                if not self.at(","):
                    break
                self.advance()
            self.expect("}")
            self.names = saved
            keys = [key for key, _ in entries]
            if len(set(keys)) != len(keys):
                duplicate = next(key for key in keys if keys.count(key) > 1)
                raise FeelSyntaxError(Msg("%(expression)s: the context has the key '%(key)s' twice",
                                          expression=_quote(self.text), key=duplicate))
            return ContextExpr(entries)
        finally:
            self.leave()


_TYPE_WORDS = frozenset({"date and time", "days and time duration", "years and months duration",
                         "dayTimeDuration", "yearMonthDuration"})


def tree_height(node: Any) -> int:
    """The height of a syntax tree, measured without recursion."""
    tallest = 0
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        tallest = max(tallest, depth)
        for child in children(current):
            stack.append((child, depth + 1))
    return tallest


def children(node: Any) -> list[Any]:
    """The sub-trees of a node (iterations included)."""
    if isinstance(node, Iteration):
        return [node.source] + ([node.until] if node.until is not None else [])
    if not isinstance(node, Node):
        return []
    found: list[Any] = []
    for slot in getattr(type(node), "__slots__", ()):
        value = getattr(node, slot, None)
        if isinstance(value, Node | Iteration):
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Node | Iteration):
                    found.append(item)
                elif isinstance(item, tuple):
                    found.extend(part for part in item if isinstance(part, Node))
    return found


def parse_expression(text: str, names: Iterable[str] = ()) -> Node:
    """Parse a FEEL expression. Raises :class:`FeelSyntaxError` naming the position."""
    return Parser(text, names).parse_expression()


def parse_unary_tests(text: str, names: Iterable[str] = ()) -> UnaryTests:
    """Parse an input entry (unary tests). ``-`` and blank are "any"."""
    return Parser(text, names).parse_unary_tests()


def parse_type(text: str, names: Iterable[str] = ()) -> TypeRef:
    parser = Parser(text, names)
    parsed = parser.type_ref()
    parser.finish(Literal(None))
    return parsed


def decimal_literal(text: str) -> Decimal:
    return NUMBERS.create_decimal(text)
