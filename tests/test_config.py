"""Configuration loading: valid files become frozen values, bad files name every mistake.

Every bad-config test asserts both the dotted path and the YAML line of the issue, because
that pair is what lets an operator fix the file in one pass.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from watcher.cli import EXIT_CONFIG, EXIT_OK, EXIT_USAGE, main
from watcher.config import WatcherConfig, load_config
from watcher.errors import ConfigError, ConfigIssue
from watcher.models import EventType

CHECKSUMMED = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil account 1, EIP-55 form
LOWER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # anvil account 0, lower-case
BAD_CHECKSUM = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"  # one letter's case flipped

KEY = bytes(range(32))
WHSEC = "whsec_" + base64.b64encode(KEY).decode()
ENV = {"HOOK_SECRET": WHSEC}

VALID = """\
chains:
  - name: dev
    kind: ethereum
    rpc_url: http://node.example:8545
    confirmations: 3
subscriptions:
  - id: shop
    chain: dev
    addresses:
      - 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
    url: https://hooks.example.com/shop
    secret: ${HOOK_SECRET}
"""


def edit(old: str, new: str, text: str = VALID) -> str:
    """``text`` with the one occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def line_of(text: str, fragment: str) -> int:
    """The 1-based number of the only line of ``text`` that contains ``fragment``."""
    numbers = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(numbers) == 1, f"{fragment!r} is on lines {numbers}"
    return numbers[0]


def write(folder: Path, text: str, name: str = "watcher.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path, text: str, environ: Mapping[str, str] = ENV) -> WatcherConfig:
    return load_config(write(folder, text), environ=environ)


def issues(folder: Path, text: str, environ: Mapping[str, str] = ENV) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load(folder, text, environ)
    return caught.value.issues


def where(found: list[ConfigIssue]) -> list[tuple[str, int | None]]:
    return [(issue.path, issue.line) for issue in found]


# --- valid files ------------------------------------------------------------------------


def test_valid_file_loads_into_subscriptions_with_chain_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, VALID)

    assert [c.name for c in config.chains] == ["dev"]
    (sub,) = config.subscriptions
    assert sub.id == "shop"
    assert sub.chain == "dev"
    assert sub.addresses == frozenset({CHECKSUMMED.lower()})
    assert sub.events == frozenset(EventType) - {EventType.BLOCK_MINED}, "every tx event"
    assert sub.confirmations == 3, "a subscription without its own depth takes the chain's"
    assert sub.url == "https://hooks.example.com/shop"
    assert sub.secret == KEY


def test_subscription_confirmations_override_the_chain_default(tmp_path: Path) -> None:
    text = edit("    secret:", "    confirmations: 7\n    secret:")
    (sub,) = load(tmp_path, text).subscriptions
    assert sub.confirmations == 7


def test_checksummed_lower_and_upper_case_addresses_are_accepted_and_lower_cased(
    tmp_path: Path,
) -> None:
    upper = "0x" + LOWER[2:].upper()
    text = edit(
        f"      - {CHECKSUMMED}\n", f"      - {CHECKSUMMED}\n      - {LOWER}\n      - {upper}\n"
    )
    (sub,) = load(tmp_path, text).subscriptions
    assert sub.addresses == frozenset({CHECKSUMMED.lower(), LOWER})


def test_unquoted_hex_values_stay_strings_instead_of_becoming_integers(tmp_path: Path) -> None:
    """YAML 1.1 reads ``0x1234...`` as an integer; an all-digit address must survive as text."""
    digits_only = "0x1234567890123456789012345678901234567890"
    text = edit(f"      - {CHECKSUMMED}", f"      - {digits_only}")
    text = text.replace("name: dev", "name: 0x10").replace("chain: dev", "chain: 0x10")
    config = load(tmp_path, text)
    assert config.chains[0].name == "0x10"
    assert config.subscriptions[0].addresses == frozenset({digits_only})


