"""The cluster deployment of `medkg feeds run`: the Flink/portable options reach Beam's pipeline options, and what
cannot work (Kafka as the buffer, which is not built; Flink without the job-server jar, which Beam would download;
remote workers with the embedded servers on 127.0.0.1; local processes on a cluster runner) is refused with the
reason before anything starts. Nothing here contacts a cluster or downloads anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import FlinkRunnerOptions, PortableOptions, StandardOptions

from pipelines.streaming import (
    KAFKA_NOT_BUILT,
    DeploymentError,
    check_deployment,
    deployment_args,
    streaming_options,
)

ROOT = Path(__file__).resolve().parents[1]
REMOTE = {"remote_buffer": True, "remote_graph": True}


@pytest.fixture()
def jar(tmp_path):
    path = tmp_path / "beam-runners-flink-1.19-job-server-2.78.0.jar"
    path.write_bytes(b"PK\x03\x04")  # stands for the mirror's jar: only its presence is checked before the run
    return path


def test_flink_options_reach_beam(jar):
    opts = streaming_options(deployment_args("FlinkRunner", "flink-jm:8081", str(jar), environment_type="DOCKER",
                                             environment_config="registry.internal/medkg-worker:1"))
    assert opts.view_as(StandardOptions).runner == "FlinkRunner"
    assert opts.view_as(StandardOptions).streaming is True
    flink = opts.view_as(FlinkRunnerOptions)
    assert (flink.flink_master, flink.flink_job_server_jar) == ("flink-jm:8081", str(jar))
    portable = opts.view_as(PortableOptions)
    assert (portable.environment_type, portable.environment_config) == ("DOCKER", "registry.internal/medkg-worker:1")
    check_deployment(opts, **REMOTE)  # a complete cluster deployment is accepted


def test_local_default_is_fnapirunner_in_memory_and_accepted():
    opts = streaming_options(deployment_args())
    assert opts.view_as(StandardOptions).runner == "FnApiRunner"
    check_deployment(opts, remote_buffer=False, remote_graph=False, processes=2)


@pytest.mark.parametrize(("args", "kw", "reason"), [
    ({"runner": "FlinkRunner", "flink_master": "jm:8081"}, REMOTE, "--flink-job-server-jar"),
    ({"runner": "FlinkRunner", "flink_master": "jm:8081", "flink_job_server_jar": "/nowhere/flink-job-server.jar"},
     REMOTE, "no such file"),
    ({"runner": "PortableRunner"}, REMOTE, "--job-endpoint"),
    ({"runner": "PortableRunner", "job_endpoint": "js:8099"}, {"remote_buffer": False, "remote_graph": True},
     "REDIS_URL"),
    ({"runner": "PortableRunner", "job_endpoint": "js:8099"}, {"remote_buffer": True, "remote_graph": False},
     "NEO4J_URI"),
    ({"runner": "PortableRunner", "job_endpoint": "js:8099"}, {**REMOTE, "processes": 2}, "--processes 2"),
])
def test_deployments_that_cannot_work_are_refused_with_the_reason(args, kw, reason):
    with pytest.raises(DeploymentError, match=reason.replace("-", r"\-")):
        check_deployment(streaming_options(deployment_args(**args)), **kw)


def test_loopback_job_server_may_use_the_embedded_servers():
    opts = streaming_options(deployment_args("PortableRunner", job_endpoint="localhost:8099",
                                             environment_type="LOOPBACK"))
    check_deployment(opts, remote_buffer=False, remote_graph=False)


def test_kafka_buffer_is_refused_as_not_built():
    with pytest.raises(DeploymentError) as exc:
        check_deployment(streaming_options(), buffer="kafka", **REMOTE)
    assert str(exc.value) == KAFKA_NOT_BUILT
    assert "not built" in KAFKA_NOT_BUILT and "REDIS_URL" in KAFKA_NOT_BUILT
    with pytest.raises(DeploymentError, match="unknown feed buffer"):
        check_deployment(streaming_options(), buffer="rabbitmq", **REMOTE)


def _feeds_run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDKG_FEEDS_DIR": str(tmp_path / "feeds"), "MEDKG_GRAPH_DIR": str(tmp_path / "graph")}
    for name in ("REDIS_URL", "NEO4J_URI"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-c", "from cli.main import app; app()", "feeds", "run", *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("args", "reason"), [
    (("--buffer", "kafka"), "Kafka as the feed buffer is not built"),
    (("--runner", "FlinkRunner", "--flink-master", "jm:8081"), "--flink-job-server-jar"),
    (("--runner", "FlinkRunner", "--flink-master", "jm:8081", "--flink-job-server-jar", "JAR"), "set REDIS_URL and NEO4J_URI"),
    (("--processes", "2", "--", "--runner=PortableRunner", "--job_endpoint=js:8099"), "--processes 2"),
])
def test_the_command_refuses_before_starting_anything(args, reason, tmp_path, jar):
    done = _feeds_run(*(str(jar) if a == "JAR" else a for a in args), tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert reason in " ".join(done.stderr.split()), done.stderr[-2000:]
    assert not (tmp_path / "feeds").exists() and not (tmp_path / "graph").exists(), "a server was started"
