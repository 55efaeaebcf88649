"""The NumPy coverage table (docs/numpy_coverage.md) agrees with the code.

The table is regenerated in memory (tracing only, no compiles: about a second) and compared with
the file; ``python -m tracejit.testing.coverage`` rewrites the file. The classifier itself is
checked on functions whose derivative status is known, and every sample call on NumPy itself.
"""
from __future__ import annotations

import warnings

import pytest

import tracejit.numpy as tnp
from tracejit.testing import coverage
from tracejit.transforms.ad_traces import JVPTracer, TapeTracer


@pytest.fixture(scope="module")
def table():
    return coverage.rows()


def test_coverage_table_is_up_to_date():
    try:
        report = coverage.stale_report(coverage.DOC_PATH)
    except coverage.CoverageError as e:
        pytest.fail(str(e), pytrace=False)
    if report:
        pytest.fail(report, pytrace=False)


def test_every_sample_is_a_valid_numpy_call():
    """A sample written ahead of its function (or kept for it) is right when the function lands:
    NumPy itself accepts it."""
    functions = coverage.numpy_functions()
    failures = []
    for name, sample in coverage.SAMPLES.items():
        if name not in functions or name in coverage.TRACEJIT_ONLY:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sample.call(functions[name], *sample.inputs())
        except Exception as e:  # noqa: BLE001
            failures.append(f"{name}: {type(e).__name__}: {e}")
    assert not failures, "samples NumPy rejects:\n" + "\n".join(failures)


def test_every_supported_function_is_listed_as_supported(table):
    table = {row.name: row for row in table}
    for name in ("sum", "tanh", "matmul", "linalg.norm", "einsum"):
        assert table[name].status == coverage.SUPPORTED, name
    for name in coverage.numpy_functions():
        ours = coverage.implementation(name)
        assert (table[name].status == coverage.SUPPORTED) == (ours is not None), name
    assert table["loadtxt"].reason == "I/O"
    assert table["abs"].notes.startswith("alias of `absolute`")


@pytest.mark.parametrize("name,status,note", [
    ("tanh", coverage.BOTH, ""),
    ("floor", coverage.NONE, "derivative is zero"),
    ("argmax", coverage.NONE, "integer or boolean result"),
    ("isnan", coverage.NONE, "integer or boolean result"),
    ("zeros", coverage.NONE, "no array input"),
])
def test_derivative_status_of_known_functions(name, status, note):
    assert coverage.derivatives(name) == (status, note)


def _sin_without_forward_mode(x):
    if isinstance(x, JVPTracer):
        raise NotImplementedError("no JVP rule")
    return tnp.sin(x)


def _sin_without_reverse_mode(x):
    if isinstance(x, TapeTracer):
        raise NotImplementedError("no VJP rule")
    return tnp.sin(x)


def test_one_mode_only_is_detected(monkeypatch):
    monkeypatch.setitem(coverage.SAMPLES, "fake", coverage.UNARY)
    assert coverage.derivatives("fake", _sin_without_forward_mode) == (
        coverage.REVERSE, "forward mode raises NotImplementedError")
    assert coverage.derivatives("fake", _sin_without_reverse_mode) == (
        coverage.FORWARD, "reverse mode raises NotImplementedError")
    with pytest.raises(coverage.CoverageError, match="sample call of `fake` does not trace"):
        coverage.derivatives("fake", lambda x: tnp.sin(x, 1, 2, 3))


def test_a_supported_function_without_a_sample_fails_with_what_to_do(monkeypatch):
    monkeypatch.delitem(coverage.SAMPLES, "tanh")
    with pytest.raises(coverage.CoverageError, match=r"(?s)add or fix.*SAMPLES.*`tanh` has no"):
        coverage.rows()


def test_compare_reports_differences_and_tolerates_other_numpy_versions(table):
    fresh = coverage.render(table[:3])
    assert coverage.compare(fresh, fresh) == ""
    changed = fresh.replace("| supported |", "| not supported |", 1)
    assert "-| `" in coverage.compare(changed, fresh)
    # A file from another NumPy minor version: only the rows of names both have are compared.
    other = fresh.replace(f"NumPy {coverage.numpy_version()} ", "NumPy 2.99 ", 1)
    extra_row = "| `only_in_numpy_2_99` | not supported | | not yet |\n"
    assert coverage.compare(other + extra_row, fresh) == ""
    first_row = next(line for line in other.splitlines() if line.startswith("| `"))
    with_note = other.replace(first_row, first_row[:-1] + "a changed note |")
    assert with_note != other and coverage.compare(with_note, fresh) == ""
    assert "NumPy 2.99" in coverage.compare(other.replace("| supported |", "| x |", 1), fresh)


def test_check_command_exit_status(table, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(coverage, "rows", lambda: table)  # the table is tested above
    path = tmp_path / "coverage.md"
    assert coverage.main(["--output", str(path)]) == 0
    assert coverage.main(["--check", "--output", str(path)]) == 0
    path.write_text(path.read_text().replace("| supported |", "| not supported |", 1))
    assert coverage.main(["--check", "--output", str(path)]) == 1
    assert coverage.COMMAND in capsys.readouterr().out