def test_addresses_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "watched.txt").write_text(
        f"# treasury wallets\n\n{CHECKSUMMED}  # hot wallet\n   \n{LOWER}\n", encoding="utf-8"
    )
    text = edit(f"    addresses:\n      - {CHECKSUMMED}\n", "    addresses_file: watched.txt\n")
    (sub,) = load(tmp_path, text).subscriptions
    assert sub.addresses == frozenset({CHECKSUMMED.lower(), LOWER})


def test_addresses_and_addresses_file_are_merged(tmp_path: Path) -> None:
    (tmp_path / "watched.txt").write_text(f"{LOWER}\n", encoding="utf-8")
    text = edit("    url:", "    addresses_file: watched.txt\n    url:")
    (sub,) = load(tmp_path, text).subscriptions
    assert sub.addresses == frozenset({CHECKSUMMED.lower(), LOWER})


@pytest.mark.parametrize(
    ("value", "key"),
    [
        pytest.param(WHSEC, KEY, id="whsec-base64"),
        pytest.param("correct horse battery staple", b"correct horse battery staple", id="plain"),
    ],
)
def test_secret_comes_from_the_given_environment(tmp_path: Path, value: str, key: bytes) -> None:
    name = "WATCHER_TEST_ONLY_IN_ENVIRON"
    assert name not in os.environ
    text = edit("${HOOK_SECRET}", "${" + name + "}")
    (sub,) = load(tmp_path, text, environ={name: value}).subscriptions
    assert sub.secret == key


def test_secret_file_is_read_relative_to_the_config_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "shop.key").write_text(WHSEC + "\n", encoding="utf-8")
    text = edit("    secret: ${HOOK_SECRET}", "    secret_file: secrets/shop.key")
    (sub,) = load(tmp_path, text, environ={}).subscriptions
    assert sub.secret == KEY


def test_relative_paths_resolve_against_the_config_folder_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc" / "watcher"
    conf_dir.mkdir(parents=True)
    (conf_dir / "watched.txt").write_text(f"{LOWER}\n", encoding="utf-8")
    text = "store:\n  path: data/watcher.db\n" + edit(
        "    url:", "    addresses_file: watched.txt\n    url:"
    )
    path = write(conf_dir, text)
    monkeypatch.chdir(tmp_path)

    config = load_config(path.relative_to(tmp_path), environ=ENV)

    assert config.store.path == conf_dir.resolve() / "data" / "watcher.db"
    assert LOWER in config.subscriptions[0].addresses


def test_loopback_url_is_accepted_when_its_network_is_allowed(tmp_path: Path) -> None:
    text = edit("https://hooks.example.com/shop", "http://127.0.0.1:9000/shop")
    text += "delivery:\n  allow_networks: [127.0.0.1/32]\n"
    (sub,) = load(tmp_path, text).subscriptions
    assert sub.url == "http://127.0.0.1:9000/shop"


def test_loaded_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, VALID)
    with pytest.raises(AttributeError):
        config.chains = ()  # type: ignore[misc]


# --- bad files: one mistake, one issue at the right path and line -----------------------


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    text = edit("    url:", "    urll: https://typo.example\n    url:")
    (issue,) = issues(tmp_path, text)
    assert issue.message.startswith("unknown key")


@pytest.mark.parametrize(
    ("old", "new", "path", "hint"),
    [
        pytest.param("chains:", "stroe:\n  path: x.db\nchains:", "stroe", "store", id="top"),
        pytest.param(
            "    url:",
            "    urll: https://x.example\n    url:",
            "subscriptions[0].urll",
            "url",
            id="nested",
        ),
    ],
)
def test_unknown_key_names_its_path_line_and_closest_key(
    tmp_path: Path, old: str, new: str, path: str, hint: str
) -> None:
    text = edit(old, new)
    key = path.rsplit(".", 1)[-1]
    (issue,) = issues(tmp_path, text)
    assert (issue.path, issue.line) == (path, line_of(text, f"{key}:"))
    assert f"did you mean '{hint}'" in issue.message


