"""The reproduction pipeline end to end, scaled down: training, resume, analysis, artefacts."""

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import netmod
from netmod.cli import main
from netmod.paper import CONDITIONS, PAPER, PROTOCOLS
from netmod.reproduce import ALPHA, ReproduceConfig, reproduce
from netmod.training import load_model

SMALL = {"dataset": "embedded", "sizes": (784, 24, 24, 10), "epochs": 1, "prune_epochs": 1, "networks": 2,
         "n_clusters": 4, "n_shuffles": 6}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    lines = []
    result = reproduce(ReproduceConfig(**SMALL), out, progress=False, log=lines.append)
    return out, result, lines


def test_writes_every_artefact(run):
    out, result, _ = run
    for name in ("results.json", "results.csv", "report.md", "null_histograms.png", "ncut_by_condition.png",
                 "clusters.png"):
        assert (out / name).stat().st_size > 0, name
        assert name in result.files
    for name in ("null_histograms.png", "ncut_by_condition.png", "clusters.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = sorted(p.name for p in (out / "models").glob("*.pt"))
    assert saved == sorted(f"embedded-{c.name}-seed{s}.pt" for c in CONDITIONS for s in (0, 1))


def test_rows_match_an_independent_recomputation(run, ncut_reference):
    out, result, _ = run
    assert len(result.rows) == 2 * len(CONDITIONS)
    for row in result.rows:
        model, meta = load_model(out / "models" / f"embedded-{row['condition']}-seed{row['seed']}.pt")
        graph = netmod.from_torch(model)
        assert row["n_init"] == 25  # the 2021 protocol's restarts below 2000 nodes
        part = netmod.spectral_clustering(graph, n_clusters=4, seed=row["null_seed"], n_init=25)
        adjacency = np.asarray(graph.get_adjacency_sparse(attribute="weight").todense())
        assert row["ncut"] == pytest.approx(ncut_reference(adjacency, part.labels), rel=1e-9)
        noise = [ncut_reference(adjacency, netmod.spectral_clustering(graph, n_clusters=4, seed=s, n_init=25).labels)
                 for s in netmod.reproduce.clustering_seeds(row["seed"], ReproduceConfig(**SMALL))]
        assert row["clustering_seeds"] == len(noise) == 10
        assert row["clustering_sd"] == pytest.approx(np.std(noise), rel=1e-9, abs=1e-12)
        assert row["clustering_mean"] == pytest.approx(np.mean(noise), rel=1e-9)
        null = netmod.shuffle_null(model, n_shuffles=6, shuffle="layer", n_clusters=4, seed=row["null_seed"],
                                   n_init=25)
        assert row["null_mean"] == pytest.approx(np.mean(null.samples), rel=1e-12)
        assert row["null_std"] == pytest.approx(np.std(null.samples), rel=1e-12)
        assert row["percentile"] == pytest.approx((np.sum(null.samples < row["ncut"]) + 1) / 7)
        assert row["test_accuracy"] == meta["test_accuracy"]
        assert row["test_accuracy"] == pytest.approx(
            netmod.training.evaluate(model, *_embedded_test()), abs=1e-12)


def _embedded_test():
    ds = netmod.datasets.load_embedded("test")
    return ds.images, ds.labels


def test_pruned_nets_are_90_percent_sparse_and_continue_from_the_unpruned_ones(run):
    out, _, _ = run
    for seed in (0, 1):
        for dense, pruned in (("unpruned", "pruned"), ("unpruned+dropout", "pruned+dropout")):
            _, meta = load_model(out / "models" / f"embedded-{pruned}-seed{seed}.pt")
            assert np.allclose(meta["sparsity"], 0.9, atol=0.005)
            assert meta["dropout"] == (0.5 if "dropout" in pruned else 0.0)
            m_dense, _ = load_model(out / "models" / f"embedded-{dense}-seed{seed}.pt")
            m_pruned, _ = load_model(out / "models" / f"embedded-{pruned}-seed{seed}.pt")
            w_dense = netmod.layer_weights(netmod.from_torch(m_dense))[0]
            w_pruned = netmod.layer_weights(netmod.from_torch(m_pruned))[0]
            # One pruning epoch moves the weights little: the kept ones correlate strongly.
            kept = w_pruned != 0
            assert np.corrcoef(w_dense[kept], w_pruned[kept])[0, 1] > 0.9


def test_summary_json_and_csv_agree_with_rows(run):
    out, _, _ = run
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["n_clusters"] == 4 and data["config"]["dataset"] == "embedded"
    assert "netmod" in data["versions"] and "torch" in data["versions"]
    for s in data["summary"]:
        sel = [r for r in data["rows"] if r["condition"] == s["condition"] and r["null"] == s["null"]]
        assert s["networks"] == 2
        assert s["ncut_mean"] == pytest.approx(np.mean([r["ncut"] for r in sel]))
        assert s["ncut_sd"] == pytest.approx(np.std([r["ncut"] for r in sel], ddof=1))
        assert s["significant"] == sum(r["significant"] for r in sel)
        assert s["paper_ncut"] == PAPER["2021"][("mnist", s["condition"])]["ncut"]
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["ncut"]) for r in rows] == [r["ncut"] for r in data["rows"]]
    # Orderings are judged seed by seed, significance on the Fisher-combined percentiles.
    ncut = {(r["condition"], r["seed"]): r["ncut"] for r in data["rows"]}
    lower = [ncut[(a, s)] < ncut[(b, s)] for a, b in (("pruned", "unpruned"), ("pruned+dropout", "unpruned+dropout"))
             for s in (0, 1)]
    assert data["claims"]["pruning lowers the n-cut"]["holds"] == all(lower)
    assert data["claims"]["pruning lowers the n-cut"]["evidence"].startswith(f"{sum(lower)}/4 seed pairs")
    dropout = [ncut[("pruned+dropout", s)] < ncut[("pruned", s)] for s in (0, 1)]
    assert data["claims"]["dropout lowers the n-cut of pruned nets"]["holds"] == all(dropout)
    for cond in ("pruned", "pruned+dropout"):
        s = next(s for s in data["summary"] if s["condition"] == cond)
        sel = [r["percentile"] for r in data["rows"] if r["condition"] == cond]
        assert s["combined_p"] == pytest.approx(netmod.combine_percentiles(sel, n_shuffles=6))
        claim = data["claims"][f"{cond} nets are more modular than their layer shuffles"]
        assert claim["holds"] == (s["combined_p"] < ALPHA)
        assert claim["reason"] is None  # not a quick run: no quick-scale explanation
    report = (out / "report.md").read_text()
    assert "| pruned+dropout | layer | 2 |" in report and "8.350 +- 0.046" in report


