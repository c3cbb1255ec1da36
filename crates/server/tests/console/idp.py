"""A real OpenID Connect provider for the console's sign-in test: PyPI's oidc-provider-mock (authlib's
authorization server, a login page where a user is picked, RS256 ID tokens, a JWKS, discovery), on
loopback HTTP. Prints its issuer URL on the first line, then serves until killed.

    idp.py
The users: olivia (operator), ada (auditor), and nobody (no shedu role).
"""

import os
import sys

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP on loopback, as shedu allows there

import werkzeug.serving
from oidc_provider_mock import _app, app
from oidc_provider_mock._storage import User

# Its ID tokens do not name their key (no `kid` in the JWS header) although its JWKS does; shedu requires
# one (a JWKS is never searched by trial), as most providers send it. Name the key, as authlib allows.
_plain_config = _app.OpenIDCode.get_jwt_config


def _config_with_kid(self, grant, client=None):
    config = _plain_config(self, grant, client)
    config["kid"] = _app.storage.jwk.as_dict()["kid"]
    return config


_app.OpenIDCode.get_jwt_config = _config_with_kid

USERS = [
    User(sub="olivia", claims={"preferred_username": "olivia", "roles": ["operator"]}),
    User(sub="ada", claims={"preferred_username": "ada", "roles": ["auditor"]}),
    User(sub="nobody", claims={"preferred_username": "nobody", "roles": ["guest"]}),
]

server = werkzeug.serving.make_server("127.0.0.1", 0, app(user_claims=USERS, require_nonce=True), threaded=True)
print(f"http://127.0.0.1:{server.server_port}", flush=True)
sys.stdout.close()
server.serve_forever()
