"""Plain Podman API calls go through the stdlib client: a refresh against the real
Podman imports neither podman-py nor requests (issue 12 item 9); a create, which needs
podman-py, still works on the same runtime and its calls are counted with the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import PodmanHarness

SCRIPT = """
import json, sys
from docklock.objects import ContainerConfig
from docklock.runtime import connect
with connect({url!r}) as rt:
    rt.ping()
    live = rt.refresh("lightcheck")
    images = rt.list_images()
    before = sorted({{m.split(".")[0] for m in sys.modules}}
                    & {{"podman", "requests", "urllib3"}})
    calls = rt.api_calls
    rt.create_container(ContainerConfig(name="light-one", image={image!r},
                                        command=("true",), stop_timeout=0))
    exists = rt.container_exists("light-one")
    removed = rt.remove_container("light-one")
    after = sorted({{m.split(".")[0] for m in sys.modules}} & {{"podman", "requests"}})
    print(json.dumps({{"before": before, "after": after, "calls": calls,
                      "live_calls": live.api_calls, "has_image": {image!r} in images.tags,
                      "exists": exists, "removed": removed, "total": rt.api_calls}}))
"""


def test_refresh_needs_no_podman_py_and_create_still_works(podman: PodmanHarness) -> None:
    code = textwrap.dedent(SCRIPT).format(url=podman.url, image=podman.image)
    out = subprocess.run([sys.executable, "-c", code], env=podman.env, capture_output=True,
                         text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["before"] == []
    assert data["calls"] == 5  # ping, three lists, images
    assert data["live_calls"] == 3
    assert data["has_image"] is True
    assert (data["exists"], data["removed"]) == (True, True)
    assert data["after"] == ["podman", "requests"]
    assert data["total"] >= data["calls"] + 3  # create (podman-py, counted), exists, remove
