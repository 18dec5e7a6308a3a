"""Request generation: templates, ranges, lists, seed files, laziness. No sockets."""

from __future__ import annotations

import tracemalloc
from itertools import islice
from pathlib import Path

import pytest

from crawlrunner.errors import SpecError, TemplateError
from crawlrunner.follow import normalize_url
from crawlrunner.plan import count_requests, plan_target
from crawlrunner.spec import load_spec, load_spec_text
from crawlrunner.templates import Template


def test_template_encodes_values_in_urls_but_not_whole_url_values() -> None:
    template = Template.compile("/search/{term}?page={page}&raw={{x}}")
    assert template.render({"term": "a b/c?", "page": 2}, url=True) == "/search/a%20b/c%3F?page=2&raw={x}"
    assert Template.compile("{url}").render({"url": "http://x/?a=1"}, url=True) == "http://x/?a=1"
    with pytest.raises(TemplateError, match="line break"):
        Template.compile("/a/{id}").render({"id": "1\r\nX-Evil: 1"}, url=True)


def test_numbers_and_booleans_render_as_their_text_in_urls() -> None:
    # Numbers take a fast path (no quoting, no line-break check): the same text as the general one.
    template = Template.compile("/item/{n}?flag={flag}&q={q}")
    assert template.render({"n": 20000, "flag": True, "q": 1.5}, url=True) == "/item/20000?flag=true&q=1.5"
    assert template.render({"n": -3, "flag": False, "q": "a b"}, url=True) == "/item/-3?flag=false&q=a%20b"
    assert template.render({"n": 0, "flag": None, "q": 10**20}) == "/item/0?flag=&q=100000000000000000000"


@pytest.mark.parametrize(
    ("source", "names", "rendered"),
    [
        ("{ viewer { login } }", (), "{ viewer { login } }"),
        ("/a/{id", (), "/a/{id"),
        ("/a/id}", (), "/a/id}"),
        ("{ id }", (), "{ id }"),
        ("{id-x}", (), "{id-x}"),
        ("{{id}}", (), "{id}"),
        ("{{{id}}}", ("id",), "{7}"),
        ("user(id: {id}) { name }", ("id",), "user(id: 7) { name }"),
        ("{1id}", (), "{1id}"),
    ],
)
def test_only_identifier_placeholders_are_template_syntax(source: str, names: tuple[str, ...], rendered: str) -> None:
    template = Template.compile(source)
    assert template.names == names
    assert template.render({"id": 7}) == rendered


def test_vars_expand_as_a_cartesian_product_in_order() -> None:
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://h'}\ntargets:\n  - name: t\n    url: /{a}/{b}\n"
        "    vars: {a: {from: 1, to: 3}, b: [x, y]}\n"
    )
    urls = [p.url for p in plan_target(spec.targets[0])]
    assert urls == ["http://h/1/x", "http://h/1/y", "http://h/2/x", "http://h/2/y", "http://h/3/x", "http://h/3/y"]
    assert count_requests(spec.targets[0]) == 6


def test_a_million_value_template_is_expanded_lazily() -> None:
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://h'}\ntargets:\n  - name: t\n    url: /item/{id}\n"
        "    vars: {id: {from: 1, to: 1000000}}\n"
    )
    tracemalloc.start()
    try:
        plans = plan_target(spec.targets[0])
        first = list(islice(plans, 3))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [p.url for p in first] == ["http://h/item/1", "http://h/item/2", "http://h/item/3"]
    assert peak < 1_000_000  # a million plans would take hundreds of MB
    assert count_requests(spec.targets[0]) == 1_000_000


def test_seed_files_csv_jsonl_and_text(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("sku,lang\nA1,en\nB2,de\n")
    (tmp_path / "b.jsonl").write_text('{"sku": "C3"}\n\n{"sku": "D4"}\n')
    (tmp_path / "c.txt").write_text("# comment\nhttp://h/x\n\n/y\n")
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        "name: p\nhttp: {base_url: 'http://h'}\ntargets:\n"
        "  - {name: csv, url: '/p/{sku}?l={lang}', seeds: a.csv}\n"
        "  - {name: jsonl, url: '/p/{sku}/{n}', seeds: b.jsonl, vars: {n: [1, 2]}}\n"
        "  - {name: text, seeds: c.txt}\n"
    )
    spec = load_spec(spec_path)
    assert [p.url for p in plan_target(spec.target("csv"))] == ["http://h/p/A1?l=en", "http://h/p/B2?l=de"]
    assert [p.url for p in plan_target(spec.target("jsonl"))] == [
        "http://h/p/C3/1", "http://h/p/C3/2", "http://h/p/D4/1", "http://h/p/D4/2"
    ]  # fmt: skip
    assert [p.url for p in plan_target(spec.target("text"))] == ["http://h/x", "http://h/y"]


