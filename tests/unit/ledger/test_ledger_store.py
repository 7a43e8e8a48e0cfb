"""Ledger storage: entry fields, leaves, the tree sidecar, torn lines, locking, helpers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_helpers import Built, Clock

from docklock.errors import LedgerError, WorkspaceError
from docklock.ledger import (
    CompactRange,
    Entry,
    EntryType,
    HybridSigner,
    Ledger,
    cluster_name,
    git_commit,
    verify_ledger,
)
from docklock.ledger.merkle import leaf_hash
from docklock.ledger.store import KEY_ROTATION_SUFFIX, TreeState, payload_digest
from docklock.workspace import WorkspacePaths


def lines_of(ledger: Ledger) -> list[bytes]:
    return ledger.entries_path.read_bytes().split(b"\n")[:-1]


def test_entry_fields_and_leaf(workspace: WorkspacePaths, signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t", clock=Clock(), who="alice@host", commit="c" * 40)
    a = ledger.append("plan", {"changes": 2, "addrs": ("x", "y")}, serial=7)
    b = ledger.append(EntryType.APPLY_START, {"plan": "digest"})
    assert (a.seq, a.actor, a.commit, a.serial, a.type) == (0, "alice@host", "c" * 40, 7,
                                                            EntryType.PLAN)
    assert a.time == "2025-01-01T00:00:00.000001Z"
    assert a.payload == {"changes": 2, "addrs": ["x", "y"]}  # as readers will see it
    assert a.payload_digest == "sha256:" + hashlib.sha256(
        b'{"addrs":["x","y"],"changes":2}').hexdigest()
    assert a.prev == ""
    assert b.prev == a.leaf_hash().hex()
    assert b.serial is None
    raw = lines_of(ledger)
    assert raw == [a.line(), b.line()]
    assert leaf_hash(raw[0]) == hashlib.sha256(b"\x00" + raw[0]).digest()
    assert Entry.from_line(raw[1]) == b
    assert json.loads(raw[0])["type"] == "plan"


def test_all_entry_types_accepted_and_others_refused(workspace: WorkspacePaths,
                                                     signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    for t in EntryType:
        ledger.append(t, {"t": t.value})
    assert [e.type for e in ledger.entries()] == list(EntryType)
    with pytest.raises(ValueError, match="destroy-everything"):
        ledger.append("destroy-everything", {})


def test_key_rotation_lines_end_with_the_suffix(workspace: WorkspacePaths,
                                                signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    ledger.append("key-rotation", {"zzz": {"type": "plan"}})
    assert lines_of(ledger)[0].endswith(KEY_ROTATION_SUFFIX)


def test_tree_sidecar_tracks_appends(workspace: WorkspacePaths, signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    cr = CompactRange()
    for i in range(11):
        ledger.append("change", {"i": i})
        cr.append(leaf_hash(lines_of(ledger)[-1]))
        ledger.close()  # tree.json is written on close, at checkpoints, every 64 appends
        stored = TreeState.from_dict(json.loads(ledger.tree_path.read_text()))
        assert stored.size == i + 1
        assert stored.range.hashes == cr.hashes
        assert stored.offset == ledger.entries_path.stat().st_size
        assert stored.head == leaf_hash(lines_of(ledger)[-1])
    for i in range(64):
        ledger.append("change", {"i": i})
    assert json.loads(ledger.tree_path.read_text())["size"] == 75
    ledger.append("change", {})
    ledger.checkpoint(signer)
    assert json.loads(ledger.tree_path.read_text())["size"] == 76


def test_a_lagging_sidecar_is_caught_up_by_the_next_reader(workspace: WorkspacePaths,
                                                           signer: HybridSigner) -> None:
    with Ledger(workspace, "t") as first:
        first.append("change", {"i": 0})
    second = Ledger(workspace, "t")
    for i in range(1, 5):
        second.append("change", {"i": i})  # not saved to tree.json yet
    assert json.loads(second.tree_path.read_text())["size"] == 1
    third = Ledger(workspace, "t")
    assert third.size == 5
    entry = third.append("change", {"i": 5})
    assert entry.seq == 5
    assert entry.prev == leaf_hash(lines_of(third)[4]).hex()
    # A lagging cache is not a problem; that nothing is signed yet is.
    unsigned = verify_ledger(workspace).problem
    assert unsigned is not None
    assert "no signed checkpoint" in unsigned.message
    third.checkpoint(signer)
    assert verify_ledger(workspace).ok


def test_append_does_not_reread_the_file(workspace: WorkspacePaths,
                                         signer: HybridSigner) -> None:
    """An edit early in the file (same length) goes unnoticed by append, which only
    trusts tree.json and the file size; verify is what finds it."""
    ledger = Ledger(workspace, "t")
    for i in range(5):
        ledger.append("change", {"i": i})
    ledger.checkpoint(signer)
    data = bytearray(ledger.entries_path.read_bytes())
    data[data.index(b'"i":1')+4] = ord("9")
    ledger.entries_path.write_bytes(bytes(data))
    fresh = Ledger(workspace, "t")
    fresh.append("change", {"i": 5})
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert report.problem.seq == 1


def test_catch_up_after_crash_between_write_and_sidecar(workspace: WorkspacePaths,
                                                       signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t", clock=Clock())
    ledger.append("change", {"i": 0})
    ledger.close()
    before = ledger.tree_path.read_bytes()
    ledger.append("change", {"i": 1})
    ledger.close()
    ledger.tree_path.write_bytes(before)  # as if we crashed before tree.json was replaced
    again = Ledger(workspace, "t", clock=Clock())
    entry = again.append("change", {"i": 2})
    assert entry.seq == 2
    assert entry.prev == leaf_hash(lines_of(again)[1]).hex()
    again.checkpoint(signer)
    assert verify_ledger(workspace).ok


def test_missing_sidecar_is_rebuilt(workspace: WorkspacePaths, signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    for i in range(6):
        ledger.append("change", {"i": i})
    ledger.checkpoint(signer)
    ledger.tree_path.unlink()
    again = Ledger(workspace, "t")
    assert again.size == 6
    again.append("change", {"i": 6})
    again.checkpoint(signer)
    assert verify_ledger(workspace).ok


def test_torn_last_line_is_reported_never_dropped(workspace: WorkspacePaths,
                                                  signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    for i in range(3):
        ledger.append("change", {"i": i})
    ledger.checkpoint(signer)
    # Not the remains of one of our own appends (D20): reported, never auto-repaired.
    fragment = b'{"seq":3,"garbage'
    with ledger.entries_path.open("ab") as f:
        f.write(fragment)
    again = Ledger(workspace, "t")
    with pytest.raises(LedgerError, match="line 4 is incomplete") as info:
        again.append("change", {"i": 3})
    assert info.value.location is not None
    assert info.value.location.line == 4
    assert "ledger repair" in info.value.hint
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.line) == (3, 4)
    assert "incomplete" in report.problem.message
    # The fragment is still there: nothing was silently dropped.
    assert ledger.entries_path.read_bytes().endswith(fragment)

    moved = again.repair()
    assert len(moved) == 1
    assert moved[0].read_bytes() == fragment
    assert not ledger.entries_path.read_bytes().endswith(fragment)
    again.append("change", {"i": 3})
    again.checkpoint(signer)
    assert verify_ledger(workspace).ok


def test_torn_checkpoint_line_is_reported(workspace: WorkspacePaths,
                                          signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    ledger.append("change", {})
    ledger.checkpoint(signer)
    with ledger.checkpoints_path.open("ab") as f:
        f.write(b'{"note":"docklock')
    with pytest.raises(LedgerError, match="checkpoint line 2 is incomplete"):
        ledger.checkpoint(signer)
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert report.problem.checkpoint == 2
    assert ledger.repair()
    assert verify_ledger(workspace).ok


def test_checkpoint_is_a_noop_when_nothing_changed(workspace: WorkspacePaths,
                                                   signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    first = ledger.checkpoint(signer)  # the empty tree can be checkpointed too
    assert first.size == 0
    ledger.append("plan", {})
    a = ledger.checkpoint(signer)
    b = ledger.checkpoint(signer)
    assert a == b
    assert len(ledger.checkpoints()) == 2
    assert ledger.latest_checkpoint() == a
    assert a.compact_range().root() == a.root


def test_checkpoint_refuses_to_sign_a_damaged_cache(workspace: WorkspacePaths,
                                                    signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    for i in range(4):
        ledger.append("change", {"i": i})
    ledger.checkpoint(signer)
    ledger.append("change", {"i": 4})
    state = json.loads(ledger.tree_path.read_text())
    state["hashes"][0] = "00" * 32
    ledger.tree_path.write_text(json.dumps(state))
    fresh = Ledger(workspace, "t")
    with pytest.raises(LedgerError, match=r"tree\.json does not match"):
        fresh.checkpoint(signer)
    assert len(fresh.checkpoints()) == 1


def test_checkpoint_refuses_when_entries_shrank(workspace: WorkspacePaths,
                                                signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    for i in range(3):
        ledger.append("change", {"i": i})
    ledger.checkpoint(signer)
    ledger.entries_path.write_bytes(b"\n".join(lines_of(ledger)[:2]) + b"\n")
    ledger.tree_path.unlink()
    with pytest.raises(LedgerError, match="covers 3 entries but the ledger holds 2") as info:
        Ledger(workspace, "t").checkpoint(signer)
    assert "truncated" in info.value.hint


def test_tail_and_entries_from(build: Callable[..., Built]) -> None:
    built = build(groups=(5, 4, 3), tail=2)
    ledger = built.ledger
    assert [e.seq for e in ledger.tail(3)] == [11, 12, 13]
    assert [e.seq for e in ledger.tail(100)] == list(range(14))
    assert ledger.tail(0) == []
    assert [e.seq for e in ledger.entries(start=10)] == [10, 11, 12, 13]
    assert [e.seq for e in ledger.entries()] == list(range(14))


def test_payload_must_be_an_object(workspace: WorkspacePaths, signer: HybridSigner) -> None:
    with pytest.raises(LedgerError):
        Ledger(workspace, "t").append("plan", [1, 2])  # type: ignore[arg-type]
    assert payload_digest({"b": 1, "a": 2}) == payload_digest({"a": 2, "b": 1})


@pytest.mark.parametrize(("field", "value"), [
    ("seq", -1), ("seq", "1"), ("serial", "2"), ("time", 5), ("payload", [1]),
    ("type", "unknown"), ("prev", "xyz"), ("commit", 3),
])
def test_entry_validation(field: str, value: object) -> None:
    good = {"seq": 0, "time": "t", "actor": "a", "commit": None, "serial": None,
            "type": "plan", "payload": {}, "payload_digest": payload_digest({}), "prev": ""}
    Entry.from_dict(good)
    with pytest.raises(LedgerError):
        Entry.from_dict(good | {field: value})
    with pytest.raises(LedgerError, match="unexpected"):
        Entry.from_dict(good | {"extra": 1})


def test_concurrent_appenders_get_distinct_sequence_numbers(workspace: WorkspacePaths,
                                                            signer: HybridSigner) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from docklock.workspace import WorkspacePaths\n"
        "from docklock.ledger import Ledger\n"
        "l = Ledger(WorkspacePaths(Path(sys.argv[1])), 't')\n"
        "for i in range(40):\n"
        "    l.append('change', {'writer': sys.argv[2], 'i': i})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(workspace.root), w])
             for w in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    ledger = Ledger(workspace, "t")
    assert [e.seq for e in ledger.entries()] == list(range(80))
    ledger.checkpoint(signer)
    assert verify_ledger(workspace).ok


def test_git_commit_reads_refs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    sub = repo / "sub" / "dir"
    sub.mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert git_commit(sub) is None  # unborn branch
    (repo / ".git" / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    assert git_commit(sub) == "a" * 40
    (repo / ".git" / "refs" / "heads" / "main").unlink()
    (repo / ".git" / "packed-refs").write_text(
        "# pack-refs with: peeled\n" + "b" * 40 + " refs/heads/main\n")
    assert git_commit(repo) == "b" * 40
    (repo / ".git" / "HEAD").write_text("c" * 40 + "\n")  # detached
    assert git_commit(repo) == "c" * 40
    # A linked worktree: .git is a file pointing at the real git dir.
    wt = tmp_path / "wt"
    wt.mkdir()
    gitdir = repo / ".git" / "worktrees" / "wt"
    gitdir.mkdir(parents=True)
    (gitdir / "HEAD").write_text("ref: refs/heads/feature\n")
    (gitdir / "commondir").write_text("../..\n")
    (repo / ".git" / "refs" / "heads" / "feature").write_text("d" * 40 + "\n")
    (wt / ".git").write_text(f"gitdir: {gitdir}\n")
    assert git_commit(wt) == "d" * 40


def test_git_commit_of_this_checkout_matches_git() -> None:
    here = Path(__file__).resolve().parent
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                          text=True, check=False)
    if proc.returncode == 0:
        assert git_commit(here) == proc.stdout.strip()
    else:
        assert git_commit(here) is None


def test_cluster_name(workspace: WorkspacePaths) -> None:
    assert cluster_name(workspace) == "t"
    # B9: a new ledger's origin carries the name (for people) and a random id (unique)
    origin = Ledger.open(workspace).origin
    assert origin.startswith("docklock.io/ledger/t/")
    assert len(origin.rsplit("/", 1)[1]) == 16
    workspace.config.write_text("apiVersion: docklock.io/v1\nkind: Cluster\nspec: {}\n")
    with pytest.raises(WorkspaceError, match=r"metadata\.name"):
        cluster_name(workspace)
    workspace.config.write_text("kind: [unclosed\n")
    with pytest.raises(WorkspaceError):
        cluster_name(workspace)


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "a" * 64, "x.y"])
def test_cluster_name_must_pass_the_schema(workspace: WorkspacePaths, name: str) -> None:
    # The name is signed into every checkpoint's origin: `validate` must accept it first.
    workspace.config.write_text(f"apiVersion: docklock.io/v1\nkind: Cluster\n"
                                f"metadata: {{name: '{name}'}}\n")
    with pytest.raises(WorkspaceError, match=r"docklock\.yaml") as info:
        cluster_name(workspace)
    assert info.value.location is not None
    assert (info.value.location.file, info.value.location.line) == ("docklock.yaml", 3)
    assert "docklock validate" in info.value.hint


def test_cluster_name_reads_only_docklock_yaml(workspace: WorkspacePaths) -> None:
    (workspace.root / "specs").mkdir()
    (workspace.root / "specs" / "broken.yaml").write_text("kind: [unclosed\n")
    assert cluster_name(workspace) == "t"


def test_iter_lines_strict_and_lenient_about_a_torn_last_line(workspace: WorkspacePaths,
                                                              signer: HybridSigner) -> None:
    ledger = Ledger(workspace, "t")
    ledger.append("change", {"i": 0})
    ledger.append("change", {"i": 1})
    complete = list(ledger.iter_lines())
    assert len(complete) == 2
    with ledger.entries_path.open("ab") as f:
        f.write(b'{"torn')
    with pytest.raises(LedgerError, match="incomplete"):
        list(ledger.iter_lines())
    assert list(ledger.iter_lines(strict=False)) == complete
    offset = len(complete[0]) + 1
    assert list(ledger.iter_lines(offset, strict=False)) == complete[1:]
