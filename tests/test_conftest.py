"""The test lanes of `tests/conftest.py`: a test's lane is its `lane` marker,
and the controller's scheduler gets it from the workers' collections."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import lane_of, lanes_by_nodeid, read_lanes, scope_of, write_lanes

TESTS = os.path.dirname(os.path.abspath(__file__))


class FakeItem:
    """A collected test as `lane_of` reads it: a node id and its markers."""

    def __init__(self, nodeid, *marks):
        self.nodeid = nodeid
        self.marks = [mark.mark for mark in marks]

    def get_closest_marker(self, name):
        return next((mark for mark in self.marks if mark.name == name), None)


def test_a_test_is_in_the_lane_its_marker_names():
    items = [FakeItem("tests/a.py::test_big[jax]", pytest.mark.slow, pytest.mark.lane("memory")),
             FakeItem("tests/b.py::test_renamed_freely", pytest.mark.lane("processes")),
             FakeItem("tests/b.py::test_quick", pytest.mark.slow)]
    assert [lane_of(item) for item in items] == ["memory", "processes", None]
    lanes = lanes_by_nodeid(items)
    assert lanes == {"tests/a.py::test_big[jax]": "memory",
                     "tests/b.py::test_renamed_freely": "processes"}
    assert [scope_of(item.nodeid, lanes) for item in items] == ["memory", "processes",
                                                                 "tests/b.py"]


@pytest.mark.parametrize("mark", [pytest.mark.lane("memroy"), pytest.mark.lane(),
                                  pytest.mark.lane("memory", "processes")])
def test_a_lane_marker_names_one_known_lane(mark):
    with pytest.raises(pytest.UsageError, match="lane marker"):
        lane_of(FakeItem("tests/a.py::test_x", mark))


def test_the_workers_lanes_reach_the_scheduler(tmp_path):
    lanes = {"tests/a.py::test_big[jax]": "memory"}
    write_lanes(str(tmp_path), "gw0", lanes)
    write_lanes(str(tmp_path), "gw1", lanes)
    assert sorted(os.listdir(tmp_path)) == ["gw0.json", "gw1.json"]
    assert read_lanes(str(tmp_path)) == lanes


# Two test modules that record which worker ran each test: a lane test and
# a plain one in the first, the second module wholly in the lane.
RECORD = textwrap.dedent("""
    import os

    import pytest


    def ran(name):
        with open(os.path.join(os.environ["RAN"], name), "w") as f:
            f.write(os.environ["PYTEST_XDIST_WORKER"])
    """)
TEST_A = textwrap.dedent("""
    @pytest.mark.lane("memory")
    def test_a_in_the_lane():
        ran("a_in_the_lane")


    def test_a_by_its_module():
        ran("a_by_its_module")
    """)
TEST_B = textwrap.dedent("""
    pytestmark = pytest.mark.lane("memory")


    def test_b_in_the_lane():
        ran("b_in_the_lane")
    """)


@pytest.mark.slow
def test_two_workers_run_a_lane_on_one_worker(tmp_path):
    """The lane tests of two modules on one worker, the other module's tests
    on the other; by modules alone, `loadscope` would split the lane."""
    shutil.copy(os.path.join(TESTS, "conftest.py"), tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    lane(name)\n    slow\n")
    (tmp_path / "test_a.py").write_text(RECORD + TEST_A)
    (tmp_path / "test_b.py").write_text(RECORD + TEST_B)
    ran = tmp_path / "ran"
    ran.mkdir()
    # Keras on NumPy: the conftest imports Keras, and TensorFlow's import is the slow part.
    env = {**os.environ, "RAN": str(ran), "KERAS_BACKEND": "numpy"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadscope", "--rootdir", str(tmp_path), "-c", str(tmp_path / "pytest.ini"),
         str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    worker = {name: (ran / name).read_text() for name in os.listdir(ran)}
    assert len(worker) == 3
    assert worker["a_in_the_lane"] == worker["b_in_the_lane"] != worker["a_by_its_module"]
