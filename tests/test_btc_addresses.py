"""Bitcoin-family addresses against published vectors: BIP-173, BIP-350, the CashAddr spec.

Known mainnet/testnet addresses of Litecoin, Dogecoin and Dash come from public wallet
address validators' test suites; the regtest ones were printed by bcoin and by the Bitcoin
SV node these tests drive.
"""

from __future__ import annotations

import pytest

from watcher.btc_addresses import CoinFamily, Network, normalize_btc_address
from watcher.btc_codecs import (
    Bech32Variant,
    bech32_decode,
    cashaddr_decode,
    cashaddr_encode,
    cashaddr_split,
    segwit_decode,
    segwit_encode,
)

BTC, LTC, DOGE = CoinFamily.BITCOIN, CoinFamily.LITECOIN, CoinFamily.DOGECOIN
DASH, BCH, BSV = CoinFamily.DASH, CoinFamily.BITCOIN_CASH, CoinFamily.BITCOIN_SV
MAIN, TEST, REG = Network.MAINNET, Network.TESTNET, Network.REGTEST

# --- BIP-173 / BIP-350: the checksum alone ---------------------------------------------------

VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]
VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
INVALID_BECH32_STRINGS = [
    "\x201nwldj5",  # HRP character out of range
    "\x7f1axkwrx",
    "\x801eym55h",
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
    "pzry9x0s0muk",  # no separator
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with uppercase HRP
    "10a06t8",
    "1qzzfhee",
]
INVALID_BECH32M_STRINGS = [
    "\x201xj0phk",
    "\x7f1g6xzxy",
    "\x801vctc34",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",
    "1qyrz8wqd2c9m",
    "y1b0jsk6g",
    "lt1igcx5c0",
    "in1muywd",
    "mm1crxm3i",
    "au1s5cgom",
    "M1VUXWEZ",
    "16plkw9",
    "1p2gdwpf",
]


@pytest.mark.parametrize("text", VALID_BECH32)
def test_bip173_valid_strings_decode_as_bech32(text: str) -> None:
    assert bech32_decode(text)[2] is Bech32Variant.BECH32


@pytest.mark.parametrize("text", VALID_BECH32M)
def test_bip350_valid_strings_decode_as_bech32m(text: str) -> None:
    assert bech32_decode(text)[2] is Bech32Variant.BECH32M


@pytest.mark.parametrize("text", INVALID_BECH32_STRINGS + INVALID_BECH32M_STRINGS)
def test_bip173_and_bip350_invalid_strings_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the reason varies by vector
        bech32_decode(text)


# --- BIP-173 / BIP-350: segwit addresses -----------------------------------------------------

VALID_SEGWIT = {
    "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4": "0014751e76e8199196d454941c45d1b3a323f1433bd6",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7": (
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"
    ),
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y": (
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"
    ),
    "BC1SW50QGDZ25J": "6002751e",
    "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs": "5210751e76e8199196d454941c45d1b3a323",
    "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy": (
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"
    ),
    "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c": (
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"
    ),
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0": (
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    ),
}
INVALID_SEGWIT = [
    # BIP-173 (those still invalid under BIP-350)
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
    "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",
    "bc1rw5uspcuh",
    "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",
    "bc1gmk9yu",
    # BIP-350
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    "bc1pw5dgrnzv",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
]


def script_pub_key(version: int, program: bytes) -> str:
    return (bytes([version + 0x50 if version else 0, len(program)]) + program).hex()


@pytest.mark.parametrize(("address", "script"), VALID_SEGWIT.items())
def test_bip350_valid_segwit_addresses_give_their_script_and_reencode(
    address: str, script: str
) -> None:
    hrp, version, program = segwit_decode(address)
    assert script_pub_key(version, program) == script
    assert segwit_encode(hrp, version, program) == address.lower()


@pytest.mark.parametrize("address", INVALID_SEGWIT)
def test_bip173_and_bip350_invalid_segwit_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        segwit_decode(address)


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", MAIN),
        ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", MAIN),
        ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", TEST),
        ("bcrt1q8zx9dlztqz9apm7y5gtx8a0tlz57fhncycvun5", REG),
        ("bcrt1pzndg2aenknysnqs0d8gwhg54nqnc6yut2c6as76h4tyqhr8spr6slpjy3x", REG),
    ],
)
def test_segwit_addresses_are_lower_cased_on_their_own_network_only(
    address: str, network: Network
) -> None:
    assert normalize_btc_address(address, BTC, network) == address.lower()
    for other in set(Network) - {network}:
        with pytest.raises(ValueError, match="segwit prefix"):
            normalize_btc_address(address, BTC, other)


def test_bcoin_regtest_witness_addresses_are_accepted_on_regtest() -> None:
    program = bytes(range(20))
    address = segwit_encode("rb", 0, program)
    assert address.startswith("rb1q")
    assert normalize_btc_address(address.upper(), BTC, REG) == address


