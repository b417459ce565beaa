import stat

from lhd import upgrade


def test_move_env_keeps_value_verbatim(tmp_path):
    (tmp_path / ".env").write_text("A='1'\nSECRET='$apr1$x'\nB='2'\n")
    message = upgrade.move_env(tmp_path, "SECRET", ".env", ".env.hasura")
    assert message == "moved SECRET from .env to .env.hasura"
    assert (tmp_path / ".env").read_text() == "A='1'\nB='2'\n"
    assert (tmp_path / ".env.hasura").read_text() == "SECRET='$apr1$x'\n"
    assert stat.S_IMODE((tmp_path / ".env.hasura").stat().st_mode) == 0o600


def test_move_env_with_rename(tmp_path):
    (tmp_path / ".env").write_text("LUCKY_PORT='5050'\n")
    upgrade.move_env(tmp_path, "LUCKY_PORT", ".env", ".env.ports", "APP_PORT")
    assert (tmp_path / ".env.ports").read_text() == "APP_PORT='5050'\n"


def test_rename_in_same_file(tmp_path):
    (tmp_path / ".env").write_text("A='1'\nLUCKY_PORT='5050'\nB='2'\n")
    message = upgrade.move_env(tmp_path, "LUCKY_PORT", ".env", ".env", "APP_PORT")
    assert message == "renamed LUCKY_PORT to APP_PORT in .env"
    assert (tmp_path / ".env").read_text() == "A='1'\nAPP_PORT='5050'\nB='2'\n"


def test_target_value_wins(tmp_path):
    (tmp_path / ".env").write_text("X='old'\n")
    (tmp_path / ".env.x").write_text("X='new'\n")
    assert (
        upgrade.move_env(tmp_path, "X", ".env", ".env.x") == "kept X already in .env.x"
    )
    assert (tmp_path / ".env").read_text() == "\n"
    assert (tmp_path / ".env.x").read_text() == "X='new'\n"


def test_missing_source_or_name_is_a_no_op(tmp_path):
    assert (
        upgrade.move_env(tmp_path, "X", ".env", ".env.x")
        == ".env not found; nothing to move"
    )
    (tmp_path / ".env").write_text("Y='1'\n")
    assert (
        upgrade.move_env(tmp_path, "X", ".env", ".env.x")
        == "X not in .env; nothing to move"
    )
    assert not (tmp_path / ".env.x").exists()


def test_main_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("X='1'\n")
    assert upgrade.main(["move-env", "X", ".env", ".env.x"]) == 0
    assert (
        "moved X from .env to .env.x" in (tmp_path / ".lhd" / "upgrade.log").read_text()
    )
