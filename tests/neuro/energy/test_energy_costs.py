"""Cost tables as data: the built-in table's citations, user tables (JSON/TOML), one-line errors."""
import copy
import json

import pytest

from neuro.energy import COST_FIELDS, load_cost_table
from neuro.energy.costs import BUILTIN

BUILTIN_TARGETS = {"ann-45nm", "ann-gpu", "ann-cpu", "snn-45nm", "loihi", "spinnaker1", "spinnaker2", "fpga"}


def _entry():
    return copy.deepcopy(json.loads(BUILTIN.read_text())["targets"]["snn-45nm"])


def test_builtin_table_cites_every_number():
    table = load_cost_table()
    assert set(table.targets) == BUILTIN_TARGETS and table.baseline == "ann-45nm"
    for t in table.targets.values():
        assert set(t.costs) == set(COST_FIELDS)
        for c in [*t.costs.values(), *t.assumptions.values()]:
            assert c.source.strip() and isinstance(c.recalled, bool)
        if t.kind == "event":
            assert "hops_per_packet" in t.assumptions


def test_recalled_flags_and_units_follow_the_reference_notes():
    t = load_cost_table().targets
    # hardware.md 5.1: Horowitz FP32 figures are not marked recalled; Loihi and SpiNNaker ones are
    assert t["snn-45nm"].costs["ac"].si == pytest.approx(0.9e-12) and not t["snn-45nm"].costs["ac"].recalled
    assert t["ann-45nm"].costs["mac"].si == pytest.approx(4.6e-12) and not t["ann-45nm"].costs["mac"].recalled
    assert t["loihi"].costs["ac"].si == pytest.approx(23.6e-12) and t["loihi"].costs["ac"].recalled
    assert t["loihi"].costs["neuron_idle"].si == pytest.approx(1.7e-12)
    assert t["spinnaker1"].costs["ac"].si == pytest.approx(8e-9) and t["spinnaker1"].costs["ac"].recalled
    assert t["spinnaker1"].costs["static_power"].si == pytest.approx(0.5)
    assert t["spinnaker1"].backend == t["spinnaker2"].backend == "spinnaker"
    # figures that are not in the reference notes at all are flagged as not verified
    for key in ("ann-gpu", "ann-cpu", "fpga"):
        assert t[key].costs["mac"].recalled


def test_user_table_in_toml_adds_and_replaces_targets(tmp_path):
    rows = "\n".join(f'{f} = {{ value = {i + 1}, unit = "{"W" if f == "static_power" else "pJ"}", '
                     f'source = "my measurement", recalled = false }}' for i, f in enumerate(COST_FIELDS))
    (tmp_path / "mine.toml").write_text(
        '[targets.mychip]\nname = "My chip"\nkind = "event"\ndescription = "a test chip"\n'
        f"[targets.mychip.costs]\n{rows}\n"
        '[targets.mychip.assumptions]\nhops_per_packet = { value = 2, unit = "hops", source = "floor plan", recalled = false }\n')
    table = load_cost_table(tmp_path / "mine.toml")
    assert set(table.targets) == BUILTIN_TARGETS | {"mychip"}
    mine = table.targets["mychip"]
    assert mine.costs["ac"].si == pytest.approx(2e-12) and mine.costs["static_power"].si == 8.0
    assert mine.origin.endswith("mine.toml") and table.targets["loihi"].origin == "built-in"
    e = _entry()
    e["costs"]["ac"] = {"value": 0.5, "unit": "nJ", "source": "remeasured", "recalled": False}
    (tmp_path / "override.json").write_text(json.dumps({"targets": {"snn-45nm": e}}))
    assert load_cost_table(tmp_path / "override.json").targets["snn-45nm"].costs["ac"].si == pytest.approx(5e-10)


def _broken(mutate):
    raw = {"targets": {"mine": _entry()}}
    mutate(raw["targets"]["mine"])
    return raw


