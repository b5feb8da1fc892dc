"""examples/egru_lm.py end to end: the PTB layout (tiny files) with tiny budgets, and the
offline corpus in ``--quick`` mode (slow: about a minute)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from neuro.models.egru.training import offline_text

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "egru_lm.py"


def _script():
    spec = importlib.util.spec_from_file_location("egru_lm_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _check(out: dict, path: Path, budget: float, targets: list[float]) -> None:
    saved = json.loads(path.read_text())
    assert saved["equal_time"].keys() == {"egru", "gru", "lstm"}
    eq = saved["equal_time"]
    for name, r in eq.items():
        assert abs(r["params"] - eq["egru"]["params"]) <= 0.02 * eq["egru"]["params"], name
        assert r["train_seconds"] >= budget and r["train_tokens"] > 0 and r["ppl"] > 1
    assert eq["gru"]["activity_sparsity"] == 0.0 and 0 <= eq["egru"]["activity_sparsity"] <= 1
    for name, r in eq.items():  # per-word inference of the trained models, batch 1
        assert r["infer"]["us_per_word"] > 0 and r["infer"]["macs_per_word"] > 0, name
    assert eq["gru"]["infer"]["macs_per_word"] == saved["pruning"]["dense_macs"]["gru"]["total"]
    # the EGRU's count is its measured events: below its dense count
    assert eq["egru"]["infer"]["macs_per_word"] < saved["pruning"]["dense_macs"]["egru"]["total"]
    levels = saved["pruning"]["levels"]
    assert [lv["target"] for lv in levels] == targets
    dense = saved["pruning"]["dense_macs"]["egru"]["total"]
    for lv in levels:
        assert lv["weight_sparsity"] == pytest.approx(lv["target"], abs=0.01)
        csr = lv["macs"]["total"]["events_csr"]
        assert 0 < csr < dense and lv["macs_reduction_vs_dense_egru"] == pytest.approx(dense / csr)
    assert "nnz(W[i, :])" in saved["counting_rule"]
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out["sweep"] == saved["sweep"]


def _ptb_files(tmp_path: Path) -> Path:
    """Tiny ``ptb.{train,valid,test}.txt`` files (the published layout) from the offline text."""
    text = offline_text(600).splitlines()
    data = tmp_path / "ptb"
    data.mkdir()
    for name, lines in (("train", text[:400]), ("valid", text[400:500]), ("test", text[500:])):
        (data / f"ptb.{name}.txt").write_text("\n".join(lines) + "\n")
    return data


def test_egru_lm_example_on_ptb_files(tmp_path):
    data = _ptb_files(tmp_path)
    out_path = tmp_path / "r.json"
    out = _script().main(["--quick", "--data", str(data), "--out", str(out_path),
                          "--budget", "0.3", "--sweep-budget", "0.2", "--sweep-thr", "0.05",
                          "--sweep-gamma", "0", "0.1", "--prune", "0.8", "0.95",
                          "--prune-budget", "0.3", "--prune-rounds", "1", "--eval-words", "800",
                          "--clock", "wall"])
    _check(out, out_path, 0.3, [0.8, 0.95])
    assert out["setup"]["corpus"].startswith("ptb") and len(out["sweep"]) == 2


def test_egru_lm_example_only_a_with_threshold(tmp_path):
    data = _ptb_files(tmp_path)
    out_path = tmp_path / "a.json"
    out = _script().main(["--quick", "--data", str(data), "--out", str(out_path), "--only", "a",
                          "--thr-mean", "0.2", "--budget", "0.2", "--eval-words", "300",
                          "--infer-words", "30", "--clock", "wall"])
    saved = json.loads(out_path.read_text())
    assert saved == json.loads(json.dumps(out)) and "sweep" not in saved
    assert saved["setup"]["egru_config"]["thr_mean"] == 0.2
    assert {r["infer"]["words"] for r in saved["equal_time"].values()} == {30}


@pytest.mark.slow
def test_egru_lm_example_quick_offline(tmp_path):
    out_path = tmp_path / "q.json"
    out = _script().main(["--quick", "--out", str(out_path)])
    _check(out, out_path, 3.0, [0.8, 0.9, 0.95])
    assert len(out["sweep"]) == 4
    assert out["seconds"] < 120  # about 45 s on a shared 2-core machine (< 1 minute alone)
