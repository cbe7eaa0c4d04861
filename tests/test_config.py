"""reconcile.yaml: typed value, file:line:col errors, did-you-mean, schema from the models."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from reconciler.config import (
    CONFIG_SCHEMA_FILE,
    GitSync,
    config_json_schema,
    load_config,
    pick,
    render_config_schema,
)
from reconciler.errors import ConfigError
from reconciler.scaffold import planned_files

ROOT = Path(__file__).resolve().parent.parent

FULL = textwrap.dedent("""\
    apiVersion: reconciler/v1
    kind: ReconcileConfig
    ledger:
      path: state/applied-ledger.jsonl
      git: {enabled: true, remote: upstream, branch: reconcile/ledger}
    gateways:
      - url: https://gw.example.com
      - orgId: o2
        url: https://gw2.example.com
        appKeyEnv: ENOS_O2_KEY
        appSecretEnv: ENOS_O2_SECRET
    pipelines:
      - {orgId: o1, pipelineId: p1, executionMode: 1, kafkaRate: 500, resourceConfig: {cpu: 2}}
    apply: {maxCells: 5000, concurrency: 8, pausePipelines: true}
    """)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reconcile.yaml"
    path.write_text(text)
    return path


def errors(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    return str(err.value)


def test_committed_schema_equals_generated() -> None:
    assert (ROOT / "schemas" / CONFIG_SCHEMA_FILE).read_text() == render_config_schema()


def test_full_config_loads_as_a_typed_value(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config is not None
    assert config.ledger_path == tmp_path / "state" / "applied-ledger.jsonl"
    assert config.git == GitSync("upstream", "reconcile/ledger")
    default, o2 = config.gateways
    assert (o2.org_id, o2.url, o2.app_key_env) == ("o2", "https://gw2.example.com", "ENOS_O2_KEY")
    assert default.org_id is None and default.url == "https://gw.example.com"
    assert default.app_key_env == "ENOS_APP_KEY" and default.app_secret_env == "ENOS_APP_SECRET"
    (resume,) = config.pipelines
    assert (resume.org_id, resume.pipeline_id, resume.execution_mode, resume.kafka_rate) == (
        "o1",
        "p1",
        1,
        500,
    )
    assert json.loads(resume.resource_config or "") == {"cpu": 2}
    assert (config.max_cells, config.concurrency, config.pause_pipelines) == (5000, 8, True)
    hash(config)  # frozen all the way down


def test_minimal_config_has_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "apiVersion: reconciler/v1\nkind: ReconcileConfig\n"))
    assert config is not None
    assert config.git == GitSync("origin", "main")
    assert config.ledger_path == tmp_path / "applied-ledger.jsonl"
    assert config.max_cells is None and config.gateways == () and config.pipelines == ()


def test_git_sync_off(tmp_path: Path) -> None:
    text = "apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {enabled: false}}\n"
    config = load_config(write(tmp_path, text))
    assert config is not None and config.git is None


def test_found_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config() is None  # no file: no config, not an error
    write(tmp_path, FULL)
    config = load_config()
    assert config is not None and config.ledger_path == Path("state/applied-ledger.jsonl")


def test_a_given_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_keys_name_the_place_and_the_likely_key(tmp_path: Path) -> None:
    text = FULL.replace("concurrency: 8", "concurency: 8").replace("    branch", "    brnch")
    text = text.replace("git: {enabled: true, remote: upstream, branch: reconcile/ledger}", "git: {remot: x}")
    message = errors(tmp_path, text)
    assert (
        "reconcile.yaml:5:" in message
        and "ledger.git.remot: unknown field; did you mean 'remote'?" in message
    )
    assert (
        "reconcile.yaml:14:" in message
        and "apply.concurency: unknown field; did you mean 'concurrency'?" in message
    )


def test_every_error_at_once_with_positions(tmp_path: Path) -> None:
    text = (
        FULL.replace("https://gw2.example.com", "ftp://gw2")
        .replace("ENOS_O2_KEY", "ENOS O2 KEY")
        .replace("kafkaRate: 500", "kafkaRate: '500'")
        .replace("maxCells: 5000", "maxCells: 0")
    )
    where = tmp_path / "reconcile.yaml"
    assert errors(tmp_path, text).splitlines() == [
        f"{where}:9:10: gateways[1].url: 'ftp://gw2' is not a valid URL (https://host/...)",
        f"{where}:10:16: gateways[1].appKeyEnv: 'ENOS O2 KEY' is not a valid environment variable name",
        f"{where}:13:62: pipelines[0].kafkaRate: expected an integer, got '500'",
        f"{where}:14:19: apply.maxCells: must be at least 1",
    ]


def test_duplicate_gateways_and_pipelines_are_named(tmp_path: Path) -> None:
    text = FULL.replace("  - orgId: o2\n", "  - orgId: o2\n    url: https://x.example.com\n  - orgId: o2\n")
    text = text.replace("apply:", "  - {orgId: o1, pipelineId: p1, executionMode: 1, kafkaRate: 1}\napply:")
    message = errors(tmp_path, text)
    assert "gateways[2]: o2 is already given in gateways[1]" in message
    assert "pipelines[1]: o1/p1 is already given in pipelines[0]" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: reconciler/v2\nkind: ReconcileConfig\n", "apiVersion: must be 'reconciler/v1'"),
        ("apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {path: ../x.jsonl}\n", "no '..'"),
        ("apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {branch: -x}}\n", "valid branch"),
        (
            "apiVersion: reconciler/v1\nkind: ReconcileConfig\nledger: {git: {enabled: yes}}\n",
            "expected true or false",
        ),
        ("- a\n", "must be one YAML mapping"),
        ("a: [\n", "YAML syntax error"),
        ("apiVersion: reconciler/v1\nkind: ReconcileConfig\napply: {}\napply: {}\n", "duplicate key 'apply'"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in errors(tmp_path, text)


def test_flags_win_then_the_file_then_the_default() -> None:
    assert pick(10, 20, 30) == 10
    assert pick(None, 20, 30) == 20
    assert pick(None, None, 30) == 30
    assert pick(False, True, True) is False  # a flag given as false still wins


def test_the_scaffolded_config_loads_and_validates_against_the_schema(tmp_path: Path) -> None:
    text = planned_files(max_cells=777)["reconcile.yaml"]
    config = load_config(write(tmp_path, text))
    assert config is not None and config.max_cells == 777 and config.pause_pipelines is True
    assert config.git == GitSync("origin", "main")
    data = YAML(typ="safe").load(text)
    assert list(Draft202012Validator(config_json_schema()).iter_errors(data)) == []
    assert list(Draft202012Validator(config_json_schema()).iter_errors(YAML(typ="safe").load(FULL))) == []
    bad = {**data, "apply": {"concurency": 1}}
    assert list(Draft202012Validator(config_json_schema()).iter_errors(bad)) != []
