"""Attacks on the ledger with a real witness process (`docklock witness serve`).

Each test starts its own witness on 127.0.0.1 (a free port), a workspace registered with
it, and drives both through the real `docklock` CLI: rollback to an older copy of
.docklock/, deletion of the ledger, and a fork (two copies that go different ways) are
caught by `ledger verify`, naming the witness and both sizes; the witness itself refuses
to cosign the rollback or the fork.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

from witnesshelp import Log
from witnessproc import (
    add_service,
    cli,
    make_workspace,
    ok,
    plan,
    set_witnesses,
    witness_process,
)

from docklock.witness.client import add_checkpoint_body, get_checkpoint, post_add_checkpoint


def _verify(ws: Path) -> tuple[int, dict[str, object], str]:
    r = cli("ledger", "verify", "--json", "-C", str(ws))
    return r.returncode, json.loads(r.stdout), r.stderr


def _entries(ws: Path) -> int:
    code, report, err = _verify(ws)
    assert code == 0, (report, err)
    return int(str(report["entries"]))


def _planned(ws: Path) -> None:
    r = plan(ws)
    assert r.returncode == 0, r.stderr


def test_rollback_to_an_older_copy_is_caught(tmp_path: Path) -> None:
    with witness_process(tmp_path / "w") as w:
        ws = make_workspace(tmp_path / "ws", w)
        _planned(ws)
        old_size = _entries(ws)
        shutil.copytree(ws / ".docklock", tmp_path / "backup")
        add_service(ws, "api")
        _planned(ws)
        new_size = _entries(ws)
        assert new_size > old_size
        # The attacker restores the older (perfectly valid, signed) copy.
        shutil.rmtree(ws / ".docklock")
        shutil.copytree(tmp_path / "backup", ws / ".docklock")
        code, report, err = _verify(ws)
        assert code == 1
        assert report["ok"] is False
        message = f"BEHIND witness {w.vkey.split('+')[0]}: the witness cosigned size {new_size}, "
        assert message in err
        assert f"holds {old_size} entries" in err
        # The local checks alone pass: only the witness knows.
        assert report["problem"] is None
        # And the next command cannot get the rolled-back ledger cosigned either.
        add_service(ws, "other")
        r = plan(ws)
        assert r.returncode == 0  # plan records best effort: a warning (review 3)
        assert "witness quorum not reached" in r.stderr
        assert "forked" in r.stderr or "rolled back" in r.stderr


def test_deleting_the_ledger_is_caught(tmp_path: Path) -> None:
    with witness_process(tmp_path / "w") as w:
        ws = make_workspace(tmp_path / "ws", w)
        _planned(ws)
        add_service(ws, "api")
        _planned(ws)
        size = _entries(ws)
        shutil.rmtree(ws / ".docklock" / "ledger")
        code, report, err = _verify(ws)
        assert code == 1, report
        assert f"witness {w.vkey.split('+')[0]} cosigned {size} entries" in err
        assert "deleted or replaced" in err


def test_fork_is_cosigned_once_and_caught(tmp_path: Path) -> None:
    with witness_process(tmp_path / "w") as w:
        a = make_workspace(tmp_path / "a", w)
        _planned(a)
        base = _entries(a)
        b = tmp_path / "b"
        shutil.copytree(a, b)  # a second copy of the workspace, keys and ledger included
        add_service(a, "api")
        _planned(a)
        add_service(b, "evil")
        r = plan(b)
        # B's checkpoint is signed locally, but the witness refuses it: a fork.
        assert r.returncode == 0  # plan records best effort: a warning (review 3)
        assert "not consistent with the size" in r.stderr
        assert "forked" in r.stderr
        assert w.vkey.split("+")[0] in r.stderr
        code_a, _, err_a = _verify(a)
        assert code_a == 0, err_a
        code_b, report_b, err_b = _verify(b)
        assert code_b == 1
        assert "DIVERGES from witness witness.test/w1 at size" in err_b
        assert "quorum is 1" in err_b  # B's newest checkpoint has no cosignature
        witnesses = report_b["witnesses"]
        assert isinstance(witnesses, dict)
        sizes = {v["status"]: (v["witness_size"], v["local_size"]) for v in witnesses["views"]}
        assert sizes["diverged"][0] > base
        shown = json.loads(ok("witness", "show", "--dir", str(w.folder), "--json"))
        assert [lg["size"] for lg in shown["logs"]] == [_entries(a)]
        assert shown["logs"][0]["refused"] >= 1  # B's signed fork is kept as evidence


def test_witness_refuses_rollback_and_fork_over_http(tmp_path: Path) -> None:
    log = Log.new(10)
    with witness_process(tmp_path / "w") as w:
        ok("witness", "add-log", "--dir", str(w.folder), log.origin, log.vkey)
        assert post_add_checkpoint(w.url, 0, [], log.note(8)).status == 200
        # Rollback: an older checkpoint is never cosigned, whatever `old` says.
        r = post_add_checkpoint(w.url, 0, [], log.note(5))
        assert (r.status, r.known_size()) == (409, 8)
        r = post_add_checkpoint(w.url, 8, [], log.note(5))
        assert r.status == 400
        # Fork: same size, other root; longer, diverging.
        fork = log.fork(6, 4)
        assert post_add_checkpoint(w.url, 8, [], fork.note(8)).status == 422
        from docklock.ledger.merkle import consistency_proof

        r = post_add_checkpoint(w.url, 8, consistency_proof(fork.leaves, 8, 10), fork.note(10))
        assert r.status == 422
        # Unknown log, bad signature, oversized body.
        other = Log.new(3, origin="docklock.io/ledger/unknown")
        assert post_add_checkpoint(w.url, 0, [], other.note(3)).status == 404
        imposter = Log(Log.new(0).signer, log.origin, log.leaves)
        assert post_add_checkpoint(w.url, 8, [], imposter.note(8)).status == 403
        big = add_checkpoint_body(8, [], log.note(10) + "\u2014 x/y " + "A" * 300_000 + "\n")
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(urllib.request.Request(
                w.url + "/add-checkpoint", data=big, method="POST"), timeout=10)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, ConnectionError):
            status = 413  # the server may close before the client finished sending
        assert status == 413
        # The monitoring view still shows size 8 with the log's root.
        view = get_checkpoint(w.url, log.origin)
        assert view.status == 200
        assert view.body.startswith(log.text(8))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_quorum_not_reached_fails_after_the_local_checkpoint(tmp_path: Path) -> None:
    with witness_process(tmp_path / "w1") as w1, \
            witness_process(tmp_path / "w2", name="witness.test/w2") as w2:
        ws = make_workspace(tmp_path / "ws", w1, w2)
        _planned(ws)
        dead = f"http://127.0.0.1:{_closed_port()}"
        set_witnesses(ws, w1, w2, urls={w2.vkey: dead})  # quorum: all (2)
        add_service(ws, "api")
        before = (ws / ".docklock" / "ledger" / "checkpoints.jsonl").read_text().count("\n")
        r = plan(ws)
        assert r.returncode == 0  # plan records best effort: a warning (review 3)
        assert "witness quorum not reached" in r.stderr
        assert "1 of 2" in r.stderr
        assert "unreachable" in r.stderr
        after = (ws / ".docklock" / "ledger" / "checkpoints.jsonl").read_text().count("\n")
        assert after == before + 1  # the checkpoint itself was written first
        code, report, err = _verify(ws)
        assert code == 1
        assert report["problem"] is None
        assert "quorum is 2" in err
        # With quorum 1 the same state verifies, and says which witness was not asked.
        set_witnesses(ws, w1, w2, urls={w2.vkey: dead}, quorum=1)
        code, report, err = _verify(ws)
        assert code == 0, err
        witnesses = report["witnesses"]
        assert isinstance(witnesses, dict)
        assert any("not reachable" in n for n in witnesses["notes"])


def test_client_recovers_its_witness_size_with_one_retry(tmp_path: Path) -> None:
    with witness_process(tmp_path / "w") as w:
        ws = make_workspace(tmp_path / "ws", w)
        _planned(ws)
        # The client forgets what the witness has seen: it sends old 0, gets 409 with the
        # witness's size, and retries once with a proof from there.
        (ws / ".docklock" / "ledger" / "cosignatures.jsonl").unlink()
        add_service(ws, "api")
        _planned(ws)
        code, report, err = _verify(ws)
        assert code == 0, err
        witnesses = report["witnesses"]
        assert isinstance(witnesses, dict)
        assert witnesses["cosigned"] == ["witness.test/w1"]


def test_without_witnesses_verify_says_rollback_is_undetectable(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ok("init", str(ws), "--name", "demo")
    ok("keys", "init", "-C", str(ws))
    _planned(ws)
    r = cli("ledger", "verify", "-C", str(ws))
    assert r.returncode == 0
    assert "rolled-back, replaced or deleted ledger cannot be detected" in r.stdout


def test_a_retired_key_is_refused_after_the_rotation_is_registered(tmp_path: Path) -> None:
    """After `keys rotate` the operator registers the new key with `add-log --rotate`;
    whoever still holds the OLD key must not get a consistent extension cosigned (it
    would make the owner's next checkpoint look like a fork)."""
    from docklock.ledger.keys import HybridSigner
    from docklock.ledger.merkle import consistency_proof

    old = Log.new(10)
    new = Log(HybridSigner.generate("mldsa65-ed25519"), old.origin, old.leaves)
    with witness_process(tmp_path / "w") as w:
        ok("witness", "add-log", "--dir", str(w.folder), old.origin, old.vkey)
        assert post_add_checkpoint(w.url, 0, [], old.note(4)).status == 200
        # A second key for a known origin is not silently added next to the first.
        r = cli("witness", "add-log", "--dir", str(w.folder), old.origin, new.vkey)
        assert r.returncode != 0
        assert "--rotate" in r.stderr
        out = ok("witness", "add-log", "--dir", str(w.folder), "--rotate", old.origin,
                 new.vkey)
        assert "1 retired key refused" in out
        assert post_add_checkpoint(w.url, 4, consistency_proof(new.leaves, 4, 6),
                                   new.note(6)).status == 200
        # The retired key's holder pushes a perfectly consistent extension: refused.
        r = post_add_checkpoint(w.url, 6, consistency_proof(old.leaves, 6, 8), old.note(8))
        assert r.status == 403
        assert "retired key" in r.body
        # ...also at the size the witness already has, and from scratch.
        assert post_add_checkpoint(w.url, 6, [], old.note(6)).status == 403
        # The witness did not move; the new key carries on.
        view = get_checkpoint(w.url, old.origin)
        assert view.body.startswith(new.text(6))
        assert post_add_checkpoint(w.url, 6, consistency_proof(new.leaves, 6, 8),
                                   new.note(8)).status == 200
        shown = json.loads(ok("witness", "show", "--dir", str(w.folder), "--json"))
        assert shown["logs"][0]["key"] == new.vkey
        assert shown["logs"][0]["retired_keys"] == [old.vkey]
