"""openhumans_sync, openhumans_message and openhumans_remove against the sandbox."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from openhumans.management.progress import Progress
from openhumans.models import OpenHumansMember


@pytest.fixture
def master(sandbox: Any, settings: Any) -> Any:
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    return sandbox


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_sync_marks_members_who_left_unnoticed_and_reports_unknown_ones(
    master: Any, member_factory: Any
) -> None:
    alice, bob = member_factory("alice"), member_factory("bob")
    carol = master.create_member(username="carol")["project_member_id"]
    master.leave(alice.oh_id)  # no webhook URL configured: the webhook is missed

    dry = run("openhumans_sync", "--dry-run")
    assert f"would mark member {alice.oh_id} deauthorized" in dry
    assert not OpenHumansMember.objects.get(pk=alice.oh_id).oh_deauth

    out = run("openhumans_sync")
    assert OpenHumansMember.objects.get(pk=alice.oh_id).oh_deauth
    assert not OpenHumansMember.objects.get(pk=bob.oh_id).oh_deauth
    assert f"member {carol} is on Open Humans but unknown here" in out
    assert "1 left unnoticed" in out and "1 unknown here" in out
    assert "0 left unnoticed" in run("openhumans_sync")  # nothing left to mark


def test_sync_fails_with_the_renewal_page_when_the_master_token_expired(
    master: Any, member_factory: Any
) -> None:
    member_factory("alice")
    master.expire_master_token()
    with pytest.raises(CommandError, match="direct-sharing/projects/manage/") as info:
        run("openhumans_sync")
    assert master.master_token not in str(info.value)


def test_message_to_selected_members(master: Any) -> None:
    a, b, c = (master.create_member()["project_member_id"] for _ in range(3))
    out = run(
        "openhumans_message", "--subject", "Hi", "--message", "Body", "--member", a, "--member", b
    )
    assert "sent 'Hi' to 2 member(s)" in out
    assert "members messaged: 2/2" in out  # plain lines when not on a terminal
    assert sorted(m["project_member_id"] for m in master.inbox()) == sorted([a, b])


def test_message_to_active_local_members_from_files(
    master: Any, member_factory: Any, tmp_path: Any
) -> None:
    alice, bob = member_factory("alice"), member_factory("bob")
    OpenHumansMember.objects.filter(pk=bob.oh_id).update(oh_deauth=True)
    (tmp_path / "s.txt").write_text("Weekly news\n")
    (tmp_path / "m.txt").write_text("Hello {{ PROJECT_MEMBER_ID }}")
    run(
        "openhumans_message",
        "--subject-file", str(tmp_path / "s.txt"),
        "--message-file", str(tmp_path / "m.txt"),
        "--active",
    )  # fmt: skip
    inbox = master.inbox()
    assert [m["project_member_id"] for m in inbox] == [alice.oh_id]
    assert inbox[0]["message"] == f"Hello {alice.oh_id}"
    assert inbox[0]["project_subject"] == "Weekly news"


def test_message_all_and_dry_run(master: Any) -> None:
    ids = {master.create_member()["project_member_id"] for _ in range(2)}
    assert "would send" in run(
        "openhumans_message", "--subject", "S", "--message", "M", "--all", "--dry-run"
    )
    assert master.inbox() == []
    run("openhumans_message", "--subject", "S", "--message", "M", "--all")
    assert {m["project_member_id"] for m in master.inbox()} == ids


def test_message_refused_exits_non_zero(master: Any) -> None:
    with pytest.raises(CommandError, match="refused"):
        run("openhumans_message", "--subject", "S", "--message", "M", "--member", "00000000")


def test_remove_deauthorizes_on_open_humans_and_here(master: Any, member_factory: Any) -> None:
    alice, bob = member_factory("alice"), member_factory("bob")
    assert "would remove" in run("openhumans_remove", alice.oh_id, "--dry-run")
    assert master.member(alice.oh_id)["revoked"] is False
    out = run("openhumans_remove", alice.oh_id)
    assert "removed 1 member(s)" in out
    assert master.member(alice.oh_id)["revoked"] is True
    assert OpenHumansMember.objects.get(pk=alice.oh_id).oh_deauth
    assert not OpenHumansMember.objects.get(pk=bob.oh_id).oh_deauth


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    tty = FakeTerminal()
    bar = Progress(tty, 4, "done")
    for _ in range(4):
        bar.advance()
    bar.finish()
    assert "\rdone [" + "#" * 30 + "] 4/4" in tty.getvalue()

    log = io.StringIO()
    lines = Progress(log, 4, "done", every=3600)
    for _ in range(4):
        lines.advance()
    lines.finish()
    assert log.getvalue() == "done: 1/4\ndone: 4/4\n"