def test_rerun_reuses_the_trained_networks(run, tmp_path):
    out, first, _ = run
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.pt")}
    lines = []
    second = reproduce(ReproduceConfig(**SMALL), out, progress=False, log=lines.append, figures=False)
    assert any("seed 1: n-cut" in line for line in lines)
    assert not any("trained" in line for line in lines)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.pt")} == stamps
    assert [r["ncut"] for r in second.rows] == [r["ncut"] for r in first.rows]
    with pytest.raises(ValueError, match="other settings"):
        reproduce(ReproduceConfig(**{**SMALL, "epochs": 2}), out, progress=False, log=lines.append)


def test_training_is_deterministic_for_a_seed(run, tmp_path):
    out, _, _ = run
    cfg = ReproduceConfig(**{**SMALL, "networks": 1, "nulls": ("nonzero",), "protocol": "2020"})
    again = reproduce(cfg, tmp_path, progress=False, log=lambda s: None, figures=False)
    for cond in CONDITIONS:
        a = torch.load(out / "models" / f"embedded-{cond.name}-seed0.pt", weights_only=True)
        b = torch.load(tmp_path / "models" / f"embedded-{cond.name}-seed0.pt", weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["null"] for r in again.rows] == ["nonzero"] * 4


def test_protocols_and_config_checks():
    assert PROTOCOLS["2021"].n_clusters == 12 and PROTOCOLS["2021"].nulls == ("layer",)
    cfg = ReproduceConfig(protocol="2020")
    assert (cfg.n_clusters, cfg.nulls, cfg.n_shuffles, cfg.networks) == (4, ("layer", "nonzero"), 320, 10)
    quick = ReproduceConfig.quick_config()
    assert quick.dataset == "embedded" and quick.networks == 5 and quick.paper_dataset == "mnist"
    assert (quick.epochs, quick.prune_epochs, quick.n_clusters, quick.n_shuffles) == (10, 10, 12, 50)
    with pytest.raises(ValueError, match="protocol"):
        ReproduceConfig(protocol="2019")
    with pytest.raises(ValueError, match="dataset"):
        ReproduceConfig(dataset="cifar")
    with pytest.raises(ValueError, match="nulls"):
        ReproduceConfig(nulls=("edges",))
    with pytest.raises(ValueError, match="networks"):
        ReproduceConfig(networks=0)
    with pytest.raises(TypeError, match="n_shuffles"):
        ReproduceConfig(n_shuffles=2.5)
    with pytest.raises(ValueError, match="sizes"):
        ReproduceConfig(sizes=(784, 10))


