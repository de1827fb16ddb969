"""The unit's signing certificate is public, so anyone can validate the PDFs' signatures."""
from __future__ import annotations

from cryptography import x509

from workflows import settings
from workflows.evidence import pki


def test_unit_certificate_is_public_pem_and_unknown_units_are_404(app):
    client = app.test_client()
    response = client.get("/api/v1/units/SZDU/certificate")  # no token
    assert response.status_code == 200 and response.mimetype == "application/x-pem-file"
    cert = x509.load_pem_x509_certificate(response.data)
    assert cert == pki.trust_roots(settings.get().instance_dir, "SZDU")[0]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert b"PRIVATE KEY" not in response.data
    missing = client.get("/api/v1/units/NOPE/certificate")
    assert missing.status_code == 404 and missing.get_json()["error"] == "单位不存在"
