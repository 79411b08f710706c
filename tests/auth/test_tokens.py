"""TokenService: Ed25519 access tokens, key rotation on an injected clock, revocation, and the
token side of the negative matrix (each refusal an AuthError saying which check failed)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, OKPKey

from smcp_box.auth.tokens import ALGORITHM, AccessClaims, TokenService
from smcp_box.config import OAuthSettings
from smcp_box.errors import AuthError
from smcp_box.store import Store

AUD = "https://box.lan/t/notes/mcp"
ISSUER = "https://box.lan"
DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> OAuthSettings:
    return OAuthSettings(access_token_ttl_s=300, signing_key_rotation_days=30)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "tokens.db", bytes(32))
    yield opened
    await opened.close()


@pytest.fixture
async def service(store: Store, settings: OAuthSettings, clock: Clock) -> TokenService:
    tokens = TokenService(store, settings, clock)
    await tokens.start()
    return tokens


def issue(service: TokenService, **overrides: object) -> tuple[str, AccessClaims]:
    args: dict[str, object] = {
        "issuer": ISSUER,
        "subject": "alice",
        "tenant": "notes",
        "audience": AUD,
        "client_id": "https://client.example/meta.json",
        "scopes": frozenset({"mcp:tools", "mcp:prompts"}),
    }
    args.update(overrides)
    return service.issue_access_token(**args)  # type: ignore[arg-type]


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, object], dict[str, object], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


async def test_a_token_round_trips_with_its_claims(service: TokenService, clock: Clock) -> None:
    token, claims = issue(service)
    assert service.verify_access_token(token, audience=AUD) == claims
    assert claims.expires_at == int(clock.now) + 300
    assert claims.scopes == frozenset({"mcp:tools", "mcp:prompts"})
    header, payload, _ = parts(token)
    assert header == {"alg": ALGORITHM, "typ": "at+jwt", "kid": service.jwks()["keys"][0]["kid"]}
    # RFC 9068 claims, scopes in the vocabulary's order.
    assert payload["scope"] == "mcp:tools mcp:prompts"
    assert payload["aud"] == AUD
    assert payload["tenant"] == "notes"
    assert payload["iat"] == int(clock.now)


async def test_unknown_scopes_are_not_issued(service: TokenService) -> None:
    with pytest.raises(ValueError, match="unknown scope mcp:admin"):
        issue(service, scopes=frozenset({"mcp:admin"}))


async def test_jwks_holds_only_public_keys(service: TokenService) -> None:
    (key,) = service.jwks()["keys"]
    assert key["kty"] == "OKP"
    assert key["crv"] == "Ed25519"
    assert key["alg"] == ALGORITHM
    assert key["use"] == "sig"
    assert "d" not in key
    assert key["kid"] == OKPKey.import_key(key).thumbprint()


# --- the negative matrix -------------------------------------------------------------------


async def test_expired(service: TokenService, clock: Clock) -> None:
    token, _ = issue(service)
    clock.now += 299
    service.verify_access_token(token, audience=AUD)
    clock.now += 1
    with pytest.raises(AuthError, match="expired"):
        service.verify_access_token(token, audience=AUD)


async def test_wrong_audience(service: TokenService) -> None:
    token, _ = issue(service)
    with pytest.raises(AuthError, match="another resource"):
        service.verify_access_token(token, audience="https://box.lan/t/other/mcp")


async def test_tampered_payload(service: TokenService) -> None:
    token, _ = issue(service)
    header, _payload, signature = token.split(".")
    claims = parts(token)[1]
    forged = b64({**claims, "scope": "mcp:tools mcp:resources mcp:prompts"})
    with pytest.raises(AuthError, match="signature does not verify"):
        service.verify_access_token(f"{header}.{forged}.{signature}", audience=AUD)


async def test_tampered_signature(service: TokenService) -> None:
    token, _ = issue(service)
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(AuthError, match="signature does not verify"):
        service.verify_access_token(f"{head}.{flipped}", audience=AUD)


async def test_alg_none(service: TokenService) -> None:
    token, _ = issue(service)
    header, claims, _ = parts(token)
    unsigned = f"{b64({**header, 'alg': 'none'})}.{b64(claims)}."
    with pytest.raises(AuthError, match="alg 'none' is not allowed"):
        service.verify_access_token(unsigned, audience=AUD)


async def test_hs256_keyed_with_the_public_key(service: TokenService) -> None:
    # The classic confusion attack: an HMAC "signed" with the published public key.
    token, _ = issue(service)
    header, claims, _ = parts(token)
    public = service.jwks()["keys"][0]
    secret = OctKey.import_key(json.dumps(public).encode())
    forged = jwt.encode({**header, "alg": "HS256"}, claims, secret, algorithms=["HS256"])
    with pytest.raises(AuthError, match="alg 'HS256' is not allowed"):
        service.verify_access_token(forged, audience=AUD)
    raw_x = OctKey.import_key(base64.urlsafe_b64decode(str(public["x"]) + "="))
    forged = jwt.encode({**header, "alg": "HS256"}, claims, raw_x, algorithms=["HS256"])
    with pytest.raises(AuthError, match="not allowed"):
        service.verify_access_token(forged, audience=AUD)


async def test_unknown_kid(service: TokenService) -> None:
    token, _ = issue(service)
    header, claims, _ = parts(token)
    stranger = OKPKey.generate_key("Ed25519", private=True)
    forged = jwt.encode(
        {**header, "kid": stranger.thumbprint()}, claims, stranger, algorithms=[ALGORITHM]
    )
    with pytest.raises(AuthError, match="signing key \\(kid\\) is unknown"):
        service.verify_access_token(forged, audience=AUD)
    # The same stranger's signature under our kid fails as a bad signature.
    forged = jwt.encode(header, claims, stranger, algorithms=[ALGORITHM])
    with pytest.raises(AuthError, match="signature does not verify"):
        service.verify_access_token(forged, audience=AUD)


async def test_not_an_access_token(service: TokenService) -> None:
    token, _ = issue(service)
    header, claims, _ = parts(token)
    with pytest.raises(AuthError, match="not a JWT"):
        service.verify_access_token("smcp_0123456789abcdef_secret", audience=AUD)
    # A JWT signed by our key but of another type (say an ID token) is not an access token.
    store_key = service._active.key  # type: ignore[union-attr]
    other = jwt.encode({**header, "typ": "JWT"}, claims, store_key, algorithms=[ALGORITHM])
    with pytest.raises(AuthError, match="typ must be 'at\\+jwt'"):
        service.verify_access_token(other, audience=AUD)


async def test_missing_claims(service: TokenService) -> None:
    token, _ = issue(service)
    header, claims, _ = parts(token)
    store_key = service._active.key  # type: ignore[union-attr]
    del claims["tenant"]
    partial = jwt.encode(header, claims, store_key, algorithms=[ALGORITHM])
    with pytest.raises(AuthError, match=r"lacks claims: .*tenant"):
        service.verify_access_token(partial, audience=AUD)


async def test_revoked(
    service: TokenService, store: Store, settings: OAuthSettings, clock: Clock
) -> None:
    token, claims = issue(service)
    other, _ = issue(service)
    assert await service.revoke_access_token(token)
    with pytest.raises(AuthError, match="revoked"):
        service.verify_access_token(token, audience=AUD)
    service.verify_access_token(other, audience=AUD)
    # The denylist is in the store: a second service (a restart) refuses it too ...
    restarted = TokenService(store, settings, clock)
    await restarted.start()
    with pytest.raises(AuthError, match="revoked"):
        restarted.verify_access_token(token, audience=AUD)
    # ... until the token has expired anyway, when its row goes.
    assert await store.revoked_token_ids(clock.now) == {claims.jti: claims.expires_at}
    clock.now = claims.expires_at
    await restarted.rotate_if_due()
    assert await store.revoked_token_ids(0.0) == {}


async def test_revoking_what_is_not_a_valid_token_changes_nothing(
    service: TokenService, store: Store, clock: Clock
) -> None:
    token, _ = issue(service)
    assert not await service.revoke_access_token("not-a-token")
    clock.now += 301
    assert not await service.revoke_access_token(token)
    assert await store.revoked_token_ids(0.0) == {}


# --- rotation ------------------------------------------------------------------------------


async def test_start_makes_one_key_and_reuses_it(
    store: Store, settings: OAuthSettings, clock: Clock
) -> None:
    first = TokenService(store, settings, clock)
    await first.start()
    second = TokenService(store, settings, clock)
    await second.start()
    assert first.jwks() == second.jwks()
    assert len(await store.signing_keys()) == 1
    token, _ = issue(first)
    second.verify_access_token(token, audience=AUD)


async def test_rotation_keeps_old_keys_until_their_tokens_expire(
    service: TokenService, store: Store, clock: Clock
) -> None:
    (old_key,) = service.jwks()["keys"]
    clock.now += 30 * DAY - 1
    assert not await service.rotate_if_due()
    clock.now += 1
    old_token, _old_claims = issue(service)  # the last token the old key signs
    assert await service.rotate_if_due()
    kids = [k["kid"] for k in service.jwks()["keys"]]
    assert kids[0] == old_key["kid"]
    assert len(kids) == 2
    new_token, _ = issue(service)
    assert parts(new_token)[0]["kid"] == kids[1]
    # The old key still verifies its tokens, and stays published, until they have expired.
    clock.now += 299
    await service.rotate_if_due()
    service.verify_access_token(old_token, audience=AUD)
    assert len(service.jwks()["keys"]) == 2
    clock.now += 2
    await service.rotate_if_due()
    assert [k["kid"] for k in service.jwks()["keys"]] == kids[1:]
    assert [k.kid for k in await store.signing_keys()] == kids[1:]
    with pytest.raises(AuthError, match="kid"):
        service.verify_access_token(old_token, audience=AUD)
    fresh, _ = issue(service)
    service.verify_access_token(fresh, audience=AUD)


async def test_a_lost_rotation_race_adopts_the_winners_key(
    store: Store, settings: OAuthSettings, clock: Clock
) -> None:
    one = TokenService(store, settings, clock)
    two = TokenService(store, settings, clock)
    await one.start()
    await two.start()
    clock.now += 31 * DAY
    assert await one.rotate_if_due()
    # two still thinks the first key is active; its rotation must not make a second one.
    assert not await two.rotate_if_due()
    assert one.jwks() == two.jwks()
    active = [k for k in await store.signing_keys() if k.retired_at is None]
    assert len(active) == 1


async def test_rotation_period_comes_from_the_settings(
    store: Store, settings: OAuthSettings, clock: Clock
) -> None:
    daily = TokenService(store, replace(settings, signing_key_rotation_days=1), clock)
    await daily.start()
    clock.now += DAY
    assert await daily.rotate_if_due()


async def test_issuing_before_start_is_a_programming_error(
    store: Store, settings: OAuthSettings, clock: Clock
) -> None:
    with pytest.raises(RuntimeError, match="start"):
        issue(TokenService(store, settings, clock))


async def test_a_revocation_is_not_forgotten_by_a_refresh_that_missed_it(
    service: TokenService, store: Store
) -> None:
    # As if the refresh read the store before the revocation's write: the row is not there.
    token, _ = issue(service)
    assert await service.revoke_access_token(token)
    await store.prune_revoked_token_ids(now=1e12)
    await service.refresh()
    with pytest.raises(AuthError, match="revoked"):
        service.verify_access_token(token, audience=AUD)
