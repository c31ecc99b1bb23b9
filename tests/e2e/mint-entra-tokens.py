#!/usr/bin/env python3
"""Entra-shaped access tokens for the token-webhook scenario, signed with `openssl dgst`.

usage: mint-entra-tokens.py KEY.pem OUT-DIR ISSUER AUDIENCE TENANT USER...
  USER = name|oid|upn|groups   groups: comma-separated object ids, or `overage` for the
                               overage marker (`_claim_names.groups` + `_claim_sources`)

Writes OUT-DIR/jwks.json (the key as `sg-e2e-k1`, RSA, use sig) and OUT-DIR/<name>.token
(v1 access tokens as Entra issues them, valid for two hours).
"""
import base64
import json
import subprocess
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    key, out, issuer, audience, tenant, *users = sys.argv[1:]
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
    n = bytes.fromhex(modulus.strip().split("=", 1)[1])
    jwks = {"keys": [{"kty": "RSA", "use": "sig", "kid": "sg-e2e-k1", "x5t": "sg-e2e-k1",
                      "n": b64url(n), "e": "AQAB"}]}
    with open(f"{out}/jwks.json", "w") as f:
        json.dump(jwks, f)
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5t": "sg-e2e-k1", "kid": "sg-e2e-k1"}
    for spec in users:
        name, oid, upn, groups = spec.split("|")
        claims = {"aud": audience, "iss": issuer, "iat": now - 60, "nbf": now - 60,
                  "exp": now + 7200, "oid": oid, "tid": tenant, "upn": upn,
                  "unique_name": upn, "ver": "1.0", "appid": "80faf920-1908-4b52-b5ef-a8e7bedfc67a"}
        if groups == "overage":
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {"src1": {
                "endpoint": f"https://graph.windows.net/{tenant}/users/{oid}/getMemberObjects"}}
        elif groups:
            claims["groups"] = groups.split(",")
        signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                                   input=signed.encode(), check=True, capture_output=True).stdout
        with open(f"{out}/{name}.token", "w") as f:
            f.write(signed + "." + b64url(signature))


if __name__ == "__main__":
    main()
