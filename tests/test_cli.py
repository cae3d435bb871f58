import json
import subprocess
import sys

import numpy as np
import pytest

from critic.build import build
from critic.cli import main
from critic.embed import embed_texts


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_reports_the_build(capsys, built_home):
    code, out, _ = run_cli(capsys, "info", "--home", str(built_home.root), "--json")
    info = json.loads(out)
    assert code == 0
    assert info["artworks"] == 300 and (info["train"], info["validation"], info["test"]) == (210, 30, 60)
    assert "all-MiniLM-L6-v2" in info["embedding_model"]
    assert set(info["vae"]["test"]) >= {"elbo", "kl", "active_units", "attribute_accuracy"}
    code, out, _ = run_cli(capsys, "info", "--home", str(built_home.root))
    assert code == 0 and "active units" in out


def test_second_build_embeds_nothing_and_reuses_the_models(built_home, train_config, writer_config):
    messages = []
    info = build(built_home, limit=300, train_config=train_config, writer_config=writer_config, progress=False,
                 log=messages.append)
    assert info["newly_embedded"] == 0
    assert "vae: training data unchanged, checkpoint reused" in messages
    assert info["writer"]["reused"] and info["writer"]["training_descriptions"] > 50


@pytest.mark.slow
def test_train_and_eval_writer(capsys, built_home, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(built_home.root, home)
    code, out, _ = run_cli(capsys, "train", "writer", "--home", str(home), "--epochs", "1", "--json")
    trained = json.loads(out)
    assert code == 0 and not trained["reused"] and trained["train_config"]["epochs"] == 1
    assert (home / "writer" / "writer.safetensors").exists()
    argv = ["eval", "writer", "--home", str(home), "--limit", "3", "--drafter", "edit+decoder-rank"]
    code, out, _ = run_cli(capsys, *argv, "--drafter", "template", "--json")
    result = json.loads(out)["test"]
    assert code == 0 and result["artworks"] == 3
    assert [row["drafter"] for row in result["rows"]] == ["edit+decoder-rank", "template"]
    # With 3 artworks every draft is in the examples: the figures must be what those drafts give.
    for row in result["rows"]:
        examples = result["examples"][row["drafter"]]
        texts = [e["draft"] for e in examples] + [e["reference"] for e in examples]
        drafts, references = embed_texts(texts)[0].reshape(2, 3, -1)
        assert row["sbert_cosine"] == pytest.approx(float(np.mean(np.sum(drafts * references, axis=1))), abs=1e-4)
        assert row["mean_words"] == pytest.approx(np.mean([len(e["draft"].split()) for e in examples]))
    assert result["rows"][1]["fact_check_flag_rate"] == 0.0  # the template states only the record's own facts
    code, _, err = run_cli(capsys, "eval", "writer", "--home", str(home), "--drafter", "gpt-9")
    assert code == 2 and "gpt-9" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "--catalog", "no/such/file.csv"], "no/such/file.csv"),
        (["build", "--catalog", "{catalog}", "--map", "title"], "title"),
        (["build", "--catalog", "{catalog}", "--map", "painter=Artist"], "painter"),
        (["build", "--catalog", "{catalog}", "--map", "title=NoSuchColumn"], "NoSuchColumn"),
        (["build", "--map", "title=Name"], "--catalog"),
        (["info"], "critic build"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, argv, message):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("Ident,Name,Artist\n1,A vase,Anon\n")
    argv = [a.replace("{catalog}", str(catalog)) for a in argv] + ["--home", str(tmp_path / "home")]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("critic: error:") and message in err
    assert not (tmp_path / "home" / "artworks.sqlite").exists()


def test_an_unknown_tone_is_refused_with_the_writers_tones(capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["critique", "1", "--tone", "sonnet", "--home", str(tmp_path)])
    assert stopped.value.code == 2
    assert "unknown tone 'sonnet': choose one of label, critique, scholarly" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "critic.cli", "info", "--home", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.startswith("critic: error:")
