"""The deployment files: the SAM template lints and transforms, the Dockerfiles point at
commands that exist, and the container's entry command serves /healthz."""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "lambda" / "template.yaml"
LAMBDA_DOCKERFILE = ROOT / "deploy" / "lambda" / "Dockerfile"
SERVER_DOCKERFILE = ROOT / "deploy" / "Dockerfile"


# -- a small Dockerfile reader: instructions with continuations and comments removed --

def dockerfile(path: Path) -> list[tuple[str, str]]:
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # Docker drops comment lines, also inside a continuation
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    assert not pending, f"{path} ends inside a continuation"
    return instructions


def last(instructions: list[tuple[str, str]], keyword: str) -> str:
    values = [rest for kw, rest in instructions if kw == keyword]
    assert values, f"no {keyword} instruction"
    return values[-1]


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    return instructions[starts[-1]:]


def env_of(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = re.sub(r"\$\{?PATH\}?", "$PATH", value)
    return env


def resolve(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


# -- the Lambda image -----------------------------------------------------------------

def test_the_lambda_image_uses_a_supported_python_from_the_aws_base_image() -> None:
    base = last(dockerfile(LAMBDA_DOCKERFILE), "FROM")
    match = re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.(\d+)", base)
    assert match, base
    assert int(match.group(1)) >= 12


def test_the_lambda_image_runs_the_handler_of_the_package() -> None:
    instructions = dockerfile(LAMBDA_DOCKERFILE)
    (handler,) = exec_form(last(instructions, "CMD"))
    assert handler == "traceglider.aws.handler"
    assert callable(resolve(handler))
    assert env_of(instructions)["TG_MODE"] == "lambda"
    install = " ".join(rest for kw, rest in instructions if kw == "RUN")
    assert "/tmp/src" in install and "LAMBDA_TASK_ROOT" in install


def test_the_package_that_the_lambda_image_installs_brings_mangum() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project.get("optional-dependencies", {}).get("aws", [])]
    assert any(re.match(r"mangum\b", r, re.I) for r in requirements), requirements


# -- the SAM template -----------------------------------------------------------------

def test_cfn_lint_finds_nothing_in_the_template() -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())",
         "--format", "parseable", str(TEMPLATE)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    """The template as CloudFormation, the way `sam deploy` hands it over (with the image
    URIs that `sam build`/`sam package` fill in)."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(TEMPLATE.read_text())
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["ImageUri"] = (
                f"123456789012.dkr.ecr.us-east-1.amazonaws.com/traceglider:{name.lower()}"
            )

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        result: dict[str, Any] = transform(copy.deepcopy(template), {}, NoManagedPolicies())
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved
    return result


def by_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_the_template_transforms_into_functions_an_http_api_a_bucket_and_a_schedule(
    transformed: dict[str, Any],
) -> None:
    kinds = {v["Type"] for v in transformed["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage",
            "AWS::Lambda::Permission", "AWS::S3::Bucket", "AWS::Scheduler::Schedule"} <= kinds
    assert "CollectorUrl" in transformed["Outputs"]


def test_both_functions_run_handlers_that_exist_from_the_same_image(
    transformed: dict[str, Any],
) -> None:
    functions = by_type(transformed, "AWS::Lambda::Function")
    collector = functions["CollectorFunction"]["Properties"]
    compact = functions["CompactFunction"]["Properties"]
    assert collector["PackageType"] == compact["PackageType"] == "Image"
    assert "ImageConfig" not in collector  # the image's CMD: traceglider.aws.handler
    (command,) = compact["ImageConfig"]["Command"]
    assert callable(resolve(command))
    assert collector["Environment"]["Variables"]["TG_MODE"] == "lambda"
    assert collector["Environment"]["Variables"]["TG_STORAGE"] == {
        "Fn::Sub": "s3://${EventsBucket}/${Prefix}"
    }


def test_the_bucket_is_private_encrypted_kept_and_expires_old_events(
    transformed: dict[str, Any],
) -> None:
    bucket = transformed["Resources"]["EventsBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    retention = [r for r in props["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert retention and retention[0]["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert retention[0]["Prefix"] == {"Fn::Sub": "${Prefix}/events/"}


FIREHOSE_STATEMENT = {"Effect": "Allow", "Action": ["firehose:PutRecordBatch", "firehose:DescribeDeliveryStream"],
                      "Resource": {"Fn::GetAtt": ["EventsStream", "Arn"]}}


def _statements(role: dict[str, Any], *, firehose: bool = False) -> list[dict[str, Any]]:
    """The role's S3 statements (and with `firehose`, only its Firehose statements)."""
    found = []
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:  # only in firehose delivery
                condition, then, otherwise = statement["Fn::If"]
                assert condition == "UseFirehose" and otherwise == {"Ref": "AWS::NoValue"}, statement
                if firehose:
                    found.append(then)
            elif not firehose:
                found.append(statement)
    return found


