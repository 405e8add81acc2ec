"""The argument parser of `ims`."""

import pytest

from ims_cli.main import main


def test_up_help_documents_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["up", "--help"])

    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for variable in (
        "IMS_DATA_DIR",
        "IMS_PG_PORT",
        "IMS_DATABASE_URL_BASE",
        "IMS_KAFKA_PORT",
        "IMS_KAFKA_PARTITIONS",
        "IMS_READY_TIMEOUT_S",
        "CUSTOMER_HTTP_PORT",
        "APPROVAL_HTTP_PORT",
        "MISA_SYNC_HTTP_PORT",
        "REFERENCE_HTTP_PORT",
        "MISA_SIM_PORT",
    ):
        assert variable in text


def test_up_refuses_a_bad_setting_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMS_KAFKA_PORT", "not-a-port")

    assert main(["up"]) == 2
    assert "IMS_KAFKA_PORT" in capsys.readouterr().err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_ttl_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["token", "sales1", "--ttl", "0"])
    assert "must be positive" in capsys.readouterr().err
