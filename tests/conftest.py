"""Shared fixtures: real local storage, a real S3-compatible server on loopback, and
the app built on either."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: speed is measured by bench/, and on a loaded 2-core machine
# an example taking 500 ms instead of 200 made a property test fail as "flaky".
settings.register_profile("traceglider", deadline=None)
settings.load_profile("traceglider")

# boto3 must never reach AWS from a test: fake credentials, loopback endpoints only.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
})
for _name in list(os.environ):
    if _name.startswith("TG_"):
        del os.environ[_name]

# after the environment is clean: the package must not see a developer's TG_ settings
from tests.helpers import free_port  # noqa: E402


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on a free loopback port: real HTTP."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def make_bucket(endpoint: str) -> str:
    import boto3

    bucket = f"tg-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_storage(s3_endpoint: str):  # type: ignore[no-untyped-def]
    from traceglider.storage.s3 import S3Storage

    return S3Storage(f"s3://{make_bucket(s3_endpoint)}/data", endpoint_url=s3_endpoint)


@pytest.fixture
def local_storage(tmp_path: Path):  # type: ignore[no-untyped-def]
    from traceglider.storage.local import LocalStorage

    return LocalStorage(tmp_path / "data")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Each test using this runs once on local disk and once on S3."""
    return request.getfixturevalue(f"{request.param}_storage")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local Spark session (on loopback, no UI) for the tests that read the
    dataset with Spark: it takes seconds to start."""
    import shutil
    import sys

    assert shutil.which("java"), "Spark needs Java 17 (Debian's openjdk-17-jre-headless)"
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[1]").appName("tg-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
               .getOrCreate())
    try:
        yield session
    finally:
        session.stop()
