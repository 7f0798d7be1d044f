import math

import pytest

from vllama.config import FOREVER, env, is_loopback, keep_alive_seconds, parse_go_duration, parse_host


@pytest.mark.parametrize("value,expected", [
    ("", ("http", "127.0.0.1", 11434)),
    ("1.2.3.4", ("http", "1.2.3.4", 11434)),
    (":8080", ("http", "0.0.0.0", 8080)),
    ("example.com:1234", ("http", "example.com", 1234)),
    ("[::1]:1337", ("http", "::1", 1337)),
    ("http://h", ("http", "h", 80)),
    ("https://h", ("https", "h", 443)),
    ("https://h:99/prefix", ("https", "h", 99)),
    ("h:notaport", ("http", "h", 11434)),
    ("h:99999", ("http", "h", 11434)),
])
def test_parse_host(value, expected):
    hp = parse_host(value)
    assert (hp.scheme, hp.host, hp.port) == expected


def test_host_url_brackets_ipv6():
    assert parse_host("[::1]:1").url == "http://[::1]:1"


@pytest.mark.parametrize("text,seconds", [
    ("0", 0), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5), ("-1m", -60), ("300ms", 0.3), ("2h0m0s", 7200),
])
def test_go_durations(text, seconds):
    assert math.isclose(parse_go_duration(text), seconds)


@pytest.mark.parametrize("text,message", [
    ("300", 'time: missing unit in duration "300"'),
    ("-1", 'time: missing unit in duration "-1"'),
    ("5x", 'time: invalid duration "5x"'),
])
def test_bad_durations(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_go_duration(text)


def test_keep_alive():
    assert keep_alive_seconds(None, 300) == 300
    assert keep_alive_seconds(10, 300) == 10
    assert keep_alive_seconds(-1, 300) == FOREVER
    assert keep_alive_seconds("-5m", 300) == FOREVER
    assert keep_alive_seconds("0", 300) == 0
    with pytest.raises(ValueError):
        keep_alive_seconds([1], 300)


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LocalHost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("example.com", False), ("", False),
    (None, False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_env_strips_spaces_and_quotes_as_ollama_does(monkeypatch):
    monkeypatch.setenv("VLLAMA_TEST_VALUE", ' "5m" ')
    assert env("VLLAMA_TEST_VALUE") == "5m"
    assert env("VLLAMA_TEST_UNSET") == ""
