"""terraform/ with the real terraform binary: `fmt -check`, `validate` and `terraform test` of
every module, and `public_cloud` applied and destroyed against a FAKE AWS API -- moto's
server on 127.0.0.1, never a real account. The AWS provider comes from the machine's
filesystem mirror (no registry access); tests skip, saying why, where terraform or the
mirror is missing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.core.server import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2] / "terraform"
MODULES = sorted(p.parent for p in ROOT.glob("modules/*/versions.tf"))
TERRAFORM = shutil.which("terraform")
MIRROR_GLOBS = ("/opt/tf-plugins", "/usr/share/terraform/plugins", "/root/.terraform.d/plugins")


def provider_mirror() -> Path | None:
    """The filesystem mirror holding hashicorp/aws (found by its provider binary)."""
    for root in MIRROR_GLOBS:
        for binary in Path(root).glob(
            "registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*"
        ):
            return binary.parents[5]  # MIRROR/registry.terraform.io/hashicorp/aws/V/OS_ARCH/bin
    return None


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if TERRAFORM is None:
        pytest.skip("no terraform binary on PATH: the Terraform checks need one")
    mirror = provider_mirror()
    if mirror is None:
        pytest.skip("no filesystem mirror holding terraform-provider-aws on this machine")
    config = tmp_path_factory.mktemp("tf") / "terraformrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
    )
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1"}


def tf(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(TERRAFORM), *args, "-no-color"] if args[0] != "fmt" else [str(TERRAFORM), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert done.returncode == 0, (
        f"terraform {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout


def copy_module(module: Path, tmp: Path) -> Path:
    target = tmp / module.name
    shutil.copytree(module, target, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    return target


def test_every_file_is_formatted(tf_env: dict[str, str]) -> None:
    tf(tf_env, ROOT, "fmt", "-check", "-recursive", "-diff")


def missing_providers(module: Path, mirror: Path) -> list[str]:
    """Providers the module requires that the mirror does not hold."""
    sources = re.findall(r'source\s*=\s*"([^"]+)"', (module / "versions.tf").read_text())
    return [s for s in sources if not (mirror / "registry.terraform.io" / s).is_dir()]


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_validates_and_its_tests_pass(
    module: Path, tf_env: dict[str, str], tmp_path: Path
) -> None:
    missing = missing_providers(module, Path(str(provider_mirror())))
    if missing:
        pytest.skip(
            f"{module.name} needs {', '.join(missing)}, not in this machine's provider mirror: "
            "checked statically by tests/unit/test_terraform_static.py"
        )
    work = copy_module(module, tmp_path)
    tf(tf_env, work, "init", "-backend=false", "-input=false")
    tf(tf_env, work, "validate")
    out = tf(tf_env, work, "test")
    assert "0 failed" in out, out
    assert "Success!" in out


@pytest.fixture
def fake_aws() -> Iterator[str]:
    """moto's server: a FAKE AWS API on 127.0.0.1, with AWS's managed IAM policies loaded."""
    server = Path(sys.executable).with_name("moto_server")  # from the project's virtualenv
    if not server.exists():
        pytest.skip("moto_server is missing (scripts/setup installs moto[server])")
    port = free_port()
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, "moto_server exited"
                assert time.monotonic() < deadline, "moto_server did not answer in 60 s"
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_public_cloud_applies_and_destroys_against_a_fake_aws(
    tf_env: dict[str, str], fake_aws: str, tmp_path: Path
) -> None:
    work = copy_module(ROOT / "modules" / "public_cloud", tmp_path)
    services = ["ec2", "eks", "iam", "kms", "s3", "sts"]
    endpoints = "\n".join(f'    {s} = "{fake_aws}"' for s in services)
    (work / "fake_aws_provider.tf").write_text(
        '# FAKE AWS: moto on 127.0.0.1 (tests only)\nprovider "aws" {\n'
        '  region                      = "eu-west-1"\n'
        '  access_key                  = "fake"\n  secret_key                  = "fake"\n'
        "  skip_credentials_validation = true\n  skip_metadata_api_check     = true\n"
        "  skip_requesting_account_id  = true\n  s3_use_path_style           = true\n"
        f"  endpoints {{\n{endpoints}\n  }}\n}}\n"
    )
    variables = [
        "-var", "zone=public-a",
        "-var", 'availability_zones=["eu-west-1a","eu-west-1b"]',
        "-var", "ray_workers={min_size=3,max_size=8}",
        "-var", "force_destroy_buckets=true",  # the fake AWS writes access logs into audit
    ]  # fmt: skip
    tf(tf_env, work, "init", "-backend=false", "-input=false")
    tf(tf_env, work, "apply", "-auto-approve", "-input=false", *variables)
    outputs = json.loads(tf(tf_env, work, "output", "-json"))
    assert outputs["cluster_name"]["value"] == "isthmus-public-a"
    assert outputs["ray_worker_bounds"]["value"] == {"min": 3, "max": 8}
    assert outputs["landing_bucket"]["value"].startswith("isthmus-public-a-landing-")
    state = json.loads(tf(tf_env, work, "show", "-json"))
    created = _resources(state["values"]["root_module"])
    assert len(created) >= 25, created
    destroyed = tf(tf_env, work, "destroy", "-auto-approve", "-input=false", *variables)
    assert f"Destroy complete! Resources: {len(created)} destroyed." in destroyed
    left = json.loads(tf(tf_env, work, "show", "-json"))
    assert not _resources(left.get("values", {}).get("root_module", {}))
    (tmp_path / "result.json").write_text(json.dumps({"created": len(created)}))


def _resources(module: dict[str, Any]) -> list[str]:
    return [str(r["address"]) for r in module.get("resources", []) if r.get("mode") == "managed"]