def test_missing_required_key_points_at_its_mapping(tmp_path: Path) -> None:
    text = edit("    url: https://hooks.example.com/shop\n", "")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].url", line_of(text, "- id: shop"))]
    assert found[0].message == "is required"


def test_wrong_type_names_path_and_line(tmp_path: Path) -> None:
    text = VALID + "delivery:\n  concurrency: many\n"
    found = issues(tmp_path, text)
    assert where(found) == [("delivery.concurrency", line_of(text, "concurrency: many"))]
    assert "integer" in found[0].message


def test_bad_eip55_checksum_is_refused(tmp_path: Path) -> None:
    text = edit(CHECKSUMMED, BAD_CHECKSUM)
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses[0]", line_of(text, BAD_CHECKSUM))]
    assert "EIP-55 checksum" in found[0].message


@pytest.mark.parametrize(
    "bad", ["0x1234", "0x" + "g" * 40, "70997970c51812dc3a010c7d01b50e0d17dc79c8"]
)
def test_malformed_address_is_refused(tmp_path: Path, bad: str) -> None:
    text = edit(CHECKSUMMED, bad)
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses[0]", line_of(text, bad))]
    assert "20-byte hex address" in found[0].message


def test_bad_line_in_addresses_file_names_the_file_and_its_line(tmp_path: Path) -> None:
    watched = tmp_path / "watched.txt"
    watched.write_text(f"# wallets\n{LOWER}\n\n{BAD_CHECKSUM}\n", encoding="utf-8")
    text = edit("    url:", "    addresses_file: watched.txt\n    url:")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses_file", line_of(text, "addresses_file"))]
    assert f"{watched} line 4:" in found[0].message
    assert "EIP-55 checksum" in found[0].message


def test_missing_addresses_file_is_reported(tmp_path: Path) -> None:
    text = edit("    url:", "    addresses_file: nowhere.txt\n    url:")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses_file", line_of(text, "addresses_file"))]
    assert "nowhere.txt" in found[0].message


def test_subscription_without_any_address_is_refused(tmp_path: Path) -> None:
    text = edit(f"    addresses:\n      - {CHECKSUMMED}\n", "")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses", line_of(text, "- id: shop"))]


def test_unknown_chain_reference_lists_the_known_chains(tmp_path: Path) -> None:
    text = edit("    chain: dev", "    chain: mainnet")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].chain", line_of(text, "chain: mainnet"))]
    assert "no chain named 'mainnet' (known: dev)" in found[0].message


DUPLICATE_IDS = VALID + (
    "  - id: shop\n"
    "    chain: dev\n"
    f"    addresses: [{LOWER}]\n"
    "    url: https://hooks.example.com/other\n"
    "    secret: ${HOOK_SECRET}\n"
)


def test_duplicate_subscription_id_is_refused(tmp_path: Path) -> None:
    (issue,) = issues(tmp_path, DUPLICATE_IDS)
    assert issue.path.startswith("subscriptions")
    assert "subscription id 'shop' is used more than once" in issue.message


def test_duplicate_subscription_id_points_at_the_second_occurrence(tmp_path: Path) -> None:
    (issue,) = issues(tmp_path, DUPLICATE_IDS)
    second_id_line = [n for n, s in enumerate(DUPLICATE_IDS.splitlines(), 1) if "id: shop" in s][1]
    assert (issue.path, issue.line) == ("subscriptions[1].id", second_id_line)


def test_duplicate_chain_name_points_at_the_second_occurrence(tmp_path: Path) -> None:
    text = edit(
        "subscriptions:",
        "  - name: dev\n    kind: ethereum\n    rpc_url: http://other.example:8545\nsubscriptions:",
    )
    found = issues(tmp_path, text)
    second_name_line = [n for n, s in enumerate(text.splitlines(), 1) if "name: dev" in s][1]
    assert where(found) == [("chains[1].name", second_name_line)]
    assert found[0].message == "chain name 'dev' is used more than once"


