"""The VAPID key pair: made once in the data folder (concurrent first starts agree), or configured."""

from __future__ import annotations

import base64
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from push import vapid
from solomo.core.settings import load_settings


def test_made_once_in_the_data_folder(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: vapid._from_data_dir(tmp_path), range(8)))
    numbers = {k.private_numbers().private_value for k in keys}
    assert len(numbers) == 1  # everyone read the one key that won
    path = tmp_path / vapid.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [vapid.KEY_FILE]  # no temporary file left
    assert vapid._from_data_dir(tmp_path).private_numbers().private_value in numbers


def test_configured_key_pem_or_raw(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    raw = base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big")).rstrip(b"=").decode()
    expected = vapid.b64url(key.public_key().public_bytes(serialization.Encoding.X962,
                                                          serialization.PublicFormat.UncompressedPoint))
    for text in (pem, raw):
        settings = load_settings(vapid_private_key=text, data_dir=tmp_path)
        assert vapid.application_server_key(settings) == expected
    assert not (tmp_path / vapid.KEY_FILE).exists()  # a configured key never writes one
    for bad in ("not a key", "AAAA", ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()):
        with pytest.raises(ValueError):
            vapid.private_key(load_settings(vapid_private_key=bad, data_dir=tmp_path))
