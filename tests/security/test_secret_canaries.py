"""Unique canary secrets go through success, HTTP errors, timeouts, redirects,
spec errors, plans, logs and progress; then every byte crawlrunner wrote or
printed is searched for them, raw and percent-encoded."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from ..conftest import ENTRY_POINT

CANARIES = {
    "CR_CANARY_HEADER": "cnry-hdr-5a7e1c93",
    "CR_CANARY_QUERY": "cnry-qry/6b+8f 2d",  # needs percent-encoding in a URL
    "CR_CANARY_TOKEN": "cnry-tok-9c4d2e71",
    "CR_CANARY_GATEWAY": "cnry-gw-3f1a0b58",
    "CR_CANARY_PATH": "cnry-path-7e2c91",
}
# Written into the spec itself, in a URL's userinfo: secrets all the same.
USERINFO = ("cnry-user-4b7d", "cnry-pw-8e3a6f")
BASIC = base64.b64encode(":".join(USERINFO).encode()).decode()
# The same, in a URL whose port is a placeholder: the authority is not
# finished where the placeholder starts, but the userinfo is.
PLACEHOLDER_USERINFO = ("cnry-puser-2c9a", "cnry-ppw-71d0b4")
PLACEHOLDER_BASIC = base64.b64encode(":".join(PLACEHOLDER_USERINFO).encode()).decode()
LITERALS = {
    "userinfo": ":".join(USERINFO),
    "password": USERINFO[1],
    "basic-header": BASIC,
    "placeholder-userinfo": ":".join(PLACEHOLDER_USERINFO),
    "placeholder-password": PLACEHOLDER_USERINFO[1],
    "placeholder-basic-header": PLACEHOLDER_BASIC,
}

SPEC = """
name: canaries
http:
  base_url: "{base}"
  timeout: {{total: 0.5}}
  retry: {{attempts: 2, backoff: 0.01}}
  rate_limit: {{cooldown: 0}}
  headers: {{X-Canary: "${{env.CR_CANARY_HEADER}}"}}
  auth: {{type: bearer, token: "${{env.CR_CANARY_TOKEN}}"}}
targets:
  - name: mixed
    urls:
      - "/echo/canary-ok?key=${{env.CR_CANARY_QUERY}}"
      - "/flaky/canary-500/99?key=${{env.CR_CANARY_QUERY}}"
      - "/hang?key=${{env.CR_CANARY_QUERY}}"
      - "/redirect-to?to={other}/echo/canary-elsewhere&key=${{env.CR_CANARY_QUERY}}"
      - "/redirect-to?to=/echo/canary-same&key=${{env.CR_CANARY_QUERY}}"
      - "/empty?key=${{env.CR_CANARY_QUERY}}"
    store_bodies: true
    extract: {{fields: {{headers: {{jmespath: headers, type: json}}, url: {{meta: final_url}}}}}}
  - name: by_path
    url: "/echo/${{env.CR_CANARY_PATH}}"
    extract: {{fields: {{seen: {{jmespath: headers, type: json}}}}}}
  - name: through_gateway
    url: "https://real.example/page?x=1"
    gateway: {{endpoint: "{base}/gateway", api_key: "${{env.CR_CANARY_GATEWAY}}"}}
    extract: {{fields: {{fetched: fetched}}}}
  - name: with_userinfo
    url: "{userinfo_base}/echo/canary-userinfo?page=1"
    auth: null
    extract: {{fields: {{seen: {{jmespath: headers, type: json}}, url: {{meta: final_url}}}}}}
  - name: userinfo_placeholder
    url: "{placeholder_base}:{{port}}/echo/canary-userinfo-port?page=1"
    vars: {{port: [{port}]}}
    auth: null
    extract: {{fields: {{seen: {{jmespath: headers, type: json}}, url: {{meta: final_url}}}}}}
