"""``ddb-replication crl``: the pair's certificate revocation list into each side's trust anchor.

``ddb-replication ca revoke`` adds a serial to the CA folder's ``crl.pem``; this puts that file into
the trust anchor of every side in roles_anywhere mode (its Terraform output
``roles_anywhere_trust_anchor_arn``), so that IAM Roles Anywhere refuses CreateSession for a revoked
certificate: ImportCrl the first time (https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_ImportCrl.html,
PEM, at most 300,000 bytes, ``enabled``), UpdateCrl with the new file later
(https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_UpdateCrl.html), EnableCrl when it
was disabled. The CRL is found again by its name (``CRL_NAME``) and trust anchor through ListCrls,
so running the command twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replication_ops import certificates
from replication_ops.errors import ConfigError, aws_errors
from replication_ops.sides import Pair, Side

CRL_NAME = "ddb-replication-pair-ca"
MAX_CRL_BYTES = 300_000  # ImportCrl's crlData


@dataclass
class CrlReport:
    side: str
    trust_anchor_arn: str | None
    action: str  # imported, updated, enabled, unchanged, skipped
    crl_id: str | None = None
    notes: list[str] = field(default_factory=list)


def _crl_bytes(ca_dir: Path) -> tuple[bytes, int, int]:
    """The CA folder's CRL (PEM), its number and how many serials it revokes; ConfigError when there
    is none or it is not this CA's."""
    authority = certificates.load_authority(ca_dir)
    path = ca_dir / certificates.CRL_FILE
    if not path.is_file():
        raise ConfigError(
            f"{ca_dir} has no {certificates.CRL_FILE} yet: revoke a certificate first "
            f"(`ddb-replication ca revoke --dir {ca_dir} --serial HEX`)"
        )
    crl = certificates.read_crl(path, authority)
    data = path.read_bytes()
    if len(data) > MAX_CRL_BYTES:
        raise ConfigError(f"{path} is {len(data):,} bytes; a trust anchor takes a CRL of up to 300,000 bytes")
    return data, certificates.crl_number(crl), len(certificates.revocations(crl))


def _ours(client: Any, anchor: str) -> dict[str, Any] | None:
    """The pair's CRL in this trust anchor (ListCrls, by name and trust anchor), or None."""
    for page in client.get_paginator("list_crls").paginate():
        for crl in page.get("crls", []):
            if crl.get("trustAnchorArn") == anchor and crl.get("name") == CRL_NAME:
                return dict(crl)
    return None


def apply_to(side: Side, data: bytes) -> CrlReport:
    """Import or update the CRL in ``side``'s trust anchor, enabled."""
    anchor = side.outputs.get("roles_anywhere_trust_anchor_arn")
    if not anchor:
        return CrlReport(
            side.name, None, "skipped", notes=["access_key mode (no roles_anywhere_trust_anchor_arn)"]
        )
    anchor = str(anchor)
    client = side.client("rolesanywhere")
    with aws_errors(f"{side.name} IAM Roles Anywhere"):
        current = _ours(client, anchor)
        if current is None:
            crl = client.import_crl(name=CRL_NAME, crlData=data, trustAnchorArn=anchor, enabled=True)["crl"]
            return CrlReport(side.name, anchor, "imported", crl["crlId"])
        crl_id = str(current["crlId"])
        action = "unchanged"
        if bytes(current.get("crlData") or b"") != data:
            client.update_crl(crlId=crl_id, crlData=data)
            action = "updated"
        if not current.get("enabled"):
            client.enable_crl(crlId=crl_id)
            action = "enabled" if action == "unchanged" else action
        return CrlReport(side.name, anchor, action, crl_id)


def run(pair: Pair, ca_dir: Path) -> tuple[list[CrlReport], int, int]:
    """Put the CA folder's CRL into both trust anchors: (reports, CRL number, serials revoked).
    ConfigError when neither side is in roles_anywhere mode."""
    data, number, revoked = _crl_bytes(ca_dir)
    if not any(side.outputs.get("roles_anywhere_trust_anchor_arn") for side in pair.both()):
        raise ConfigError(
            "neither side has a trust anchor (output roles_anywhere_trust_anchor_arn): a CRL is for "
            "peer_writer_authentication = roles_anywhere"
        )
    return [apply_to(side, data) for side in pair.both()], number, revoked


def render(reports: list[CrlReport], number: int, revoked: int) -> str:
    lines = [f"CRL number {number} ({revoked} revoked):"]
    for r in reports:
        where = f" {r.trust_anchor_arn} (crl {r.crl_id})" if r.trust_anchor_arn else ""
        lines.append(f"  {r.side}: {r.action}{where}")
        lines.extend(f"    {note}" for note in r.notes)
    return "\n".join(lines)
