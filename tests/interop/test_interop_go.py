"""DockLock's ledger artefacts checked by implementations DockLock did not write.

A real workspace signs checkpoints with the real `docklock` CLI while a DockLock witness
(over real HTTP) cosigns them; then the Go checker verifies:
- the standard Ed25519 note line with golang.org/x/mod/sumdb/note (note.Open),
- the witness's cosignature/v1 and the checkpoint body with transparency-dev/formats
  (NewVerifierForCosignatureV1, log.ParseCheckpoint),
- inclusion proofs from `docklock ledger proof` and consistency proofs between the
  checkpoints, plus every (index, size) of synthetic trees, with transparency-dev/merkle
  (proof.VerifyInclusion / VerifyConsistency, RFC 6962 hasher).
Tampered inputs must make the Go checker fail, so it demonstrably checks something.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gochecker import interop_checker

from docklock.ledger.merkle import consistency_proof, inclusion_proof, leaf_hash, root_of
from docklock.ledger.note import parse_note
from docklock.witness.client import get_checkpoint
from docklock.witness.server import add_log, init_witness, make_server

WITNESS = "witness.interop/w1"
__all__ = ["interop_checker"]  # the session fixture, imported so pytest finds it


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _cli(*args: str) -> str:
    """The installed `docklock` CLI as a real process (tests/conftest.py's run_cli; that
    module is shadowed here by this folder's conftest)."""
    env = dict(os.environ, NO_COLOR="1")
    env.pop("DOCKLOCK_KEY_PASSPHRASE", None)
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    r = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def _check(checker: Path, tmp: Path, data: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp / f"input-{len(list(tmp.glob('input-*')))}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return subprocess.run([str(checker), str(path)], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture(params=["ed25519", "ml-dsa-44"])
def witnessed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A workspace with 4 checkpoints, each cosigned by an in-process witness over HTTP
    (Ed25519 cosignatures, type 0x04, or ML-DSA-44 ones, type 0x06)."""
    folder = tmp_path / "w"
    cosigner = init_witness(folder, WITNESS, request.param)
    ws = tmp_path / "ws"
    _cli("init", str(ws), "--name", "interop")
    _cli("keys", "init", "-C", str(ws))
    origin, log_vkey = _cli("witness", "log-key", "-C", str(ws)).split()
    add_log(folder, origin, log_vkey)
    server = make_server(folder, "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with (ws / "docklock.yaml").open("a", encoding="utf-8") as f:
            f.write(f"  ledger:\n    witnesses:\n      - url: {url}\n"
                    f"        key: {cosigner.vkey.render()}\n")
        for i in range(4):
            (ws / "specs" / f"svc{i}.yaml").write_text(
                "apiVersion: docklock.io/v1\nkind: Service\n"
                f"metadata: {{name: svc{i}}}\n"
                "spec: {image: localhost/demo/busybox:1, command: [sleep, '60']}\n",
                encoding="utf-8")
            _cli("plan", "--no-refresh", "-C", str(ws))
        view = get_checkpoint(url, origin)  # the monitoring endpoint's cosigned note
        assert view.status == 200
        yield {"ws": ws, "origin": origin, "log_vkey": log_vkey,
               "witness_vkey": cosigner.vkey.render(), "witness_view": view.body}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _ledger(ws: Path) -> tuple[list[bytes], list[dict[str, Any]], list[dict[str, Any]]]:
    led = ws / ".docklock" / "ledger"
    lines = led.joinpath("entries.jsonl").read_bytes().split(b"\n")[:-1]
    cps = [json.loads(x) for x in led.joinpath("checkpoints.jsonl").read_text().splitlines()]
    cosigs = [json.loads(x) for x in led.joinpath("cosignatures.jsonl").read_text().splitlines()]
    return lines, cps, cosigs


def test_checkpoints_cosignatures_and_proofs_verify_in_go(
        interop_checker: Path, witnessed: dict[str, Any], tmp_path: Path) -> None:
    ws = witnessed["ws"]
    lines, cps, cosigs = _ledger(ws)
    leaves = [leaf_hash(line) for line in lines]
    latest = cps[-1]
    note = parse_note(latest["note"])
    size = int(note.text.split("\n")[1])
    assert size == len(lines) >= 4
    cosig = next(c for c in cosigs if c["size"] == size)
    checkpoint = latest["note"] + cosig["cosignature"]  # the log's lines + the witness's
    # Inclusion proofs as `docklock ledger proof` hands them out.
    inclusions = []
    for seq in range(size):
        proof = json.loads(_cli("ledger", "proof", str(seq), "-C", str(ws)))
        inclusions.append({"index": seq, "size": proof["tree_size"],
                           "leaf_hash": b64(leaf_hash(proof["entry"].encode())),
                           "proof": proof["path"],
                           "root": note.text.split("\n")[2]})
    # Consistency proofs between every pair of signed checkpoints.
    sizes = sorted({int(parse_note(c["note"]).text.split("\n")[1]) for c in cps})
    roots = {s: root_of(leaves[:s]) for s in sizes}
    consistencies = [{"size1": a, "size2": b, "root1": b64(roots[a]), "root2": b64(roots[b]),
                      "proof": [b64(h) for h in consistency_proof(leaves, a, b)]}
                     for a in sizes for b in sizes if 0 < a <= b]
    data = {"origin": witnessed["origin"], "log_vkey": witnessed["log_vkey"],
            "checkpoint": checkpoint, "witness_vkey": witnessed["witness_vkey"],
            "inclusion": inclusions, "consistency": consistencies}
    r = _check(interop_checker, tmp_path, data)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["ok"] is True
    assert result["size"] == size
    assert result["root"] == note.text.split("\n")[2]
    assert result["verified"] == [f"sumdb/note:{witnessed['origin']}",
                                  f"formats/cosignature-v1:{WITNESS}"]
    assert (result["inclusions"], result["consistencies"]) == (size, len(consistencies))

    # What the witness serves to monitors (GET <sha256(origin)>/checkpoint) is the same
    # checkpoint with the log's lines and its cosignature, as one note.
    r = _check(interop_checker, tmp_path, data | {"checkpoint": witnessed["witness_view"],
                                                  "inclusion": [], "consistency": []})
    assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)["size"], json.loads(r.stdout)["root"]) == (
        result["size"], result["root"])

    # Tampering is caught by the same independent code.
    forged_root = b64(root_of([*leaves[:-1], leaf_hash(b"forged")]))
    tampered = {
        "edited checkpoint": data | {"checkpoint": checkpoint.replace(
            note.text.split("\n")[2], forged_root, 1)},
        "cosignature over another checkpoint": data | {"checkpoint": latest["note"] + next(
            c["cosignature"] for c in cosigs if c["size"] != size)},
        "wrong inclusion path": data | {"inclusion": [
            inclusions[0] | {"proof": [forged_root, *inclusions[0]["proof"][1:]]}]},
        "wrong consistency root": data | {"consistency": [
            consistencies[0] | {"root2": forged_root}]},
    }
    for what, bad in tampered.items():
        r = _check(interop_checker, tmp_path, bad)
        assert r.returncode == 1, (what, r.stdout)


def test_merkle_proofs_of_every_shape_verify_in_go(interop_checker: Path,
                                                   tmp_path: Path) -> None:
    """DockLock's RFC 9162 proof generation for every (index, size) up to 33 leaves and
    every (size1, size2) up to 33, against transparency-dev/merkle's verifiers."""
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(33)]
    inclusions = [{"index": i, "size": n, "leaf_hash": b64(leaves[i]),
                   "proof": [b64(h) for h in inclusion_proof(leaves, i, n)],
                   "root": b64(root_of(leaves[:n]))}
                  for n in range(1, 34) for i in range(n)]
    consistencies = [{"size1": a, "size2": b, "root1": b64(root_of(leaves[:a])),
                      "root2": b64(root_of(leaves[:b])),
                      "proof": [b64(h) for h in consistency_proof(leaves, a, b)]}
                     for b in range(1, 34) for a in range(1, b + 1)]
    # The log/witness part needs a signed note; reuse a tiny one signed here.
    from docklock.ledger.keys import HybridSigner
    from docklock.ledger.note import CheckpointBody, note_verifier_key, sign_note

    signer = HybridSigner.generate("mldsa65-ed25519")
    origin = "example.org/docklock-interop"
    text = CheckpointBody(origin, 33, root_of(leaves)).text()
    data = {"origin": origin, "log_vkey": note_verifier_key(origin, signer.public_key),
            "checkpoint": sign_note(text, origin, signer), "witness_vkey": "",
            "inclusion": inclusions, "consistency": consistencies}
    r = _check(interop_checker, tmp_path, data)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert (result["inclusions"], result["consistencies"]) == (len(inclusions),
                                                               len(consistencies))
