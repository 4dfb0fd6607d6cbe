"""An identity provider for tests: RSA keys published as a JWKS by a real HTTP server on
127.0.0.1, and the RS256 tokens they sign."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class JwksServer:
    """A real JWKS endpoint on 127.0.0.1; `keys` can change while it runs (rotation)."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def publish(self, private_key: Any, kid: str, alg: str) -> None:
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
        self.keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})

    def start(self) -> JwksServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class IdentityProvider:
    """One RS256 key, published at `url`, and `token()` signed with it."""

    KID = "idp-rsa-1"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks = JwksServer()
        self.jwks.publish(self.key, self.KID, "RS256")
        self.url = self.jwks.url
        self.jwks.start()

    def token(self, *, roles: list[str], subject: str = "user-42", ttl_seconds: int = 3600) -> str:
        now = int(time.time())
        claims = {"sub": subject, "roles": roles, "iat": now, "exp": now + ttl_seconds}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.KID})

    def stop(self) -> None:
        self.jwks.stop()