def test_missing_dataset_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NETMOD_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(netmod.datasets, "SYSTEM_DIR", tmp_path / "none")
    cfg = ReproduceConfig(dataset="fashion-mnist", data_dir=str(tmp_path), **{
        k: v for k, v in SMALL.items() if k != "dataset"})
    with pytest.raises(FileNotFoundError, match="fashion-mnist"):
        reproduce(cfg, tmp_path / "out", progress=False, log=lambda s: None, download=False)


def test_cli_reproduce(tmp_path, capsys):
    out = tmp_path / "cli"
    before = torch.get_num_threads()
    rc = main(["reproduce", "--quick", "--sizes", "784,16,16,10", "--epochs", "1", "--prune-epochs", "1",
               "--shuffles", "4", "--n-clusters", "3", "--threads", "1", "--out", str(out)])
    assert rc == 0
    assert torch.get_num_threads() == before  # the run's thread count is given back
    text = capsys.readouterr().out
    assert "| pruned+dropout | layer | 5 |" in text and "## Claims" in text
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["quick"] is True and data["config"]["n_threads"] == 1
    assert {r["torch_threads"] for r in data["rows"]} == {1}  # training ran on the requested threads
    assert main(["reproduce", "--networks", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netmod reproduce: networks must be >= 1") and err.count("\n") == 1


def _rows(z_pruned, n_shuffles=50):
    """Result rows of a run with the given per-network z of the pruned nets (others clearly ordered)."""
    rows = []
    for seed, z in enumerate(z_pruned):
        for cond, ncut in (("unpruned", 10.2), ("unpruned+dropout", 10.1), ("pruned", 9.3 + 0.03 * z),
                           ("pruned+dropout", 8.7)):
            zz = z if cond == "pruned" else -15.0
            pct = (1 if zz < -3 else n_shuffles // 2 if zz < 3 else n_shuffles) / (n_shuffles + 1)
            rows.append({"condition": cond, "seed": seed, "null": "layer", "ncut": ncut, "null_mean": 9.3,
                         "zscore": zz, "percentile": pct, "significant": pct == 1 / (n_shuffles + 1),
                         "test_accuracy": 0.97})
    return rows


def test_claims_are_judged_on_combined_evidence_and_explained_at_quick_scale():
    from netmod.reproduce import _claims, _summarise

    quick = ReproduceConfig.quick_config()
    weak = _rows([+6.0, -1.0, +2.0])
    claims = _claims(quick, weak, _summarise(quick, weak))
    pruned = claims["pruned nets are more modular than their layer shuffles"]
    assert not pruned["holds"] and "quick scale" in pruned["reason"] and "--dataset mnist" in pruned["reason"]
    assert "z +6.0, -1.0, +2.0" in pruned["evidence"]
    assert claims["pruned+dropout nets are more modular than their layer shuffles"]["holds"]
    assert claims["pruning lowers the n-cut"]["holds"] and claims["dropout lowers the n-cut of pruned nets"]["holds"]
    strong = _rows([-8.0, -1.0, -9.0])
    claims = _claims(quick, strong, _summarise(quick, strong))
    assert claims["pruned nets are more modular than their layer shuffles"]["holds"]
    assert all(c["reason"] is None for c in claims.values())


def test_full_mnist_from_the_shared_data(tmp_path, standard_data):
    cfg = ReproduceConfig(**{**SMALL, "dataset": "mnist", "networks": 1, "data_dir": str(standard_data)})
    result = reproduce(cfg, tmp_path, progress=False, log=lambda s: None, figures=False, download=False)
    assert result.data_source.startswith("mnist (") and str(standard_data / "mnist") in result.data_source
    assert all(0.5 < r["test_accuracy"] <= 1 for r in result.rows)


@pytest.mark.parametrize("variant", ["l1", "l2", "clusterable-init", "halves-diff"])
def test_conditions_of_the_2021_table_train_unpruned_then_pruned(tmp_path, variant):
    cfg = ReproduceConfig(**{**SMALL, "variant": variant, "stack": True, "clustering_seeds": 2})
    result = reproduce(cfg, tmp_path, progress=False, log=lambda line: None, figures=False)
    assert {r["condition"] for r in result.rows} == {"unpruned", "pruned"}
    assert all(r["variant"] == variant for r in result.rows)
    for seed in (0, 1):
        dense, meta = load_model(tmp_path / "models" / f"embedded-{variant}-unpruned-seed{seed}.pt")
        pruned, pmeta = load_model(tmp_path / "models" / f"embedded-{variant}-pruned-seed{seed}.pt")
        assert meta["variant"] == pmeta["variant"] == variant and meta["trainer"] == "stacked"
        assert meta["l1"] == (5e-5 if variant == "l1" else 0.0) and meta["l2"] == (5e-5 if variant == "l2" else 0.0)
        assert meta["init"] == ("clusterable" if variant == "clusterable-init" else "glorot")
        assert meta["git_commit"] == netmod.versions()["git_commit"]
        for layer in pmeta["sparsity"]:
            assert layer == pytest.approx(0.9, abs=1e-3)
    # The published 6b row sits beside ours.
    ref = netmod.paper.PAPER_2021_VARIANTS[("mnist", variant, True)]
    summary = {s["condition"]: s for s in result.summary}
    assert summary["pruned"]["paper_ncut"] == ref["ncut"] and summary["pruned"]["paper_acc"] == ref["acc"]
    assert "clustering sd" in (tmp_path / "report.md").read_text()


def test_halves_condition_trains_on_halves_labels(tmp_path, monkeypatch):
    seen = []
    real = netmod.training.train_mlps

    def spy(train, **kw):
        seen.append(train)
        return real(train, **kw)

    monkeypatch.setattr(netmod.training, "train_mlps", spy)
    cfg = ReproduceConfig(**{**SMALL, "variant": "halves-same", "stack": True, "networks": 1, "clustering_seeds": 0})
    reproduce(cfg, tmp_path, progress=False, log=lambda line: None, figures=False)
    ds = netmod.datasets.load_embedded("train")
    images, labels = netmod.datasets.halves(ds.images, ds.labels, kind="same", seed=0)
    assert np.array_equal(seen[0][0], images) and np.array_equal(seen[0][1], labels)


def test_variant_checks():
    with pytest.raises(ValueError, match="condition"):
        ReproduceConfig(variant="dropout")
    with pytest.raises(ValueError, match="MNIST"):
        ReproduceConfig(dataset="fashion-mnist", variant="halves-diff")
    with pytest.raises(ValueError, match="executor"):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            reproduce(ReproduceConfig(**{**SMALL, "stack": True}), "unused-dir", executor=pool, log=lambda line: None)
