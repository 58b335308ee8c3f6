"""compose.yaml and the Dockerfile as an operator relies on them: every Phoenix variable reaches the
sidecar, the image's settings are defaults the config file overrides, the trainer has an init (so
SIGTERM reaches the job), and the Docker socket's path is settable (rootless Docker)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from phoenix_sidecar.config.schema import key_specs

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))

import compose_env  # noqa: E402


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


def test_every_setting_variable_is_passed_to_the_sidecar_when_set() -> None:
    text = (REPO / "compose.yaml").read_text(encoding="utf-8")
    assert compose_env.render(text) == text, "run: python scripts/compose_env.py && python deploy/compose_cpu.py"
    env = compose()["services"]["sidecar"]["environment"]
    for spec in key_specs().values():
        if spec.env:
            assert spec.env in env and env[spec.env] is None, f"{spec.env} does not reach the sidecar from .env"
    assert env["GEMINI_API_KEY"] is None and env["OPENAI_API_KEY"] is None
    assert not any(name.startswith("PHOENIX_DEFAULT_") for name in env), "an unset name would erase the image's default"


def test_the_image_sets_defaults_not_settings_that_outrank_the_file() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    envs = " ".join(re.findall(r"^ENV (.+)$", dockerfile, flags=re.M))
    set_here = set(re.findall(r"\b(PHOENIX_[A-Z_]+)=", envs))
    assert set_here == {"PHOENIX_DEFAULT_WORKSPACE", "PHOENIX_DEFAULT_METRICS_ADDR"}


def test_the_trainer_has_an_init_and_a_grace_and_the_socket_path_is_a_variable() -> None:
    services = compose()["services"]
    assert services["trainer"]["init"] is True and services["trainer"]["stop_grace_period"]
    assert "${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock" in services["socket-proxy"]["volumes"]
    assert not any("/var/run/docker.sock:" in v and not v.startswith("${") for s in services.values()
                   for v in s.get("volumes", []))