# --- Base58Check ----------------------------------------------------------------------------

BASE58_VALID = [
    # Bitcoin: the genesis coinbase address, and well-known P2PKH/P2SH examples
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", BTC, MAIN),
    ("12KYrjTdVGjFMtaxERSk3gphreJ5US8aUP", BTC, MAIN),
    ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", BTC, MAIN),
    ("mzBc4XEFSdzCDcTxAgf6EZXgsZWpztRhef", BTC, TEST),
    ("2MxKEf2su6FGAUfCEAHreGFQvEYrfYNHvL7", BTC, TEST),
    # Bitcoin regtest: Core's m/n/2 and bcoin's R/G
    ("mvbu1Gdy8SUjTenqerxUaZyYjmveZvt33q", BTC, REG),
    ("2N4Q5FhU2497BryFfUgbqkAJE87aKHUhXMp", BTC, REG),
    ("RRX9J7pxztmszqGKoWk6wE42xZ1LeGGJwg", BTC, REG),
    ("GSa5espVLNseXEfKt46zEdS6jrPkmFghBU", BTC, REG),
    # Litecoin
    ("LVg2kJoFNg45Nbpy53h7Fe1wKyeXVRhMH9", LTC, MAIN),
    ("Lb6wDP2kHGyWC7vrZuZAgV7V4ECyDdH7a6", LTC, MAIN),
    ("MUWheVyCBf3Fm3WNNXvotQ3Gj8NTSZCBVe", LTC, MAIN),
    ("QW2SvwjaJU8LD6GSmtm1PHnBG2xPuxwZFy", LTC, TEST),
    ("mzBc4XEFSdzCDcTxAgf6EZXgsZWpztRhef", LTC, TEST),
    # Dogecoin
    ("DPpJVPpvPNP6i6tMj4rTycAGh8wReTqaSU", DOGE, MAIN),
    ("DNzLUN6MyYVS5zf4Xc2yK69V3dXs6Mxia5", DOGE, MAIN),
    ("A7JjzK9k9x5b2MkkQzqt91WZsuu7wTu6iS", DOGE, MAIN),
    ("2MxKEf2su6FGAUfCEAHreGFQvEYrfYNHvL7", DOGE, TEST),
    # Dash
    ("Xx4dYKgz3Zcv6kheaqog3fynaKWjbahb6b", DASH, MAIN),
    ("XcY4WJ6Z2Q8w7vcYER1JypC8s2oa3SQ1b1", DASH, MAIN),
    ("yPv7h2i8v3dJjfSH4L3x91JSJszjdbsJJA", DASH, TEST),
    ("yP5oXZQXBfBf9FyfZDpFiKDypxuNUKUV2E", DASH, REG),
    # Bitcoin SV regtest, as printed by the node the behaviour tests start
    ("mof8JvqYsgVWux54xF7hxMZDczu6NkrXHL", BSV, REG),
]


@pytest.mark.parametrize(("address", "family", "network"), BASE58_VALID)
def test_known_base58_addresses_are_kept_as_written(
    address: str, family: CoinFamily, network: Network
) -> None:
    assert normalize_btc_address(f"  {address}\n", family, network) == address