def test_params_headers_and_bodies_are_templated() -> None:
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://h'}\ntargets:\n  - name: t\n    url: /s\n    method: POST\n"
        "    vars: {q: [shoes]}\n    params: {q: '{q}', n: 5}\n    headers: {X-Q: 'q={q}'}\n"
        "    json: {query: '{q}', exact: '{q}-1', size: 10}\n"
    )
    plan = next(plan_target(spec.targets[0]))
    assert plan.url == "http://h/s?q=shoes&n=5"
    assert plan.headers["X-Q"] == "q=shoes"
    assert plan.json_body == {"query": "shoes", "exact": "shoes-1", "size": 10}


def test_a_seed_value_with_a_line_break_makes_an_invalid_request_not_a_header(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text('token\n"a\r\nX-Injected: 1"\n')
    (tmp_path / "spec.yaml").write_text(
        "name: p\nhttp: {base_url: 'http://h'}\ntargets:\n  - {name: t, url: /x, seeds: s.csv, headers: {X-T: '{token}'}}\n"
    )
    plan = next(plan_target(load_spec(tmp_path / "spec.yaml").targets[0]))
    assert plan.invalid == "the value of {token} contains a line break"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "  - {name: t, url: '/x/{nope}'}",
            "s.yaml:4:20: targets[0].url: template variable {nope} is not defined (known: none; from vars or seeds)",
        ),
        ("  - {name: c, parent: ghost, url: '/x'}", "targets[0].parent: no target named 'ghost' (targets: c)"),
        (
            "  - {name: a, parent: b, url: '/{id}'}\n  - {name: b, parent: a, url: '/{id}'}",
            "targets[0].parent: parent targets form a cycle: a → b → a",
        ),
        ("  - {name: t, url: /x, seeds: missing.csv}", "targets[0].seeds: seed file 'missing.csv' not found"),
        ("  - {name: t, url: /x, paginate: {type: offset}}", "targets[0].paginate: offset pagination needs 'limit'"),
        (
            "  - {name: t, url: /x, paginate: {type: link_header, param: p}}",
            "targets[0].paginate.param: 'param' does not apply to link_header pagination",
        ),
        (
            "  - {name: t, url: /x, follow: {allow: ['(']}}",
            "targets[0].follow.allow[0]: invalid regular expression '('",
        ),
        (
            "  - {name: t, url: /x, extract: {fields: {a: {regex: '(x'}}}}",
            "targets[0].extract.fields.a.regex: invalid regular expression '(x'",
        ),
        ("  - {name: t, url: /x, vars: {i: {from: 5, to: 1}}}", "targets[0].vars.i.to: 'to' (1) is below 'from' (5)"),
    ],
)
def test_semantic_spec_errors_are_located(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(f"name: p\nhttp: {{base_url: 'http://h'}}\ntargets:\n{text}\n", "s.yaml")
    assert any(message in str(p) for p in caught.value.problems), caught.value.problems
    assert all(p.line > 0 for p in caught.value.problems)


GRAPHQL = "{ viewer { login repositories(first: 5) { nodes { name } } } }"


def test_a_graphql_json_body_is_sent_unchanged() -> None:
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://h'}\ntargets:\n  - name: t\n    url: /graphql\n    method: POST\n"
        f"    json: {{query: '{GRAPHQL}', variables: {{}}, literal: '{{{{x}}}}'}}\n",
        "s.yaml",
        environ={},
    )
    plan = next(plan_target(spec.targets[0]))
    assert plan.invalid is None
    assert plan.json_body == {"query": GRAPHQL, "variables": {}, "literal": "{x}"}


def test_a_graphql_json_body_with_a_variable_renders_only_the_variable() -> None:
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://h'}\ntargets:\n  - name: t\n    url: /graphql\n    method: POST\n"
        "    vars: {login: [octocat]}\n"
        "    json: {query: 'query { user(login: \"{login}\") { name } }'}\n",
        "s.yaml",
        environ={},
    )
    assert next(plan_target(spec.targets[0])).json_body == {"query": 'query { user(login: "octocat") { name } }'}


@pytest.mark.parametrize("url", ["/items/{id", "/items/id}", "/items/{ id }"])
def test_a_stray_brace_in_a_url_template_is_a_spec_error(url: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(
            f"name: p\nhttp: {{base_url: 'http://h'}}\ntargets:\n  - name: t\n    url: '{url}'\n    vars: {{id: [1]}}\n",
            "s.yaml",
            environ={},
        )
    assert [p.path for p in caught.value.problems] == ["targets[0].url"]


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTP://Example.COM:80/a#frag", "http://example.com/a"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x?b=1&a=2", "https://example.com:8443/x?b=1&a=2"),
        ("mailto:someone@example.com", None),
        ("javascript:void(0)", None),
        ("tel:+123", None),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_url_normalisation(url: str, normal: str | None) -> None:
    assert normalize_url(url) == normal
