"""``smcp-box lb-config``: HAProxy accepts what it prints, for every option set, and bad input
is refused with a message that names it. How the configuration behaves with real boxes behind
it (routing, retries, rate limits) is tested in tests/fleet/."""

from __future__ import annotations

import pwd
import re
import shlex
from pathlib import Path

import pytest

from smcp_box.cli import main
from smcp_box.ops.certs import issue_server_certificate, load_or_create_ca
from tests.support.haproxy import check_config, find_haproxy

needs_haproxy = pytest.mark.skipif(
    find_haproxy() is None, reason="HAProxy is not installed (apt-get install haproxy)"
)

BOXES = ["--box", "box1=127.0.0.1:9001", "--box", "box2=127.0.0.1:9002", "--box", "b3=[::1]:9003"]


def lb_config(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lb-config", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def accepted(tmp_path: Path, text: str) -> str:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    checked = check_config(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # -c prints warnings too; a configuration that draws one is not "as is".
    assert "WARNING" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr
    return text


@pytest.fixture
def tls_pem(tmp_path: Path) -> Path:
    """A certificate chain and its key in one PEM, as HAProxy's crt loads it."""
    ca = load_or_create_ca(tmp_path / "ca")
    issued = issue_server_certificate(ca, tmp_path / "tls", ["lb.lan"], days=30, reuse_key=False)
    pem = tmp_path / "lb.pem"
    pem.write_text(issued.cert_path.read_text() + issued.key_path.read_text())
    return pem


@needs_haproxy
def test_the_plain_configuration_is_accepted_and_routes_by_session_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = lb_config(capsys, "--listen", "127.0.0.1:8080", *BOXES)
    assert code == 0
    text = accepted(tmp_path, out)
    for box in ("box1", "box2", "b3"):
        assert f"acl session_on_{box} req.hdr(mcp-session-id) -m beg {box}-" in text
        assert f"use-server {box} if session_on_{box}" in text
    assert "server b3 ipv6@::1:9003" in text
    assert "option httpchk" in text
    assert "uri /readyz" in text
    assert "retry-on conn-failure empty-response response-timeout" in text
    assert "option redispatch" in text
    # No limits asked for: no tables, no 429.
    assert "stick-table" not in text
    assert "429" not in text


@needs_haproxy
def test_rate_limits_count_a_hash_of_the_credential_and_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = lb_config(
        capsys,
        "--listen",
        "0.0.0.0:8080",
        *BOXES,
        "--rate-per-key",
        "20",
        "--rate-per-ip",
        "100",
        "--rate-window",
        "10",
        "--stats-socket",
        str(tmp_path / "stats.sock"),
        # Debian has both; HAProxy looks the names up when it checks the file.
        "--run-as",
        "nobody:nogroup",
    )
    assert code == 0
    text = accepted(tmp_path, out)
    assert "    user nobody\n    group nogroup\n" in text
    assert "track-sc0 req.hdr(authorization),sha2(256) table rate_per_key" in text
    assert "track-sc1 src table rate_per_ip" in text
    assert re.search(r"return status 429 .* if \{ sc_http_req_rate\(0\) gt 20 \}", text)
    assert re.search(r"return status 429 .* if \{ sc_http_req_rate\(1\) gt 100 \}", text)
    assert "store http_req_rate(10s)" in text
    # Only the hash is ever a table key: no rule tracks the header as it came.
    assert not re.search(r"track-sc\d req\.hdr\(authorization\)(?!,sha2\(256\))", text)


@needs_haproxy
def test_tls_termination_offers_h2_and_tenant_map_routes_a_subset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tls_pem: Path
) -> None:
    tenant_map = tmp_path / "tenants.toml"
    tenant_map.write_text('acme = ["box1"]\nbig-co = ["box2", "b3"]\n')
    code, out, _ = lb_config(
        capsys,
        "--listen",
        "[::1]:8443",
        *BOXES,
        "--tls-cert",
        str(tls_pem),
        "--tenant-map",
        str(tenant_map),
        "--rate-per-key",
        "5",
    )
    assert code == 0
    text = accepted(tmp_path, out)
    assert f"bind ipv6@::1:8443 ssl crt {tls_pem.resolve()} alpn h2,http/1.1" in text
    assert "use_backend tenant_acme if { path_beg /t/acme/ }" in text
    assert "use_backend tenant_big-co if { path_beg /t/big-co/ }" in text
    acme = text.split("backend tenant_acme\n")[1].split("\n\n")[0]
    assert "server box1 127.0.0.1:9001 track boxes/box1" in acme
    assert "server box2" not in acme