@pytest.mark.parametrize(
    ("address", "family", "network", "reason"),
    [
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", BTC, MAIN, "checksum"),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", BTC, TEST, "another coin or network"),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", LTC, MAIN, "another coin or network"),
        ("LVg2kJoFNg45Nbpy53h7Fe1wKyeXVRhMH9", BTC, MAIN, "another coin or network"),
        ("Xx4dYKgz3Zcv6kheaqog3fynaKWjbahb6b", DOGE, MAIN, "another coin or network"),
        ("RRX9J7pxztmszqGKoWk6wE42xZ1LeGGJwg", BTC, TEST, "another coin or network"),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", DOGE, MAIN, "segwit prefix"),
        ("0x52908400098527886E0F7030069857D2E4169EE7", BTC, MAIN, "base58"),
        ("", BTC, MAIN, "empty"),
    ],
)
def test_invalid_or_foreign_addresses_are_rejected_with_a_reason(
    address: str, family: CoinFamily, network: Network, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_btc_address(address, family, network)


def test_litecoin_legacy_p2sh_addresses_become_the_form_litecoin_core_prints() -> None:
    # 3-addresses (version 5) are still valid on Litecoin; the node prints M-addresses.
    legacy = normalize_btc_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", BTC, MAIN)
    canonical = normalize_btc_address(legacy, LTC, MAIN)
    assert canonical.startswith("M")
    assert canonical == normalize_btc_address(canonical, LTC, MAIN)
    testnet = normalize_btc_address("2MxKEf2su6FGAUfCEAHreGFQvEYrfYNHvL7", LTC, TEST)
    assert testnet.startswith("Q")


# --- CashAddr ---------------------------------------------------------------------------------

CASHADDR_CHECKSUM_VECTORS = [
    "prefix:x64nx6hz",
    "p:gpf8m4h7",
    "bitcoincash:qpzry9x8gf2tvdw0s3jn54khce6mua7lcw20ayyn",
    "bchtest:spectestnetaddressrealrealaddressqpan2k9lh",
    "bchreg:555555555555555555555555555555555555555555555udxmlmrz",
]
CASHADDR_TRANSLATIONS = [
    (
        "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu",
        "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
    ),
    (
        "1KXrWXciRDZUpQwQmuM1DbwsKDLYAYsVLR",
        "bitcoincash:qr95sy3j9xwd2ap32xkykttr4cvcu7as4y0qverfuy",
    ),
    ("16w1D5WRVKJuZUsSRzdLp9w3YGcgoxDXb", "bitcoincash:qqq3728yw0y47sqn6l2na30mcw6zm78dzqre909m2r"),
    (
        "3CWFddi6m4ndiGyKqzYvsFYagqDLPVMTzC",
        "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq",
    ),
    (
        "3LDsS579y7sruadqu11beEJoTjdFiFCdX4",
        "bitcoincash:pr95sy3j9xwd2ap32xkykttr4cvcu7as4yc93ky28e",
    ),
    (
        "31nwvkZwyPdgzjBJZXfDmSWsC4ZLKpYyUw",
        "bitcoincash:pqq3728yw0y47sqn6l2na30mcw6zm78dzq5ucqzc37",
    ),
]
# "Larger test vectors" of the spec: (type, address, hash) for hashes of 20 to 64 bytes.
CASHADDR_SIZES = [
    (0, "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2",
     "F5BF48B397DAE70BE82B3CCA4793F8EB2B6CDAC9"),
    (1, "bchtest:pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t",
     "F5BF48B397DAE70BE82B3CCA4793F8EB2B6CDAC9"),
    (1, "pref:pr6m7j9njldwwzlg9v7v53unlr4jkmx6ey65nvtks5",
     "F5BF48B397DAE70BE82B3CCA4793F8EB2B6CDAC9"),
    (0, "bitcoincash:q9adhakpwzztepkpwp5z0dq62m6u5v5xtyj7j3h2ws4mr9g0",
     "7ADBF6C17084BC86C1706827B41A56F5CA32865925E946EA"),
    (1, "pref:pgagf7w02x4wnz3mkwnchut2vxphjzccwxgjvvjmlsxqwkcrsr6gzkn",
     "3A84F9CF51AAE98A3BB3A78BF16A6183790B18719126325BFC0C075B"),
    (0, "bitcoincash:qvch8mmxy0rtfrlarg7ucrxxfzds5pamg73h7370aa87d80gyhqxq5nlegake",
     "3173EF6623C6B48FFD1A3DCC0CC6489B0A07BB47A37F47CFEF4FE69DE825C060"),
    (1, "bchtest:pvch8mmxy0rtfrlarg7ucrxxfzds5pamg73h7370aa87d80gyhqxq7fqng6m6",
     "3173EF6623C6B48FFD1A3DCC0CC6489B0A07BB47A37F47CFEF4FE69DE825C060"),
    (0, "bitcoincash:qnq8zwpj8cq05n7pytfmskuk9r4gzzel8qtsvwz79zdskftrzxtar994cgutavfklv39gr3uvz",
     "C07138323E00FA4FC122D3B85B9628EA810B3F381706385E289B0B25631197D194B5C238BEB136FB"),
    (1, "bchtest:ph3krj5607v3qlqh5c3wq3lrw3wnuxw0sp8dv0zugrrt5a3kj6ucysfz8kxwv2k53krr7n933jfsunqnzf7mt6x",  # noqa: E501
     "E361CA9A7F99107C17A622E047E3745D3E19CF804ED63C5C40C6BA763696B98241223D8CE62AD48D863F4CB18C930E4C"),
    (1, "pref:pmvl5lzvdm6km38lgga64ek5jhdl7e3aqd9895wu04fvhlnare5937w4ywkq57juxsrhvw8ym5d8qx7sz7zz0zvcypqsammyqffl",  # noqa: E501
     "D9FA7C4C6EF56DC4FF423BAAE6D495DBFF663D034A72D1DC7D52CBFE7D1E6858F9D523AC0A7A5C34077638E4DD1A701BD017842789982041"),
    (0, "bitcoincash:qlg0x333p4238k0qrc5ej7rzfw5g8e4a4r6vvzyrcy8j3s5k0en7calvclhw46hudk5flttj6ydvjc0pv3nchp52amk97tqa5zygg96mtky5sv5w",  # noqa: E501
     "D0F346310D5513D9E01E299978624BA883E6BDA8F4C60883C10F28C2967E67EC77ECC7EEEAEAFC6DA89FAD72D11AC961E164678B868AEEEC5F2C1DA08884175B"),
]  # fmt: skip
# "Undefined types" of the spec: type 15, any size bits, payload length not implied.
CASHADDR_UNDEFINED = [
    (0, "prefix:0qxsg0rgpa", ""),
    (7, "prefix:0uwa85v9fp", ""),
    (0, "prefix:0zeuqqwwk0xjclsv4lzljpye09m74gv4darmzluu6g4yxxk5eja92nup8dp7p",
     "B3C001CEB3CD2C7E0CAFC5F904997977EAA1956F47B17F9CD22A431AD4CCBA55"),
    (7, "prefix:07euqqwwk0xjclsv4lzljpye09m74gv4darmzluu6g4yxxk5eja922n8zkmjh",
     "B3C001CEB3CD2C7E0CAFC5F904997977EAA1956F47B17F9CD22A431AD4CCBA55"),
]  # fmt: skip


@pytest.mark.parametrize("text", CASHADDR_CHECKSUM_VECTORS)
def test_cashaddr_checksum_vectors_verify(text: str) -> None:
    prefix, _ = cashaddr_split(text, default_prefix="unused")
    assert prefix == text.split(":")[0]
    corrupted = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(ValueError, match="checksum"):
        cashaddr_split(corrupted, default_prefix="unused")


@pytest.mark.parametrize(("type_bits", "address", "hash_hex"), CASHADDR_SIZES)
def test_cashaddr_size_vectors_decode_and_encode(
    type_bits: int, address: str, hash_hex: str
) -> None:
    prefix, version, payload = cashaddr_decode(address, default_prefix="unused")
    assert (version >> 3, payload.hex().upper()) == (type_bits, hash_hex)
    assert cashaddr_encode(prefix, type_bits, payload) == address


@pytest.mark.parametrize(("size_bits", "address", "data_hex"), CASHADDR_UNDEFINED)
def test_cashaddr_undefined_type_vectors_decode(
    size_bits: int, address: str, data_hex: str
) -> None:
    _, version, payload = cashaddr_decode(address, default_prefix="unused")
    assert version == (15 << 3) | size_bits
    assert payload.hex().upper() == data_hex


def test_bch_rejects_cashaddr_types_that_are_not_payments() -> None:
    undefined = cashaddr_encode("bitcoincash", 15, bytes(20))
    with pytest.raises(ValueError, match="unknown cashaddr type 15"):
        normalize_btc_address(undefined, BCH, MAIN)


@pytest.mark.parametrize(("legacy", "cashaddr"), CASHADDR_TRANSLATIONS)
def test_bch_legacy_and_cashaddr_forms_share_one_canonical_form(legacy: str, cashaddr: str) -> None:
    bare = cashaddr.split(":")[1]
    forms = [legacy, cashaddr, bare, cashaddr.upper(), bare.upper()]
    assert {normalize_btc_address(f, BCH, MAIN) for f in forms} == {cashaddr}


def test_bch_rejects_other_networks_mixed_case_and_non_payment_types() -> None:
    with pytest.raises(ValueError, match="another network"):
        normalize_btc_address("bchtest:pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t", BCH, MAIN)
    with pytest.raises(ValueError, match="checksum"):  # the prefix is part of the checksum
        normalize_btc_address("pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t", BCH, MAIN)
    with pytest.raises(ValueError, match="mixes upper and lower case"):
        normalize_btc_address("bitcoincash:QPM2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a", BCH, MAIN)
    with pytest.raises(ValueError, match="not a payment address"):
        normalize_btc_address(CASHADDR_SIZES[3][1], BCH, MAIN)  # a 24-byte P2PKH hash
    p2sh32 = cashaddr_encode("bchreg", 1, bytes(32))
    assert normalize_btc_address(p2sh32, BCH, REG) == p2sh32


def test_bch_token_aware_addresses_fold_into_the_plain_form() -> None:
    plain = "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2"
    _, _, hash160 = cashaddr_decode(plain, "bitcoincash")
    token_aware = cashaddr_encode("bitcoincash", 2, hash160)
    assert token_aware.startswith("bitcoincash:z")
    assert normalize_btc_address(token_aware, BCH, MAIN) == plain


def test_bch_regtest_uses_the_bchreg_prefix() -> None:
    legacy = "mvbu1Gdy8SUjTenqerxUaZyYjmveZvt33q"
    canonical = normalize_btc_address(legacy, BCH, REG)
    assert canonical.startswith("bchreg:q")
    assert normalize_btc_address(canonical.split(":")[1], BCH, REG) == canonical
