"""Delivery keys in the configuration: defaults, per-subscription overrides, and clear errors."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from watcher.config import WatcherConfig, parse_config
from watcher.errors import ConfigError
from watcher.models import STANDARD_RETRY_SCHEDULE_S, PayloadFormat, SignatureScheme

ENV = {
    "NEW": "a-new-signing-secret-0123",
    "OLD": "an-old-signing-secret-0123",
    "TOKEN": "my-api-token",
}
EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"


def load(subscription: str, delivery: str = "") -> WatcherConfig:
    text = textwrap.dedent(
        """\
        delivery:
          allow_networks: [127.0.0.1/32]
        {delivery}
        chains:
          - {{name: dev, kind: ethereum, rpc_url: "http://127.0.0.1:8545"}}
        subscriptions:
          - id: s
            chain: dev
            addresses: ["0x70997970c51812dc3a010c7d01b50e0d17dc79c8"]
            url: http://127.0.0.1:9000/hook
            secret: ${{NEW}}
        {subscription}
        """
    ).format(
        delivery=textwrap.indent(textwrap.dedent(delivery), "  "),
        subscription=textwrap.indent(textwrap.dedent(subscription), "    "),
    )
    return parse_config(text, base_dir=Path("."), source=Path("test.yaml"), environ=ENV)


def errors(subscription: str, delivery: str = "") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(subscription, delivery)
    return [str(issue) for issue in info.value.issues]


def test_the_defaults_are_the_standard_webhooks_policy() -> None:
    settings = load("").subscriptions[0].delivery
    assert settings.policy.schedule_s == STANDARD_RETRY_SCHEDULE_S
    assert settings.policy.max_attempts == 10
    assert (settings.connect_timeout_s, settings.timeout_s) == (5.0, 15.0)
    assert settings.policy.slow_down_min_s == 60.0
    assert settings.policy.disable_after_s == 5 * 86400
    assert settings.format is PayloadFormat.NATIVE
    assert settings.signature.scheme is SignatureScheme.STANDARD
    assert (settings.ordered, settings.delay_s, settings.rate_limit_per_s) == (False, 0.0, None)


def test_a_subscription_overrides_the_delivery_defaults() -> None:
    config = load(
        """\
        retry_schedule_s: [1, 2]
        timeout_s: 3
        rate_limit_per_s: 5
        ordered: true
        delay_s: 30
        disable_after_exhausted: 7
        """,
        delivery="""\
        timeout_s: 9
        connect_timeout_s: 2
        disable_after_s: 3600
        endpoint_concurrency: 4
        """,
    )
    settings = config.subscriptions[0].delivery
    assert settings.policy.schedule_s == (1.0, 2.0)
    assert (settings.timeout_s, settings.connect_timeout_s) == (3.0, 2.0)
    assert settings.policy.disable_after_s == 3600
    assert settings.policy.disable_after_exhausted == 7
    assert settings.endpoint_concurrency == 4
    assert (settings.rate_limit_per_s, settings.ordered, settings.delay_s) == (5.0, True, 30.0)


def test_compatibility_formats_and_signatures() -> None:
    config = load(
        """\
        format: blocksdk
        blocksdk: {webhook_id: 2151, symbol: eth, api_token: "${TOKEN}"}
        signature: {scheme: hmac-sha256, header: X-Hook-Signature, encoding: base64-hex}
        previous_secret: ${OLD}
        previous_secret_until: 2030-01-01T00:00:00Z
        """
    )
    settings = config.subscriptions[0].delivery
    assert settings.format is PayloadFormat.BLOCKSDK
    assert settings.format_options.blocksdk_webhook_id == 2151
    md5 = hashlib.md5(b"my-api-token").hexdigest()  # noqa: S324
    assert settings.format_options.blocksdk_api_token_md5 == md5
    assert settings.signature.header == "X-Hook-Signature"
    assert settings.previous_secret == b"an-old-signing-secret-0123"
    assert settings.previous_secret_until == 1893456000.0


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "signature: {scheme: hmac-sha256}",
            "signature.scheme (line 12): hmac-sha256 needs a header",
        ),
        ("signature: {header: X-Sig}", "signature.header (line 12): is only used with scheme"),
        (
            "signature: {scheme: hmac-sha256, header: webhook-signature}",
            "is a header watcher sets itself",
        ),
        ("format: blocksdk", "subscriptions[0].blocksdk (line 7): format blocksdk needs"),
        (
            'format: blocksdk\nblocksdk: {api_token: "inline-token"}',
            "blocksdk.api_token (line 13): must be an environment reference",
        ),
        (
            "blox: {application: x}",
            "subscriptions[0].blox (line 12): is only used with format blox",
        ),
        (
            "format: blox\nsignature: {scheme: blockvision}",
            "blockvision signs the body's timestamp",
        ),
        ("previous_secret: ${OLD}", "previous_secret_until (line 7): is required with previous"),
        ("previous_secret_until: 2030-01-01T00:00:00Z", "only makes sense with previous_secret"),
        ("retry_schedule_s: []", "retry_schedule_s (line 12): Tuple should have at least 1 item"),
        ("delay_s: -1", "delay_s (line 12): Input should be greater than or equal to 0"),
        ("format: xml", "format (line 12): Input should be 'native', 'blocksdk', 'blockvision'"),
    ],
)
def test_delivery_mistakes_are_reported_with_path_and_line(yaml_text: str, expected: str) -> None:
    found = errors(yaml_text)
    assert any(expected in issue for issue in found), found


def test_a_bad_delivery_default_names_its_key() -> None:
    found = errors("", delivery="endpoint_concurrency: 0\nattempt_log_retention_days: 0")
    assert any(i.startswith("delivery.endpoint_concurrency (line 3)") for i in found), found
    assert any(i.startswith("delivery.attempt_log_retention_days (line 4)") for i in found)


def test_the_example_configuration_is_valid(tmp_path: Path) -> None:
    names = ["TREASURY_WEBHOOK_SECRET", "LEGACY_WEBHOOK_SECRET", "BLOX_WEBHOOK_SECRET"]
    names += ["DEPOSITS_WEBHOOK_SECRET", "BLOCKVISION_SIGNING_KEY"]
    env = dict.fromkeys(names, "s" * 32)
    env["BLOCKSDK_API_TOKEN"] = "token"
    env["BITCOIN_RPC_PASSWORD"] = "password"
    # The API token comes from a systemd credential.
    (tmp_path / "api-token").write_text("t" * 32 + "\n")
    env["CREDENTIALS_DIRECTORY"] = str(tmp_path)
    config = parse_config(EXAMPLE.read_text(), base_dir=EXAMPLE.parent, source=EXAMPLE, environ=env)
    formats = [s.delivery.format.value for s in config.subscriptions]
    assert formats == ["native", "blocksdk", "blox", "blockvision", "native"]
    assert [c.kind for c in config.chains] == ["ethereum", "bitcoin"]
    assert config.api is not None
    assert config.api.rotation_overlap_s == 86400
    assert config.metrics is not None
