"""Every process's log lines carry time, level and logger, INFO kept (DESIGN §4.9); with
TRACKER_LOG_FORMAT=json, one JSON object a line. The web workers' lines are checked served, in
tests/faults; here the CLI's, as a real process."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from fault_helpers import LOG_LINE

from tracker.operations.process_logs import configure_logging

from conftest import ROOT


def lines_of(fmt):
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        configure_logging(fmt, stream=stream)
        logging.getLogger("tracker.example").info("a click on %s", "flow 1")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("tracker.example").exception("failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return stream.getvalue()


def test_text_lines_carry_time_level_logger_and_process():
    text = lines_of("text")
    assert LOG_LINE.match(text) and text.splitlines()[0].endswith(
        " tracker.example [%d] a click on flow 1" % os.getpid()
    )
    assert "ValueError: boom" in text


def test_json_lines_are_one_object_each():
    first, second = [json.loads(line) for line in lines_of("json").splitlines()]
    assert {k: first[k] for k in ("level", "logger", "pid", "message")} == {
        "level": "INFO",
        "logger": "tracker.example",
        "pid": os.getpid(),
        "message": "a click on flow 1",
    }
    assert first["time"].endswith("Z") and "ValueError: boom" in second["exception"]


@pytest.mark.e2e  # runs the CLI
def test_the_cli_logs_info_as_json(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "new.db")  # a new schema: an INFO line
    env = dict(
        os.environ,
        TRACKER_DATABASE_URL=url,
        TRACKER_LOG_FORMAT="json",
        TRACKER_INSTANCE_PATH=str(tmp_path / "instance"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert logged and all({"time", "level", "logger", "message"} <= set(line) for line in logged)
    assert any(line["level"] == "INFO" for line in logged)
