"""The ``spikeyolo`` command: the stock command line with the plugin loaded first, and one sentence for bad input."""

from pathlib import Path

import pytest
from ultralytics.utils import ASSETS

from spikeyolo_ibra.cli import main

TINY_PT = Path(__file__).resolve().parent / "fixtures" / "tiny-spikeyolo.pt"


@pytest.fixture
def damaged(tmp_path: Path) -> dict[str, Path]:
    data = TINY_PT.read_bytes()
    files = {"truncated": tmp_path / "truncated.pt", "not-a-checkpoint": tmp_path / "notes.pt"}
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["not-a-checkpoint"].write_text("not a checkpoint\n")
    return files


@pytest.mark.parametrize("case", ["truncated", "not-a-checkpoint"])
def test_a_damaged_checkpoint_is_one_sentence(case, damaged, tmp_path, capsys):
    """torch raises a bare OSError or unpickling error for these; the command names the file and the fix."""
    weights = damaged[case]
    code = main(["predict", f"model={weights}", f"source={ASSETS / 'bus.jpg'}", f"project={tmp_path / 'runs'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"spikeyolo: {weights} is not a loadable checkpoint: the file is")
    assert err[0].endswith("Copy it again or re-save it from training.")


def test_a_missing_checkpoint_is_one_sentence(tmp_path, capsys):
    missing = tmp_path / "best.pt"
    assert main(["val", f"model={missing}", "imgsz=64", f"project={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]


def test_an_impossible_neuron_setting_is_one_sentence(tmp_path, capsys):
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "cfg" / "ibra-spikeyolo.yaml").read_text())
    cfg["neuron"]["bits"] = 0
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", f"model={tmp_path / 'bad.yaml'}", "epochs=1", f"project={tmp_path}"]) == 2
    assert capsys.readouterr().err.strip() == "spikeyolo: neuron.bits=0 is invalid: use a whole number from 1 to 16."


NO_CUDA = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message without CUDA")


@NO_CUDA
@pytest.mark.parametrize(("device", "why"), [("cuda", "asks for CUDA"), ("0,1", "asks for CUDA"), ("gpu", "not a")])
def test_a_device_this_machine_lacks_is_one_sentence(device, why, tmp_path, capsys):
    assert main(["train", "model=cfg/ibra-spikeyolo.yaml", f"device={device}", f"project={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spikeyolo: device ") and why in err[0]


def test_a_scale_suffixed_model_path_is_not_called_missing(monkeypatch):
    """``model=cfg/ibra-spikeyolo-t.yaml`` names ``cfg/ibra-spikeyolo.yaml`` at scale t, as ``yolo`` resolves it."""
    from spikeyolo_ibra.cli import MissingInput, _check_arguments

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    _check_arguments(["train", "model=cfg/ibra-spikeyolo-t.yaml", f"model={repo / 'cfg' / 'spikeyolo-s.yaml'}"])
    with pytest.raises(MissingInput, match=r"^model=cfg/no-such-model-t.yaml does not exist: check the path.$"):
        _check_arguments(["model=cfg/no-such-model-t.yaml"])
