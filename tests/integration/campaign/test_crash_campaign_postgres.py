"""The crash campaign (test_crash_campaign.py: 30+ SIGKILLs of `docklock apply` at random
points, then one un-killed apply must converge with everything recorded and `ledger
verify` OK) with the workspace's state, lock and ledger in PostgreSQL (issue 14): a
killed apply's session ends and frees the lock, and nothing it wrote is lost or torn.
The audit reads state and ledger through the workspace's backend."""
from __future__ import annotations

from pathlib import Path

import campaignhelp
import pytest
import test_crash_campaign as campaign
from conftest import PodmanHarness

pytestmark = [pytest.mark.podman, pytest.mark.campaign]


def test_apply_killed_at_random_points_on_postgres_converges(
        podman: PodmanHarness, tmp_path: Path, pg_conninfo: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKLOCK_CAMPAIGN_PG", pg_conninfo)
    real = campaignhelp.make_workspace

    def make(root: Path, cluster: str, specs: str) -> Path:
        out = real(root, cluster, specs)
        text = (out / "docklock.yaml").read_text().rstrip().rstrip("}")
        (out / "docklock.yaml").write_text(
            text + ", backend: {type: postgres, connectionEnv: DOCKLOCK_CAMPAIGN_PG}}\n")
        return out

    monkeypatch.setattr(campaign, "make_workspace", make)
    real_envs = campaign.campaign_envs

    def envs(harness: PodmanHarness, folder: Path) -> campaignhelp.Envs:
        made = real_envs(harness, folder)
        made.url["DOCKLOCK_CAMPAIGN_PG"] = pg_conninfo
        if made.private is not None:
            made.private["DOCKLOCK_CAMPAIGN_PG"] = pg_conninfo
        return made

    monkeypatch.setattr(campaign, "campaign_envs", envs)
    campaign.test_apply_killed_at_random_points_then_converges_with_everything_recorded(
        podman, tmp_path)