def test_duplicate_yaml_key_is_refused_at_the_repeated_key(tmp_path: Path) -> None:
    text = edit("    confirmations: 3\n", "    confirmations: 3\n    confirmations: 5\n")
    found = issues(tmp_path, text)
    assert where(found) == [("chains[0].confirmations", line_of(text, "confirmations: 5"))]
    assert found[0].message == "duplicate key"


@pytest.mark.parametrize("literal", [WHSEC, "correct horse battery staple"])
def test_inline_literal_secret_is_refused(tmp_path: Path, literal: str) -> None:
    text = edit("${HOOK_SECRET}", f"'{literal}'")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].secret", line_of(text, "secret:"))]
    assert "${" in found[0].message
    assert "secret_file" in found[0].message


def test_missing_environment_variable_is_named(tmp_path: Path) -> None:
    found = issues(tmp_path, VALID, environ={})
    assert ("subscriptions[0].secret", line_of(VALID, "secret:")) in where(found)
    assert "environment variable HOOK_SECRET is not set" in [i.message for i in found]


def test_missing_environment_variable_gives_exactly_one_issue(tmp_path: Path) -> None:
    found = issues(tmp_path, VALID, environ={})
    assert where(found) == [("subscriptions[0].secret", line_of(VALID, "secret:"))]


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        pytest.param(
            "https://hooks.example.com/shop",
            "https://${HOOK_HOST}/shop",
            "subscriptions[0].url",
            "    url:",
            id="url",
        ),
        pytest.param(
            "http://node.example:8545", "${RPC_URL}", "chains[0].rpc_url", "rpc_url:", id="rpc-url"
        ),
        pytest.param(
            "confirmations: 3",
            "confirmations: ${DEPTH}",
            "chains[0].confirmations",
            "confirmations:",
            id="schema-checked",
        ),
    ],
)
def test_unset_variable_in_any_field_gives_only_the_unset_issue(
    tmp_path: Path, old: str, new: str, path: str, fragment: str
) -> None:
    """What is left of the value after a failed substitution is not checked again."""
    text = edit(old, new)
    found = issues(tmp_path, text)
    assert where(found) == [(path, line_of(text, fragment))]
    assert found[0].message.startswith("environment variable ")


@pytest.mark.parametrize(
    "value", ["too-short", "whsec_" + base64.b64encode(b"8 bytes!").decode(), "whsec_not*base64"]
)
def test_short_or_malformed_secret_is_refused(tmp_path: Path, value: str) -> None:
    found = issues(tmp_path, VALID, environ={"HOOK_SECRET": value})
    assert where(found) == [("subscriptions[0].secret", line_of(VALID, "secret:"))]


def test_secret_and_secret_file_together_are_refused(tmp_path: Path) -> None:
    text = edit("    secret:", "    secret_file: shop.key\n    secret:")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].secret", line_of(text, "secret:"))]
    assert found[0].message == "give exactly one of secret or secret_file"


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/shop", "hooks.example.com/shop", "https:///no-host"]
)
def test_non_http_url_is_refused(tmp_path: Path, url: str) -> None:
    text = edit("https://hooks.example.com/shop", url)
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].url", line_of(text, "    url:"))]
    assert "http(s)" in found[0].message


def test_non_http_rpc_url_is_refused(tmp_path: Path) -> None:
    text = edit("http://node.example:8545", "ws://node.example:8546")
    found = issues(tmp_path, text)
    assert where(found) == [("chains[0].rpc_url", line_of(text, "rpc_url:"))]


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("[::ffff:127.0.0.1]", "loopback"),
    ],
)
def test_non_public_literal_url_is_refused_unless_allowed(
    tmp_path: Path, host: str, kind: str
) -> None:
    text = edit("https://hooks.example.com/shop", f"http://{host}:9000/shop")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].url", line_of(text, "    url:"))]
    assert kind in found[0].message
    assert "delivery.allow_networks" in found[0].message


