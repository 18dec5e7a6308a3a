"""Unsafe or broken inputs on the command line: exit 2 with a message, or a warning and the usual status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from crawlrunner.cli import main

SPEC = """
name: cli
http: {{base_url: "{base}"{extra}}}
targets:
  - name: item
    urls: [/json/item/1]
    extract:
      fields: {{id: id}}
"""


def _clean(result: object) -> None:
    exception = getattr(result, "exception", None)
    assert exception is None or isinstance(exception, SystemExit), exception
    assert "Traceback" not in getattr(result, "output", "")


def test_run_with_a_nul_byte_in_output_is_a_usage_error(
    cli: CliRunner, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_spec(SPEC, base="http://127.0.0.1:9", extra="")
    result = cli.invoke(main, ["run", str(path), "-o", str(tmp_path / "a\0b.db")])

    _clean(result)
    assert result.exit_code == 2, result.output
    assert result.stderr == "crawlrunner: --output: a file name must not contain a NUL character (\\0)\n"


def test_a_nul_byte_in_the_specs_output_is_a_located_spec_error(
    cli: CliRunner, write_spec: Callable[..., Path]
) -> None:
    path = write_spec('name: x\noutput: "a\\0.db"\ntargets:\n  - {name: t, url: "http://127.0.0.1:9/"}\n')
    for command in (["validate", str(path)], ["run", str(path)]):
        result = cli.invoke(main, command)

        _clean(result)
        assert result.exit_code == 2, result.output
        assert f"{path}:2:9: output: a file name must not contain a NUL character (\\0)" in result.stderr


def test_verification_off_needs_insecure(
    cli: CliRunner, write_spec: Callable[..., Path], server: str, db_path: Path
) -> None:
    path = write_spec(SPEC, base=server, extra=", tls: {verify: false}")
    refused = cli.invoke(main, ["run", str(path), "-o", str(db_path)])

    _clean(refused)
    assert refused.exit_code == 2, refused.output
    assert "tls.verify: false turns certificate checks off for 'item': run with --insecure" in refused.stderr
    assert not db_path.exists()  # nothing was opened, nothing fetched

    allowed = cli.invoke(main, ["run", str(path), "-o", str(db_path), "--insecure"])
    assert allowed.exit_code == 0, allowed.output
    assert "certificate verification is OFF" in allowed.stderr  # and still warned about


def test_validate_and_run_warn_about_a_literal_credential_without_changing_the_status(
    cli: CliRunner, write_spec: Callable[..., Path], server: str, db_path: Path
) -> None:
    path = write_spec(SPEC, base=server, extra=", headers: {Authorization: 'Bearer literal-t0ken'}")
    warning = f"{path}:3:69: http.headers.Authorization: a credential written in the spec"
    validated = cli.invoke(main, ["validate", str(path)])
    ran = cli.invoke(main, ["run", str(path), "-o", str(db_path)])

    assert validated.exit_code == 0, validated.output
    assert ran.exit_code == 0, ran.output
    for result in (validated, ran):
        assert warning in result.stderr
        assert "literal-t0ken" not in result.output
    quiet = cli.invoke(main, ["-q", "validate", str(path)])
    assert quiet.exit_code == 0 and quiet.stderr == ""
