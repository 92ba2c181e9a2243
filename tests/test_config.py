"""Service configuration: file < environment < flags, typed errors, secrets never shown."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from market.cli import app
from market.config import AggregatorConfig, TrainerConfig, load_config
from market.errors import ConfigError

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def write(tmp_path, text: str):
    path = tmp_path / "svc.toml"
    path.write_text(text)
    return path


def test_precedence_file_then_environment_then_flags(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        'rpc_url = "http://127.0.0.1:1"\nconfirmations = 1\npoll_interval = 9.0\n'
        '[trainer]\nmin_reward = "0.25"\nprojects = [3]\n[aggregator]\nround_interval = 5.0\n',
    )
    monkeypatch.setenv("MARKET_CONFIRMATIONS", "2")
    config = load_config(TrainerConfig, path, poll_interval=0.5)
    assert config.rpc_url == "http://127.0.0.1:1"  # file
    assert config.confirmations == 2  # environment beats the file
    assert config.poll_interval == 0.5  # a flag beats both
    assert config.min_reward_wei == 25 * 10**16 and config.projects == [3]
    agg = load_config(AggregatorConfig, path)
    assert agg.round_interval == 5.0  # each service reads its own section only


def test_unknown_or_invalid_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="confirmation"):
        load_config(TrainerConfig, write(tmp_path, "confirmation = 3\n"))
    with pytest.raises(ConfigError, match="chunk"):
        load_config(AggregatorConfig, None, chunk=0)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(TrainerConfig, write(tmp_path, "rpc_url = \n"))
    with pytest.raises(ConfigError, match="ETH amount"):
        load_config(TrainerConfig, None, min_reward="-1")
    for listen in ("8650", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match="host:port"):
            load_config(AggregatorConfig, None, api_listen=listen)
    with pytest.raises(ConfigError, match="application_window"):
        load_config(AggregatorConfig, None, application_window=-1)


def test_config_show_masks_every_secret(tmp_path, monkeypatch):
    path = write(tmp_path, 'db_url = "postgresql+psycopg://svc:hunter2@127.0.0.1:5432/m"\n')
    monkeypatch.setenv("MARKET_PRIVATE_KEY", KEY)
    monkeypatch.setenv("MARKET_KEYSTORE_PASSWORD", "opensesame")
    result = CliRunner().invoke(app, ["config", "show", "trainer", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    for secret in ("hunter2", KEY[2:], "opensesame"):
        assert secret not in result.output
    shown = json.loads(result.output)
    assert shown["private_key"] == "***" and shown["keystore_password"] == "***"
    assert shown["db_url"] == "postgresql+psycopg://svc:***@127.0.0.1:5432/m"
    assert shown["kind"] == "trainer"


def test_the_documented_example_file_is_valid(tmp_path):
    import textwrap

    import market.config

    doc = market.config.__doc__
    example = textwrap.dedent(doc.split("::\n", 1)[1])
    path = write(tmp_path, example)
    trainer = load_config(TrainerConfig, path)
    assert trainer.confirmations == 2 and trainer.data_schemas == ["digits-8x8"]
    assert trainer.aggregator_api == "http://127.0.0.1:8650"
    aggregator = load_config(AggregatorConfig, path)
    assert aggregator.projects == [1, 4] and aggregator.api_listen == "127.0.0.1:8650"
    assert load_config(AggregatorConfig, None).api_listen is None  # the API is off by default