def test_invalid_yaml_reports_the_line_of_the_syntax_error(tmp_path: Path) -> None:
    text = edit("    kind: ethereum", "    kind: ethereum: twice")
    found = issues(tmp_path, text)
    assert where(found) == [("", line_of(text, "ethereum: twice"))]
    assert found[0].message.startswith("invalid YAML")


@pytest.mark.parametrize("text", ["", "# nothing here\n", "- a list\n"])
def test_empty_or_non_mapping_file_is_refused(tmp_path: Path, text: str) -> None:
    found = issues(tmp_path, text)
    assert where(found) == [("", None)]
    assert found[0].message == "must be a mapping of keys"


def test_missing_file_is_reported_as_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.yaml", environ=ENV)
    (issue,) = caught.value.issues
    assert issue.message == "cannot read file: No such file or directory"
    assert caught.value.source == str(tmp_path / "absent.yaml")


def test_directory_instead_of_file_is_reported_as_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ=ENV)
    (issue,) = caught.value.issues
    assert issue.message.startswith("cannot read file")


def test_config_file_that_is_not_utf8_is_reported_as_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# café\n".encode("latin-1") + VALID.encode())
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=ENV)
    assert [issue.path for issue in caught.value.issues] == [""]


def test_addresses_file_that_is_not_utf8_is_reported_as_an_issue(tmp_path: Path) -> None:
    (tmp_path / "watched.txt").write_bytes(f"# café\n{LOWER}\n".encode("latin-1"))
    text = edit("    url:", "    addresses_file: watched.txt\n    url:")
    found = issues(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses_file", line_of(text, "addresses_file"))]


def test_secret_file_that_is_not_utf8_is_reported_as_an_issue(tmp_path: Path) -> None:
    (tmp_path / "shop.key").write_bytes(b"\xff" * 32)
    text = edit("    secret: ${HOOK_SECRET}", "    secret_file: shop.key")
    found = issues(tmp_path, text, environ={})
    assert where(found) == [("subscriptions[0].secret_file", line_of(text, "secret_file"))]
    assert found[0].message.endswith("line 1 is not UTF-8 text")


# --- bad files: all mistakes at once -----------------------------------------------------


def test_three_schema_mistakes_give_three_issues(tmp_path: Path) -> None:
    text = (
        edit("    url: https://hooks.example.com/shop\n", "")
        + "log:\n  level: loud\ndelivery:\n  concurrency: many\n"
    )
    found = issues(tmp_path, text)
    assert sorted(where(found), key=str) == sorted(
        [
            ("subscriptions[0].url", line_of(text, "- id: shop")),
            ("log.level", line_of(text, "level: loud")),
            ("delivery.concurrency", line_of(text, "concurrency: many")),
        ],
        key=str,
    )


def test_three_mistakes_in_different_subscriptions_give_three_issues(tmp_path: Path) -> None:
    text = VALID.replace(CHECKSUMMED, BAD_CHECKSUM) + (
        "  - id: second\n"
        "    chain: mainnet\n"
        f"    addresses: [{LOWER}]\n"
        "    url: https://hooks.example.com/second\n"
        "    secret: ${HOOK_SECRET}\n"
        "  - id: third\n"
        "    chain: dev\n"
        f"    addresses: [{LOWER}]\n"
        "    url: http://127.0.0.1/third\n"
        "    secret: ${HOOK_SECRET}\n"
    )
    found = issues(tmp_path, text)
    assert where(found) == [
        ("subscriptions[0].addresses[0]", line_of(text, BAD_CHECKSUM)),
        ("subscriptions[1].chain", line_of(text, "chain: mainnet")),
        ("subscriptions[2].url", line_of(text, "127.0.0.1")),
    ]


def test_schema_mistake_does_not_hide_address_and_reference_mistakes(tmp_path: Path) -> None:
    text = edit(CHECKSUMMED, BAD_CHECKSUM, edit("    chain: dev", "    chain: mainnet"))
    text += "delivery:\n  concurrency: many\n"
    found = issues(tmp_path, text)
    assert sorted(where(found), key=str) == sorted(
        [
            ("delivery.concurrency", line_of(text, "concurrency: many")),
            ("subscriptions[0].chain", line_of(text, "chain: mainnet")),
            ("subscriptions[0].addresses[0]", line_of(text, BAD_CHECKSUM)),
        ],
        key=str,
    )


def test_invalid_subscription_does_not_hide_mistakes_in_the_others(tmp_path: Path) -> None:
    text = edit("    url: https://hooks.example.com/shop\n", "") + (
        "  - id: second\n"
        "    chain: mainnet\n"
        f"    addresses: [{LOWER}]\n"
        "    url: https://hooks.example.com/second\n"
        "    secret: ${HOOK_SECRET}\n"
    )
    found = issues(tmp_path, text)
    assert sorted(where(found), key=str) == sorted(
        [
            ("subscriptions[0].url", line_of(text, "- id: shop")),
            ("subscriptions[1].chain", line_of(text, "chain: mainnet")),
        ],
        key=str,
    )


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        pytest.param(
            "    kind:", "    start: soon\n    kind:", "chains[0].start", "start:", id="union"
        ),
        pytest.param(
            "    confirmations: 3",
            "    confirmations: lots",
            "chains[0].confirmations",
            "confirmations:",
            id="only-chain",
        ),
        pytest.param(
            "chains:",
            "delivery:\n  allow_networks: [nope]\nchains:",
            "delivery.allow_networks[0]",
            "allow_networks",
            id="network-union",
        ),
    ],
)
def test_one_mistake_gives_exactly_one_issue(
    tmp_path: Path, old: str, new: str, path: str, fragment: str
) -> None:
    text = edit(old, new)
    assert where(issues(tmp_path, text)) == [(path, line_of(text, fragment))]


