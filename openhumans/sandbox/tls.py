"""HTTPS for the sandbox: a certificate and key from files, or a generated self-signed pair.

Generating a pair needs the ``cryptography`` package (``pip install
'django-open-humans[sandbox-tls]'``). The generated certificate is its own CA, valid for
``localhost``, ``127.0.0.1`` and ``::1`` (plus the bind host), so a client verifies it with
``httpx.Client(verify=sandbox.tls_ca_file)`` (or ``SSL_CERT_FILE`` for a whole process).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

CERT_LIFETIME = timedelta(days=30)


class TLSUnavailable(RuntimeError):
    """A self-signed pair was asked for, but ``cryptography`` is not installed."""


@dataclass(frozen=True)
class TLSFiles:
    """PEM files the server uses; ``ca_file`` is what a client trusts (the cert itself)."""

    cert_file: Path
    key_file: Path

    @property
    def ca_file(self) -> Path:
        return self.cert_file

    def server_context(self) -> ssl.SSLContext:
        """A server-side context; raises ``ssl.SSLError``/``OSError`` on unusable files."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


def generate_self_signed(directory: str | os.PathLike[str], host: str = "localhost") -> TLSFiles:
    """Write ``sandbox-cert.pem`` and ``sandbox-key.pem`` (key readable by the owner only)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as err:
        raise TLSUnavailable(
            "generating a self-signed certificate needs the 'cryptography' package: "
            "pip install 'django-open-humans[sandbox-tls]', or pass --tls-cert and --tls-key"
        ) from err

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    addresses = {"127.0.0.1", "::1"}
    try:
        addresses.add(str(ipaddress.ip_address(host)))
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses)]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Open Humans sandbox")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # Its own CA, so a client can trust exactly this certificate as a root.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(folder / "sandbox-cert.pem", folder / "sandbox-key.pem")
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    return files