"""


def _forms(secret: str) -> list[bytes]:
    return [form.encode() for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}]


@pytest.mark.subprocess
def test_no_canary_appears_in_any_output(faults: str, other_origin: str, tmp_path: Path) -> None:
    spec = tmp_path / "canaries.yaml"
    userinfo_base = faults.replace("://", f"://{USERINFO[0]}:{USERINFO[1]}@", 1)
    host, _, port = faults.rpartition(":")
    placeholder_base = host.replace("://", f"://{PLACEHOLDER_USERINFO[0]}:{PLACEHOLDER_USERINFO[1]}@", 1)
    spec.write_text(
        SPEC.format(
            base=faults, other=other_origin, userinfo_base=userinfo_base, placeholder_base=placeholder_base, port=port
        )
    )
    db = tmp_path / "out.db"
    env = {**os.environ, **CANARIES, "PYTHONWARNINGS": "error"}
    outputs: list[bytes] = []

    def crawlrunner(*args: str) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run([str(ENTRY_POINT), *args], capture_output=True, env=env, cwd=tmp_path, timeout=60)
        outputs.extend([done.stdout, done.stderr])
        assert b"Traceback" not in done.stderr, done.stderr.decode()
        return done

    run = crawlrunner("-vv", "run", str(spec), "-o", str(db))
    assert run.returncode == 1  # the 500, the hang and the empty body fail
    crawlrunner("--log-format", "json", "-v", "run", str(spec), "-o", str(db), "--max-requests", "3")
    crawlrunner("plan", str(spec), "-n", "10")
    crawlrunner("run", str(spec), "--dry-run")
    crawlrunner("validate", str(spec))
    crawlrunner("reextract", str(spec), "-o", str(db))
    crawlrunner("run", str(spec), "-o", str(db), "--retry-failed", "-v")
    record_tables = ("mixed", "by_path", "through_gateway", "with_userinfo", "userinfo_placeholder")
    for table in record_tables:
        crawlrunner("export", str(db), table, "-f", "jsonl")
    for table in ("fetch_log", "requests", "bodies"):
        crawlrunner("query", str(db), f"SELECT * FROM {table}", "-f", "json")
    # A spec error whose message would quote a value from the environment.
    broken = tmp_path / "broken.yaml"
    broken.write_text('name: b\ntargets:\n  - {name: t, url: "relative/${env.CR_CANARY_PATH}"}\n')
    assert crawlrunner("validate", str(broken)).returncode == 2

    files = [p for p in tmp_path.iterdir() if p.is_file() and p.name.startswith("out.db")]
    assert any(p.name.endswith("-wal") for p in files) or len(files) >= 1
    written = [p.read_bytes() for p in files]
    for name, secret in {**CANARIES, **LITERALS}.items():
        for form in _forms(secret):
            for blob in outputs + written:
                assert form not in blob, f"{name} leaked as {form!r}"

    # The requests really carried the secrets (the test would pass vacuously otherwise).
    from ..integration import fault_app

    assert fault_app.seen["canary-ok"][0]["headers"]["X-Canary"] == CANARIES["CR_CANARY_HEADER"]  # type: ignore[index]
    assert fault_app.seen["canary-ok"][0]["query"]["key"] == CANARIES["CR_CANARY_QUERY"]
    assert fault_app.seen["gateway"][-1]["query"]["api_key"] == CANARIES["CR_CANARY_GATEWAY"]
    assert fault_app.seen["canary-userinfo"][0]["headers"]["Authorization"] == f"Basic {BASIC}"  # type: ignore[index]
    placeholder_auth = fault_app.seen["canary-userinfo-port"][0]["headers"]["Authorization"]  # type: ignore[index]
    assert placeholder_auth == f"Basic {PLACEHOLDER_BASIC}"
    elsewhere = {k.lower() for k in fault_app.seen["canary-elsewhere"][0]["headers"]}  # type: ignore[union-attr]
    assert "x-canary" not in elsewhere and "authorization" not in elsewhere