# --- secrets never appear in messages ----------------------------------------------------

LEAKY_SECRET = "whsec_" + base64.b64encode(b"do-not-print-this-secret-value!!").decode()


@pytest.mark.parametrize(
    ("text", "environ"),
    [
        pytest.param(edit("${HOOK_SECRET}", LEAKY_SECRET), {}, id="inline-literal"),
        pytest.param(
            edit("${HOOK_SECRET}", f"'{LEAKY_SECRET}'") + "log:\n  level: loud\n",
            {},
            id="inline-literal-with-schema-error",
        ),
        pytest.param(
            edit("https://hooks.example.com/shop", "http://127.0.0.1/"),
            {"HOOK_SECRET": LEAKY_SECRET},
            id="env-secret-with-other-error",
        ),
        pytest.param(VALID, {"HOOK_SECRET": LEAKY_SECRET[:12]}, id="too-short"),
        pytest.param(VALID, {"HOOK_SECRET": LEAKY_SECRET + "*"}, id="bad-base64"),
        pytest.param(
            edit("    secret: ${HOOK_SECRET}", f"    secret: {LEAKY_SECRET}\n    secret_file: k"),
            {},
            id="both-forms",
        ),
    ],
)
def test_no_issue_contains_the_secret_value(
    tmp_path: Path, text: str, environ: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    rendered = "\n".join([str(caught.value), *map(str, caught.value.issues)])
    for fragment in (LEAKY_SECRET, LEAKY_SECRET[len("whsec_") :], LEAKY_SECRET[:12]):
        assert fragment not in rendered


def test_check_config_output_does_not_contain_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = edit("${HOOK_SECRET}", LEAKY_SECRET, edit("chain: dev", "chain: mainnet"))
    path = write(tmp_path, text)
    assert main(["check-config", "-c", str(path)]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert "subscriptions[0].secret" in err
    assert LEAKY_SECRET[len("whsec_") :] not in out + err


# Valid as a subscription id, so that it gets past the schema to the checks that name values.
LEAKY_TOKEN = "s3cret-token-0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        pytest.param(edit(CHECKSUMMED, "${LEAK}"), "subscriptions[0].addresses[0]", id="address"),
        pytest.param(edit("chain: dev", "chain: ${LEAK}"), "subscriptions[0].chain", id="chain"),
        pytest.param(
            edit("    url:", "    addresses_file: ${LEAK}\n    url:"),
            "subscriptions[0].addresses_file",
            id="addresses-file",
        ),
        pytest.param(
            edit("    secret: ${HOOK_SECRET}", "    secret_file: /run/${LEAK}.key"),
            "subscriptions[0].secret_file",
            id="secret-file",
        ),
        pytest.param(
            edit("https://hooks.example.com/shop", "http://10.1.2.3/${LEAK}"),
            "subscriptions[0].url",
            id="url-host",
        ),
        pytest.param(
            DUPLICATE_IDS.replace("id: shop", "id: ${LEAK}"), "subscriptions[1].id", id="dup-id"
        ),
    ],
)
def test_issue_names_an_interpolated_value_by_its_reference_never_its_value(
    tmp_path: Path, text: str, path: str
) -> None:
    """A variable may hold a secret by mistake: the message says ``${LEAK}``, not what it holds."""
    found = issues(tmp_path, text, environ={**ENV, "LEAK": LEAKY_TOKEN})
    assert [issue.path for issue in found] == [path]
    assert "${LEAK}" in found[0].message
    assert LEAKY_TOKEN not in str(found[0])