@pytest.mark.parametrize("mutate,match", [
    (lambda e: e["costs"].pop("hop"), r"target 'mine': missing field 'costs.hop'$"),
    (lambda e: e["costs"]["ac"].pop("source"), r"missing field 'costs.ac.source'$"),
    (lambda e: e["costs"]["ac"].pop("recalled"), r"missing field 'costs.ac.recalled'$"),
    (lambda e: e.pop("kind"), r"target 'mine': missing field 'kind'$"),
    (lambda e: e.pop("assumptions"), r"missing field 'assumptions.hops_per_packet'"),
    (lambda e: e["costs"]["ac"].update(value=-1), r"'costs.ac.value' must be a finite number >= 0"),
    (lambda e: e["costs"]["ac"].update(unit="kWh"), r"'costs.ac.unit' must be one of"),
    (lambda e: e["costs"]["static_power"].update(unit="pJ"), r"'costs.static_power.unit' must be one of \['W', 'mW'\]"),
    (lambda e: e.update(kind="analog"), r"field 'kind' must be one of \['ann', 'event'\]"),
    (lambda e: e["costs"].update(extra={"value": 1}), r"unknown field 'costs.extra'"),
])
def test_bad_user_table_is_a_one_line_error_naming_the_field(tmp_path, mutate, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_broken(mutate)))
    with pytest.raises(ValueError, match=match) as exc:
        load_cost_table(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


@pytest.mark.parametrize("text,match", [
    ("{not json", r"not a readable cost table"),
    ("[1, 2]", r"must be an object"),
    ('{"targets": {}}', r"missing field 'targets'"),
    ('{"baseline": "nope", "targets": {"x": 1}}', r"target 'x': must be an object"),
])
def test_unreadable_tables(tmp_path, text, match):
    (tmp_path / "t.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_cost_table(tmp_path / "t.json")


def test_missing_file_and_bad_baseline(tmp_path):
    with pytest.raises(ValueError, match=r"no such cost table file"):
        load_cost_table(tmp_path / "none.json")
    (tmp_path / "b.json").write_text(json.dumps({"baseline": "loihi", "targets": {"mine": _entry()}}))
    with pytest.raises(ValueError, match=r"baseline 'loihi' must be an ANN target"):
        load_cost_table(tmp_path / "b.json")
    (tmp_path / "c.json").write_text(json.dumps({"baseline": "nope", "targets": {"mine": _entry()}}))
    with pytest.raises(ValueError, match=r"'baseline' names unknown target 'nope'"):
        load_cost_table(tmp_path / "c.json")


def test_unknown_target_name():
    table = load_cost_table()
    with pytest.raises(ValueError, match=r"unknown energy target 'truenorth'; known: \['ann-45nm'"):
        table.select(["loihi", "truenorth"])
    assert [t.key for t in table.select(["loihi", "loihi", "fpga"])] == ["loihi", "fpga"]


def test_user_table_overrides_one_number_by_key(tmp_path):
    """--costs with a partial entry: one number changes, everything else stays built-in, and the
    changed number cites the user's file instead of the built-in source."""
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"targets": {"loihi": {"costs": {"ac": {"value": 30}}}}}))
    base, mine = load_cost_table().targets["loihi"], load_cost_table(path).targets["loihi"]
    assert mine.costs["ac"].si == pytest.approx(30e-12)  # the built-in unit (pJ) is kept
    assert mine.costs["ac"].source == f"{path} (user override)" and not mine.costs["ac"].recalled
    for field in COST_FIELDS:
        if field != "ac":
            assert mine.costs[field] == base.costs[field], field
    assert mine.name == base.name and mine.assumptions == base.assumptions
    # a new target still needs every field
    path.write_text(json.dumps({"targets": {"newchip": {"costs": {"ac": {"value": 30}}}}}))
    with pytest.raises(ValueError, match="target 'newchip': missing field 'name'"):
        load_cost_table(path)