@needs_haproxy
def test_a_key_beside_the_certificate_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tls_pem: Path
) -> None:
    # HAProxy's other layout: the key in <crt>.key.
    text = tls_pem.read_text()
    split = text.index("-----BEGIN PRIVATE KEY-----")
    cert = tmp_path / "only-cert.pem"
    cert.write_text(text[:split])
    Path(f"{cert}.key").write_text(text[split:])
    code, out, _ = lb_config(capsys, "--listen", ":8443", *BOXES, "--tls-cert", str(cert))
    assert code == 0
    accepted(tmp_path, out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--box", "box-1=127.0.0.1:9001"], "box id 'box-1' must be 1-32 letters"),
        (["--box", "box1=127.0.0.1"], "box box1's address '127.0.0.1' is not HOST:PORT"),
        (["--box", "box1=:9001"], "names no host"),
        (["--box", "box1=127.0.0.1:70000"], "the port must be 1-65535"),
        (["--box", "box1"], "write it as ID=HOST:PORT"),
        (["--box", "a=h1:1", "--box", "a=h2:2"], "two boxes have the same id: a"),
        (["--box", "a=h1:1", "--box", "b=h1:1"], "two boxes have the same address: h1:1"),
        ([], "name the boxes: --box ID=HOST:PORT"),
        (["--box", "a=h1:1", "--rate-per-key", "-1"], "--rate-per-key must be 0"),
        (["--box", "a=h1:1", "--rate-window", "0"], "--rate-window must be 1-86400"),
        (["--box", "a=h1:1", "--run-as", "Root;x"], "--run-as 'Root;x': give USER or"),
    ],
)
def test_bad_boxes_and_limits_are_refused_by_name(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = lb_config(capsys, "--listen", "127.0.0.1:8080", *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_a_listen_address_without_port_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = lb_config(capsys, "--listen", "0.0.0.0", "--box", "a=h:1")
    assert code == 2
    assert "--listen '0.0.0.0' is not HOST:PORT" in err


def test_an_unreadable_or_keyless_certificate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tls_pem: Path
) -> None:
    listen = ["--listen", ":443", "--box", "a=h:1"]
    code, _, err = lb_config(capsys, *listen, "--tls-cert", str(tmp_path / "missing.pem"))
    assert code == 2
    assert "missing.pem: cannot read it (No such file or directory)" in err
    # A folder cannot be read as a file even by root, who reads any mode.
    code, _, err = lb_config(capsys, *listen, "--tls-cert", str(tmp_path))
    assert code == 2
    assert "cannot read it" in err
    keyless = tmp_path / "cert-only.pem"
    keyless.write_text(tls_pem.read_text().split("-----BEGIN PRIVATE KEY-----")[0])
    code, _, err = lb_config(capsys, *listen, "--tls-cert", str(keyless))
    assert code == 2
    assert "no private key in it nor in" in err
    not_pem = tmp_path / "garbage.pem"
    not_pem.write_text("hello\n")
    code, _, err = lb_config(capsys, *listen, "--tls-cert", str(not_pem))
    assert code == 2
    assert "no PEM certificate in it" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('acme = ["box9"]\n', "acme names box9, not among the boxes (a)"),
        ('Bad_Name = ["a"]\n', "'Bad_Name' is not a tenant name"),
        ("acme = []\n", "acme must list box ids"),
        ('acme = "a"\n', "acme must list box ids"),
        ("acme = [\n", "not valid TOML"),
    ],
)
def test_a_bad_tenant_map_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "map.toml"
    path.write_text(content)
    code, _, err = lb_config(capsys, "--listen", ":80", "--box", "a=h:1", "--tenant-map", str(path))
    assert code == 2
    assert message in err


@needs_haproxy
def test_the_documented_command_prints_a_configuration_haproxy_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tls_pem: Path
) -> None:
    """docs/scale-out.md's `smcp-box lb-config` line, run as written but for two paths that
    exist only on the documented machine (the certificate and the stats socket's folder)."""
    doc = (Path(__file__).parents[2] / "docs" / "scale-out.md").read_text()
    start = doc.index("smcp-box lb-config --listen")
    command = doc[start : doc.index("> haproxy.cfg", start)].replace("\\\n", " ")
    args = shlex.split(command)[1:]
    args = [str(tls_pem) if a == "/etc/haproxy/lb.pem" else a for a in args]
    args = [str(tmp_path / "smcp.sock") if a == "/run/haproxy/smcp.sock" else a for a in args]
    # The documented user: Debian's haproxy package makes it.
    try:
        pwd.getpwnam("haproxy")
    except KeyError:
        pytest.skip("no haproxy user: Debian's haproxy package is not installed")
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0
    text = accepted(tmp_path, out)
    assert "server box3 10.0.0.13:8765" in text