def test_interpolated_address_is_described_as_the_value_of_its_variable(tmp_path: Path) -> None:
    text = edit(CHECKSUMMED, "${LEAK}")
    (issue,) = issues(tmp_path, text, environ={**ENV, "LEAK": LEAKY_TOKEN})
    assert issue.message == "the value of ${LEAK} is not a 0x-prefixed 20-byte hex address"


# --- the check-config command ------------------------------------------------------------


def test_check_config_on_a_valid_file_exits_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", WHSEC)
    path = write(tmp_path, VALID)
    assert main(["check-config", "-c", str(path)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out.strip() == f"{path}: ok (1 chain(s), 1 subscription(s), 1 watched address(es))"
    assert err == ""


def test_check_config_on_a_bad_file_lists_every_issue_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", WHSEC)
    text = VALID.replace(CHECKSUMMED, BAD_CHECKSUM).replace("chain: dev", "chain: mainnet")
    path = write(tmp_path, text)
    assert main(["check-config", "-c", str(path)]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: invalid configuration:" in err
    assert f"subscriptions[0].chain (line {line_of(text, 'chain: mainnet')}): no chain" in err
    assert f"subscriptions[0].addresses[0] (line {line_of(text, BAD_CHECKSUM)}):" in err


def test_check_config_on_a_missing_file_exits_with_the_config_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "-c", str(tmp_path / "absent.yaml")]) == EXIT_CONFIG
    assert "absent.yaml" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["check-config", "--no-such-option"], ["check-config", "-c"]],
    ids=["no-command", "unknown-command", "unknown-option", "option-without-value"],
)
def test_bad_command_line_exits_with_the_usage_code(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == EXIT_USAGE
    assert "usage: watcher" in capsys.readouterr().err


def run_watcher(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The real entry point, ``python -m watcher``, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_python_m_watcher_check_config_exit_codes(tmp_path: Path) -> None:
    """Through the real entry point: 0 for a valid file, 2 with path and line, 64 for usage."""
    good = write(tmp_path, VALID, "good.yaml")
    bad_text = edit("https://hooks.example.com/shop", "ftp://hooks.example.com/shop")
    bad = write(tmp_path, bad_text, "bad.yaml")
    env = {"HOOK_SECRET": WHSEC}

    ok = run_watcher("check-config", "-c", str(good), env=env)
    assert (ok.returncode, ok.stderr) == (EXIT_OK, "")

    failed = run_watcher("check-config", "-c", str(bad), env=env)
    assert failed.returncode == EXIT_CONFIG
    assert f"subscriptions[0].url (line {line_of(bad_text, '    url:')}): must be" in failed.stderr

    usage = run_watcher("check-config", "--bogus", env=env)
    assert usage.returncode == EXIT_USAGE
