"""The Dockerfile and compose.yaml: parsed and checked here (nothing is built and no registry
is asked); ``docker compose config`` (or the older ``docker-compose config``) validates the compose
file where either is installed (``.ci/run`` installs Debian's ``docker-compose``)."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT


def dockerfile_instructions():
    """``[(INSTRUCTION, arguments)]`` of the Dockerfile, continuation lines joined."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def compose():
    with open(os.path.join(ROOT, "compose.yaml")) as f:
        return yaml.safe_load(f)


def test_the_image_runs_tracker_web():
    commands = [json.loads(args) for name, args in dockerfile_instructions() if name == "CMD"]
    assert len(commands) == 1 and commands[0][:2] == ["tracker", "web"]
    assert commands[0][commands[0].index("--host") + 1] == "0.0.0.0"  # reachable from outside the container


def test_the_image_installs_the_project_with_postgresql_and_keeps_state_in_volumes():
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11")
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert 'pip install -e ".[pg]"' in runs and "postgresql-client" in runs
    volumes = [json.loads(args) for name, args in instructions if name == "VOLUME"]
    assert volumes == [["/app/instance", "/app/geoip"]]
    env = " ".join(args for name, args in instructions if name == "ENV")
    assert "TRACKER_INSTANCE_PATH=/app/instance" in env and "TRACKER_GEOIP_DIR=/app/geoip" in env


def test_compose_runs_web_worker_and_postgresql_with_volumes_for_instance_and_geoip():
    spec = compose()
    assert set(spec["services"]) == {"db", "web", "worker"}
    assert set(spec["volumes"]) >= {"pgdata", "instance", "geoip"}
    db, web, worker = (spec["services"][name] for name in ("db", "web", "worker"))
    assert db["image"].startswith("postgres:")
    assert web["command"][:2] == ["tracker", "web"] and worker["command"] == ["tracker", "worker"]
    for service in (web, worker):
        assert service["build"] == "."
        assert (
            service["environment"]["TRACKER_DATABASE_URL"] == "postgresql://tracker:tracker@db:5432/tracker"
        )
        assert set(service["volumes"]) == {"instance:/app/instance", "geoip:/app/geoip"}
        assert service["depends_on"]["db"] == {"condition": "service_healthy"}
    assert web["ports"] == ["8000:8000"]
    assert db["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pg_isready" in db["healthcheck"]["test"]


def compose_command():
    """``docker compose`` or ``docker-compose``, whichever is installed, else None."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.e2e  # runs docker compose
def test_docker_compose_accepts_the_file():
    command = compose_command()
    if command is None:
        message = "neither docker compose nor docker-compose is installed (apt-get install docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: the compose file must be validated)")
        pytest.skip(message)
    result = subprocess.run(
        command + ["-f", "compose.yaml", "config", "--quiet"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
