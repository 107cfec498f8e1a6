"""`dpdeblur bench quality` on tiny generated data sets: metrics against known values,
DPDD indoor/outdoor rows, SDD deformed-GT rows, CSV/Markdown/JSON/crops, compare, LPIPS."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dpdeblur.bench.quality import LPIPS_SKIPPED, QualityConfig, bench_quality, scene_labels, score_image
from dpdeblur.bench.report import compare_reports
from dpdeblur.cli import app
from dpdeblur.errors import DataError, UsageError
from dpdeblur.io.images import read_image, write_image
from dpdeblur.metrics import mae_np, psnr_np, ssim_np
from dpdeblur.models.weights import save_weights

def cli(*args):
    return CliRunner().invoke(app, ["bench", *[str(a) for a in args]], catch_exceptions=False)


def texture(h, w, seed):
    """Smooth random colour texture in [0.05, 0.85] (DIS flow needs structure, not noise)."""
    import cv2

    a = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 2.0)
    return 0.05 + 0.8 * (a - a.min()) / (a.max() - a.min())


@pytest.fixture(scope="module")
def dpdd(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("dpdd")
    rng = np.random.default_rng(0)
    for i in range(3):
        s = texture(40, 48, i)
        left = np.clip(s + 0.04 * rng.standard_normal(s.shape), 0, 1)
        right = np.clip(s + 0.04 * rng.standard_normal(s.shape), 0, 1)
        write_image(root / "test_c/target" / f"s{i}.png", s, 16)
        write_image(root / "test_c/source" / f"s{i}.png", (left + right) / 2, 16)
        write_image(root / "test_l/source" / f"s{i}_L.png", left, 16)
        write_image(root / "test_r/source" / f"s{i}_R.png", right, 16)
    (root / "indoor.txt").write_text("s0\ns2.png\n")
    (root / "outdoor.txt").write_text("s1\n")
    save_weights(tiny.model("dmtnet-t"), root / "w.safetensors")
    return root


def test_score_image_known_values():
    gt = np.random.default_rng(1).random((32, 32, 3)) * 0.9
    m = score_image(gt + 0.1, gt)
    assert m["psnr"] == pytest.approx(20.0, abs=1e-9)  # MSE 0.01
    assert m["mae"] == pytest.approx(0.1, abs=1e-12)
    assert m["ssim"] == pytest.approx(ssim_np(gt + 0.1, gt), abs=1e-12)
    assert score_image(gt, gt)["ssim"] == pytest.approx(1.0)
    assert score_image(gt, gt, "skimage-default")["ssim"] == pytest.approx(1.0)


class AddOffset(torch.nn.Module):
    def forward(self, x):
        return x + 0.1


def test_offset_model_scores_20db(tmp_path):
    """A folder set whose blurry images equal the truth, a 'model' adding 0.1: PSNR 20 dB, MAE 0.1."""
    for i in range(2):
        s = texture(24, 24, i)
        write_image(tmp_path / "sharp" / f"{i}.png", s, 16)
        write_image(tmp_path / "blur" / f"{i}.png", s, 16)
    cfg = QualityConfig("folder", folders={"blur": tmp_path / "blur", "sharp": tmp_path / "sharp"}, model=AddOffset(),
                        tile=0, device="cpu")
    report, _ = bench_quality(cfg)
    rows = {r["model"]: r for r in report["rows"]}
    assert set(rows) == {"identity", "AddOffset"}
    assert rows["AddOffset"]["psnr"] == pytest.approx(20.0, abs=1e-4)
    assert rows["AddOffset"]["mae"] == pytest.approx(0.1, abs=1e-6)
    assert rows["identity"]["psnr"] == float("inf") and rows["identity"]["ssim"] == pytest.approx(1.0)
    assert report["meta"]["bit_depth"] == [16] and report["meta"]["lpips"] == LPIPS_SKIPPED


def test_dpdd_cli_outputs(dpdd, tmp_path, tiny):
    out = tmp_path / "q.json"
    r = cli("quality", "--dataset", "dpdd", "--data-root", dpdd, "--model", "dmtnet-t", "--weights", dpdd / "w.safetensors",
            "--model-config", tiny.flag("dmtnet"), "--device", "cpu", "--csv", tmp_path / "q.csv", "--markdown", tmp_path / "q.md",
            "--save-images", 1, tmp_path / "crops", "--crop", 32, "--report", out, "--ssim", "skimage-default")
    assert r.exit_code == 0, r.output
    assert "skimage-default" in r.stdout and LPIPS_SKIPPED in r.stdout
    rep = json.loads(out.read_text())
    assert rep["kind"] == "quality" and rep["meta"]["ssim_window"] == "skimage-default"
    keys = [(x["model"], x["subset"], x["n"]) for x in rep["rows"]]
    assert keys == [(m, s, n) for m in ("identity", "dmtnet-t") for s, n in (("combined", 3), ("indoor", 2), ("outdoor", 1))]
    per = rep["per_image"]
    assert [(p["model"], p["id"], p["scene"]) for p in per[:2]] == [("identity", "s0", "indoor"), ("dmtnet-t", "s0", "indoor")]
    # identity row = metrics of the combined image against the truth, computed directly
    for p in (p for p in per if p["model"] == "identity"):
        b, s = read_image(dpdd / "test_c/source" / f"{p['id']}.png").rgb, read_image(dpdd / "test_c/target" / f"{p['id']}.png").rgb
        assert p["psnr"] == pytest.approx(psnr_np(b, s), abs=1e-6)
        assert p["mae"] == pytest.approx(mae_np(b, s), abs=1e-7)
        assert p["ssim"] == pytest.approx(ssim_np(b, s, "skimage-default"), abs=1e-6)
    indoor = next(x for x in rep["rows"] if x["model"] == "dmtnet-t" and x["subset"] == "indoor")
    assert indoor["psnr"] == pytest.approx(np.mean([p["psnr"] for p in per if p["model"] == "dmtnet-t" and p["scene"] == "indoor"]))
    csv_lines = (tmp_path / "q.csv").read_text().splitlines()
    assert csv_lines[0] == "model,id,scene,bit_depth,psnr,ssim,mae" and len(csv_lines) == 7
    md = (tmp_path / "q.md").read_text().splitlines()
    assert md[0] == "| model | dataset | subset | n | psnr | ssim | mae |" and len(md) == 2 + 6 + 2
    assert "SSIM window: skimage-default" in md[-1]
    worst = min((p for p in per if p["model"] == "dmtnet-t"), key=lambda p: p["psnr"])["id"]
    files = sorted(f.name for f in (tmp_path / "crops").iterdir())
    assert len(files) == 2 and f"worst-01-{worst}.png" in files
    crop = read_image(tmp_path / "crops" / files[0])
    assert crop.bit_depth == 8 and crop.rgb.shape == (32, 3 * 32 + 8, 3)


def test_scene_list_option(tmp_path):
    f = tmp_path / "scenes.txt"
    f.write_text("a indoor\n# comment\nb.png outdoor\n")
    assert scene_labels(None, f) == {"a": "indoor", "b": "outdoor"}
    f.write_text("a kitchen\n")
    from dpdeblur.errors import InputError

    with pytest.raises(InputError, match="scenes.txt:1"):
        scene_labels(None, f)


def test_sdd_deformed_gt(tmp_path):
    """Truth shifted by 2 px against the input: plain PSNR is low, deformed-GT PSNR much higher."""
    big = texture(72, 72, 5)
    for i in range(1):
        write_image(tmp_path / "test/gt" / f"{i}.png", big[4:68, 4:68], 8)
        write_image(tmp_path / "test/blur" / f"{i}.png", big[4:68, 6:70], 8)
    rep, _ = bench_quality(QualityConfig("sdd", tmp_path))
    (row,) = rep["rows"]
    assert rep["meta"]["deformed_gt"] and rep["meta"]["bit_depth"] == [8]
    assert row["psnr_deformed"] > row["psnr"] + 8, row
    assert row["mae_deformed"] < row["mae"] and row["ssim_deformed"] > row["ssim"]
    rep2, _ = bench_quality(QualityConfig("sdd", tmp_path, deformed_gt=False))
    assert "psnr_deformed" not in rep2["rows"][0] and rep2["rows"][0]["psnr"] == pytest.approx(row["psnr"])


def test_compare_two_quality_reports(dpdd, tmp_path):
    for name, ssim in (("a", "wang"), ("b", "wang")):
        r = cli("quality", "--dataset", "dpdd", "--data-root", dpdd, "--report", tmp_path / f"{name}.json", "--limit", 2 if name == "a" else 3)
        assert r.exit_code == 0, r.output
    r = cli("compare", tmp_path / "a.json", tmp_path / "b.json", "--json")
    assert r.exit_code == 0, r.output
    cmp = json.loads(r.stdout)
    assert cmp["kind"] == "quality" and cmp["keys"] == ["model", "dataset", "subset"]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    row = next(x for x in cmp["rows"] if x["subset"] == "combined")
    assert row["psnr"]["delta"] == pytest.approx(b["rows"][0]["psnr"] - a["rows"][0]["psnr"])
    assert row["mae"]["better"] == (b["rows"][0]["mae"] < a["rows"][0]["mae"])
    assert compare_reports(a, a)["rows"][0]["psnr"]["better"] is None


def test_lpips_from_local_weights(tmp_path, dpdd):
    from dpdeblur.errors import WeightsError
    from dpdeblur.metrics.lpips import LPIPS

    net = LPIPS()
    sd = {f"features.{k[len('features.'):]}": v for k, v in net.state_dict().items() if k.startswith("features.")}
    sd.update({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))})
    save_weights(sd, tmp_path / "lpips.safetensors")
    lp = LPIPS.from_file(tmp_path / "lpips.safetensors")
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert lp(x, x).abs().max() == 0
    d = lp(x, y)
    assert d.shape == (2,) and (d > 0).all() and torch.allclose(d, lp(y, x))
    # the lpips package's own key names load to the same network
    slices = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    sd2 = {(f"net.slice{slices[int(k.split('.')[1])]}.{k.split('.', 1)[1]}" if k.startswith("features") else k): v for k, v in sd.items()}
    save_weights(sd2, tmp_path / "lpips2.safetensors")
    assert torch.allclose(LPIPS.from_file(tmp_path / "lpips2.safetensors")(x, y), d)
    with pytest.raises(WeightsError, match="not LPIPS-alex weights"):
        LPIPS.from_file(dpdd / "w.safetensors")
    r = cli("quality", "--dataset", "dpdd", "--data-root", dpdd, "--lpips-weights", tmp_path / "lpips.safetensors", "--json")
    rep = json.loads(r.stdout)
    assert rep["meta"]["lpips"] == "alexnet (lpips.safetensors)" and rep["rows"][0]["lpips"] > 0


def test_bad_data_root_one_line(tmp_path):
    r = cli("quality", "--dataset", "dpdd", "--data-root", tmp_path / "nope")
    assert r.exit_code == 1
    assert "data root not found" in r.output and len(r.output.strip().splitlines()) == 1
    r = cli("quality", "--dataset", "dpdd", "--data-root", tmp_path, "--ssim", "box")
    assert r.exit_code == 2 and "--ssim" in r.output


def test_ids_select_images_in_order(dpdd):
    rep, _ = bench_quality(QualityConfig("dpdd", dpdd, ids=["s2", "s0", "s2"]))
    assert [r["id"] for r in rep["per_image"]] == ["s2", "s0"] and rep["rows"][0]["n"] == 2
    with pytest.raises(DataError, match="no image s9 in dpdd test"):
        bench_quality(QualityConfig("dpdd", dpdd, ids=["s9"]))
    r = cli("quality", "--dataset", "dpdd", "--data-root", dpdd, "--ids", "s1", "--json")
    assert r.exit_code == 0, r.output
    assert [x["id"] for x in json.loads(r.stdout)["per_image"]] == ["s1"]


def test_tta_scores_the_self_ensemble(dpdd):
    """--tta: the model row scores the mean over four flips (here a tiny untrained model: a
    different score), the identity row is unchanged, and the report says so."""
    cfg = dict(dataset="dpdd", data_root=dpdd, model="dmtnet-t", weights=dpdd / "w.safetensors", tile=0, device="cpu")
    plain, _ = bench_quality(QualityConfig(**cfg))
    tta, _ = bench_quality(QualityConfig(**cfg, tta=True))
    rows = [{r["model"]: r["psnr"] for r in rep["rows"] if r["subset"] == "combined"} for rep in (plain, tta)]
    assert rows[0]["identity"] == rows[1]["identity"] and rows[0]["dmtnet-t"] != rows[1]["dmtnet-t"]
    assert (plain["meta"]["tta"], tta["meta"]["tta"]) == (False, True)


def test_weights_alone_score_the_model_they_name(dpdd):
    """`bench quality --weights FILE` (from `train`, naming its model) scores that model, as `deblur`
    does; with neither --model nor --weights only the input is scored."""
    r = cli("quality", "--dataset", "dpdd", "--data-root", dpdd, "--weights", dpdd / "w.safetensors", "--tile", "0", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert {row["model"] for row in rep["rows"]} == {"identity", "dmtnet-t"} and rep["meta"]["model_config"]["dim"] == 12
    r = cli("quality", "--dataset", "dpdd", "--data-root", dpdd, "--json")
    assert {row["model"] for row in json.loads(r.stdout)["rows"]} == {"identity"}
    with pytest.raises(UsageError, match="no model to score"):
        bench_quality(QualityConfig("dpdd", dpdd, model=None))
