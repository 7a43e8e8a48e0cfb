"""The small parsers behind `docklock import compose`: ports, durations, memory sizes,
variable interpolation, .env files and names. Table-driven, one named case per rule."""

from __future__ import annotations

import pytest

from docklock.errors import SpecError
from docklock.importers.compose import (
    InterpolationError,
    PortSpec,
    dns_name,
    interpolate,
    parse_dotenv,
    parse_duration,
    parse_memory,
    parse_port,
)

PORTS = {
    "container only": ("3000", PortSpec((3000, 3000), None, None, "tcp")),
    "integer": (4000, PortSpec((4000, 4000), None, None, "tcp")),
    "host:container": ("8000:80", PortSpec((80, 80), (8000, 8000), None, "tcp")),
    "host ip": ("127.0.0.1:8001:8001", PortSpec((8001, 8001), (8001, 8001), "127.0.0.1", "tcp")),
    "udp": ("6060:6060/udp", PortSpec((6060, 6060), (6060, 6060), None, "udp")),
    "ranges": ("9090-9091:8080-8081", PortSpec((8080, 8081), (9090, 9091), None, "tcp")),
    "bracketed ipv6": ("[::1]:6001:6001", PortSpec((6001, 6001), (6001, 6001), "::1", "tcp")),
    "bare ipv6": ("::1:6002:6002", PortSpec((6002, 6002), (6002, 6002), "::1", "tcp")),
    "ip, no host port": ("127.0.0.1::5000", PortSpec((5000, 5000), None, "127.0.0.1", "tcp")),
}


@pytest.mark.parametrize(("text", "expected"), PORTS.values(), ids=PORTS.keys())
def test_port_short_syntax(text: object, expected: PortSpec) -> None:
    assert parse_port(text) == expected


@pytest.mark.parametrize("text", ["abc", "70000:80", "80:0", "9-1:1-9", True],
                         ids=["word", "host too big", "zero", "reversed range", "bool"])
def test_bad_ports_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="not a port"):
        parse_port(text)


DURATIONS = {
    "seconds": ("10s", "10s"), "compound": ("1m30s", "1m30s"), "millis": ("500ms", "500ms"),
    "hours": ("1h", "1h"), "fraction": ("1.5s", "1.5s"),
    "micro → ms (rounded up)": ("1500us", "2ms"), "nano → at least 1ms": ("10ns", "1ms"),
}


@pytest.mark.parametrize(("text", "expected"), DURATIONS.values(), ids=DURATIONS.keys())
def test_durations(text: str, expected: str) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["10", "ten seconds", "", True], ids=["bare number", "words",
                                                                      "empty", "bool"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


MEMORY = {
    "m": ("512m", "512m"), "upper M": ("256M", "256m"), "mb": ("256mb", "256m"),
    "g": ("2g", "2g"), "fraction → Mi": ("1.5G", "1536Mi"), "bytes int": (1073741824, "1073741824"),
    "bytes text": ("1000000", "1000000"), "kb": ("64KB", "64k"),
}


@pytest.mark.parametrize(("text", "expected"), MEMORY.values(), ids=MEMORY.keys())
def test_memory(text: object, expected: str) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "-5m", 0, True], ids=["word", "negative", "zero",
                                                                "bool"])
def test_bad_memory(text: object) -> None:
    with pytest.raises(ValueError, match="not a memory size"):
        parse_memory(text)


ENV = {"SET": "v", "EMPTY": ""}
INTERPOLATION = {
    "braced": ("${SET}", "v"), "bare": ("x$SET-y", "xv-y"), "escaped dollar": ("$$SET", "$SET"),
    ":- unset": ("${NOPE:-d}", "d"), ":- empty": ("${EMPTY:-d}", "d"),
    "- empty stays": ("${EMPTY-d}", ""), "- unset": ("${NOPE-d}", "d"),
    ":+ set": ("${SET:+alt}", "alt"), ":+ unset": ("${NOPE:+alt}", ""),
    "+ empty": ("${EMPTY+alt}", "alt"), "nested default": ("${NOPE:-${SET}}", "v"),
    "unset → empty": ("a${NOPE}b", "ab"), "no variables": ("plain", "plain"),
}


@pytest.mark.parametrize(("text", "expected"), INTERPOLATION.values(), ids=INTERPOLATION.keys())
def test_interpolation(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


def test_unset_variables_are_collected() -> None:
    missing: list[str] = []
    interpolate("${A}-$B-${SET}", ENV, missing)
    assert missing == ["A", "B"]


@pytest.mark.parametrize(("text", "match"), [
    ("${NOPE:?give it}", "give it"), ("${EMPTY:?}", "EMPTY"), ("${NOPE?}", "NOPE"),
    ("cost $ 5", "lone"), ("${1BAD}", "invalid"),
], ids=["required with message", "required empty", "required unset", "lone dollar",
        "bad name"])
def test_interpolation_errors(text: str, match: str) -> None:
    with pytest.raises(InterpolationError, match=match):
        interpolate(text, ENV)


def test_required_but_empty_with_plain_question_mark_is_fine() -> None:
    assert interpolate("${EMPTY?must be set}", ENV) == ""


def test_dotenv_syntax() -> None:
    text = ("# comment\n\nA=1\nexport B=two words\nC=\"quoted # kept\\nnext\"\n"
            "D='single $x'\nE=value # comment\nBARE\nF=\n")
    assert parse_dotenv(text, ".env") == {"A": "1", "B": "two words",
                                          "C": "quoted # kept\nnext", "D": "single $x",
                                          "E": "value", "F": ""}


def test_dotenv_bad_line_is_located() -> None:
    with pytest.raises(SpecError) as info:
        parse_dotenv("A=1\nnot a line\n", "app.env")
    assert str(info.value.location) == "app.env:2:1"


NAMES = {"plain": ("web", "web"), "underscore": ("web_app", "web-app"),
         "upper": ("MyApp", "myapp"), "dots": ("api.v2", "api-v2"),
         "edges": ("_x_", "x"), "runs": ("a__b", "a-b")}


@pytest.mark.parametrize(("name", "expected"), NAMES.values(), ids=NAMES.keys())
def test_dns_names(name: str, expected: str) -> None:
    assert dns_name(name) == expected