@pytest.mark.parametrize(
    ("role", "object_actions"),
    [
        ("CollectorFunctionRole", {"s3:PutObject", "s3:GetObject"}),
        ("CompactFunctionRole", {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}),
    ],
)
def test_each_function_may_touch_only_its_prefix(
    transformed: dict[str, Any], role: str, object_actions: set[str]
) -> None:
    statements = _statements(transformed["Resources"][role])
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a.startswith("s3:") and "*" not in a for a in actions), actions
        if actions == ["s3:ListBucket"]:
            assert statement["Resource"] == {"Fn::GetAtt": ["EventsBucket", "Arn"]}
            assert statement["Condition"] == {"StringLike": {"s3:prefix": [
                {"Fn::Sub": "${Prefix}/*"}, {"Fn::Sub": "${Prefix}.salts/*"}]}}
        elif statement["Resource"] == {"Fn::Sub": "${EventsBucket.Arn}/${Prefix}/_salts/*"}:
            assert actions == ["s3:DeleteObject"]  # the collector's one delete: old salts
        elif statement["Resource"] == {"Fn::Sub": "${EventsBucket.Arn}/${Prefix}.salts/*"}:
            # the salts' own prefix: the collector keeps them, the compaction deletes old ones
            assert set(actions) == ({"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
                                    if role == "CollectorFunctionRole" else {"s3:DeleteObject"})
        else:
            assert set(actions) == object_actions
            assert statement["Resource"] == {"Fn::Sub": "${EventsBucket.Arn}/${Prefix}/*"}
    granted = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert granted == object_actions | {"s3:ListBucket", "s3:DeleteObject"}
    managed = transformed["Resources"][role]["Properties"].get("ManagedPolicyArns", [])
    assert all(arn.endswith("service-role/AWSLambdaBasicExecutionRole") for arn in managed)
    firehose = _statements(transformed["Resources"][role], firehose=True)
    assert firehose == ([FIREHOSE_STATEMENT] if role == "CollectorFunctionRole" else [])


def test_firehose_delivers_gzipped_batches_under_incoming_and_failures_beside_them(
    transformed: dict[str, Any],
) -> None:
    stream = transformed["Resources"]["EventsStream"]
    assert stream["Condition"] == "UseFirehose"
    props = stream["Properties"]
    assert props["DeliveryStreamType"] == "DirectPut"
    destination = props["ExtendedS3DestinationConfiguration"]
    from traceglider.delivered import FAILED_PREFIX, INCOMING_PREFIX

    assert destination["Prefix"]["Fn::Sub"].startswith("${Prefix}/" + INCOMING_PREFIX)
    assert destination["ErrorOutputPrefix"]["Fn::Sub"].startswith("${Prefix}/" + FAILED_PREFIX)
    assert "!{firehose:error-output-type}" in destination["ErrorOutputPrefix"]["Fn::Sub"]
    assert destination["CompressionFormat"] == "GZIP"  # read by traceglider.delivered
    assert destination["BufferingHints"] == {"IntervalInSeconds": 900, "SizeInMBs": 128}
    assert destination["BucketARN"] == {"Fn::GetAtt": ["EventsBucket", "Arn"]}
    env = transformed["Resources"]["CollectorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["TG_DELIVERY"] == {"Ref": "Delivery"}
    assert env["TG_FIREHOSE_STREAM"] == {"Fn::If": ["UseFirehose", {"Ref": "EventsStream"}, ""]}
    assert transformed["Parameters"]["Delivery"]["Default"] == "firehose"
    assert set(transformed["Parameters"]["Delivery"]["AllowedValues"]) == {"firehose", "direct"}


def test_the_stream_may_only_write_under_incoming_for_this_account(transformed: dict[str, Any]) -> None:
    role = transformed["Resources"]["StreamRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
    statements = [st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]]
    by_action = {action: st["Resource"] for st in statements
                 for action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert all(st["Effect"] == "Allow" for st in statements)
    assert set(by_action) == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:GetBucketLocation",
                              "s3:ListBucketMultipartUploads", "logs:PutLogEvents"}
    assert by_action["s3:PutObject"] == [{"Fn::Sub": "${EventsBucket.Arn}/${Prefix}/incoming/*"},
                                         {"Fn::Sub": "${EventsBucket.Arn}/${Prefix}/incoming-failed/*"}]
    assert by_action["s3:GetBucketLocation"] == {"Fn::GetAtt": ["EventsBucket", "Arn"]}


def test_an_alarm_watches_firehose_deliveries(transformed: dict[str, Any]) -> None:
    alarm = transformed["Resources"]["StreamDeliveryAlarm"]["Properties"]
    assert alarm["MetricName"] == "DeliveryToS3.DataFreshness" and alarm["Threshold"] <= 3600
    assert alarm["AlarmActions"] == [{"Ref": "StreamAlarmTopic"}]


def test_the_function_url_is_optional_public_and_fronted_by_cloudfront(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    url = resources["CollectorFunctionUrl"]
    assert url["Condition"] == "HasFunctionUrl" and url["Properties"]["AuthType"] == "NONE"
    permissions = {resources[name]["Properties"]["Action"]: resources[name]
                   for name in ("CollectorUrlPermission", "CollectorUrlInvokePermission")}
    assert permissions["lambda:InvokeFunctionUrl"]["Properties"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["Properties"]["InvokedViaFunctionUrl"] is True
    assert all(p["Condition"] == "HasFunctionUrl" for p in permissions.values())
    distribution = resources["CollectorDistribution"]
    assert distribution["Condition"] == "UseCloudFront"
    config = distribution["Properties"]["DistributionConfig"]
    behaviour = config["DefaultCacheBehavior"]
    assert "POST" in behaviour["AllowedMethods"]
    assert behaviour["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert behaviour["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # all but Host
    assert [b["PathPattern"] for b in config["CacheBehaviors"]] == ["/t.js"]
    env = resources["CollectorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["TG_TRUSTED_PROXIES"] == {"Fn::If": ["UseCloudFront", "1", "0"]}
    assert transformed["Parameters"]["Frontend"]["Default"] == "api"


def test_the_http_api_allows_the_configured_sites_with_credentials(
    transformed: dict[str, Any],
) -> None:
    body = transformed["Resources"]["CollectorApi"]["Properties"]["Body"]
    cors = body["x-amazon-apigateway-cors"]["Fn::If"][1]
    assert cors["allowCredentials"] is True
    assert set(cors["allowMethods"]) == {"GET", "POST", "OPTIONS"}
    assert "Sites" in json.dumps(cors["allowOrigins"])
    integrations = [
        method["x-amazon-apigateway-integration"]
        for path in body["paths"].values() for method in path.values()
    ]
    assert {i["payloadFormatVersion"] for i in integrations} == {"2.0"}
    assert {"/", "/{proxy+}"} <= set(body["paths"])


# -- the long-running container --------------------------------------------------------

def test_the_server_image_is_slim_unprivileged_and_keeps_its_spool_on_a_volume() -> None:
    stage = final_stage(dockerfile(SERVER_DOCKERFILE))
    assert re.fullmatch(r"python:3\.1[2-9]-slim(-\w+)?", last(stage, "FROM")), last(stage, "FROM")
    user = last(stage, "USER")
    assert user not in ("root", "0")
    env = env_of(stage)
    volumes = exec_form(last(stage, "VOLUME"))
    assert env["TG_SPOOL_DIR"] in volumes and env["TG_STORAGE"] in volumes
    # a generated secret persists, on a volume the readers of the data do not get
    assert str(Path(env["TG_SECRET_FILE"]).parent) in volumes
    assert not Path(env["TG_SECRET_FILE"]).is_relative_to(env["TG_STORAGE"])
    assert last(stage, "EXPOSE") == env["TG_PORT"]
    assert int(env["TG_WORKERS"]) >= 1


def test_the_health_check_uses_python_rather_than_curl() -> None:
    check = last(final_stage(dockerfile(SERVER_DOCKERFILE)), "HEALTHCHECK")
    command = exec_form(check.split(" CMD ", 1)[1])
    assert command[0] == "python" and "urllib" in command[-1] and "/healthz" in command[-1]
    assert "curl" not in check and "wget" not in check


def test_the_entry_command_is_the_console_script() -> None:
    command = exec_form(last(final_stage(dockerfile(SERVER_DOCKERFILE)), "CMD"))
    assert command[:2] == ["traceglider", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "traceglider" in scripts


def test_the_build_context_leaves_out_the_virtualenv_and_the_tests() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "tests"} <= ignored


def _container_env(stage: list[tuple[str, str]], tmp_path: Path) -> dict[str, str]:
    """The image's environment, with the image's paths mapped onto this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    image_env = env_of(stage)
    path = image_env.pop("PATH").replace("$PATH", env.get("PATH", ""))
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = re.sub(r"/opt/traceglider/bin", venv_bin, path)
    env.update(image_env)
    env.update({
        "TG_HOST": "127.0.0.1",  # loopback only in tests; the image listens on 0.0.0.0
        "TG_PORT": str(free_port()),
        "TG_STORAGE": str(tmp_path / "data"),
        "TG_SPOOL_DIR": str(tmp_path / "spool"),
        "TG_SECRET_FILE": str(tmp_path / "spool" / "secret"),
        "TG_SECRET": "test-secret-test-secret-test-secret-0123",
    })
    return env


def test_the_container_entry_command_serves_healthz_with_its_workers(tmp_path: Path) -> None:
    stage = final_stage(dockerfile(SERVER_DOCKERFILE))
    command = exec_form(last(stage, "CMD"))
    env = _container_env(stage, tmp_path)
    url = f"http://127.0.0.1:{env['TG_PORT']}/healthz"
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    status = response.status
                    health = json.loads(response.read())
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        assert status == 200, (process.poll(), _output(process))
        assert isinstance(health, dict)

        # The image's own HEALTHCHECK command, run as Docker would run it.
        check = exec_form(last(stage, "HEALTHCHECK").split(" CMD ", 1)[1])
        assert check[0] == "python"
        probe = subprocess.run([sys.executable, *check[1:]], env=env, timeout=30)
        assert probe.returncode == 0
    finally:
        # `docker stop` sends SIGTERM to the entry process; it must wind down in time.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail("the server did not stop within 20 s of SIGTERM")
        if process.stdout:
            process.stdout.close()


def _output(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        return "(still running)"
    assert process.stdout is not None
    return process.stdout.read().decode(errors="replace")[-3000:]
