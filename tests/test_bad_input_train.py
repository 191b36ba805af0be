"""`fusar-klip train` refuses bad input with one line that names the key or path (reliability issue): config values,
data folders, a failed first start that must not block the corrected rerun, two trainings in one run folder."""
import json, os, socket, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from fusar_klip.cli import main

EXE = str(Path(sys.executable).parent / "fusar-klip")
TORCHRUN = str(Path(sys.executable).parent / "torchrun")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    "A micro world tiled into 2 x 36 training chips of 64 px, one caption each."
    from conftest import micro_world
    return micro_world(tmp_path_factory.mktemp("badtrain"), size=64, split="train")


def config(tmp_path, data, **kw):
    base = dict(data=str(data), out=str(tmp_path / "run"), mode="blip", layers=1, steps=2, batch_size=4, max_len=160,
                queue_size=16, log_every=1, ckpt_every=1, mask_prob=0.0, sample_negatives=False, progress=False,
                tensorboard=False)
    base.update(kw)
    p = tmp_path / "train.json"
    p.write_text(json.dumps(base))
    return p


def written(run) -> list:
    "The files a run folder holds (the CLI may create the folder itself to check it is writable)."
    return sorted(p.name for p in Path(run).rglob("*")) if Path(run).exists() else []


def train_cli(capsys, cfg, *sets):
    "Run `fusar-klip train --config CFG --set ...` in this process; return (exit status, stderr)."
    capsys.readouterr()
    rc = main(["train", "--config", str(cfg), *[a for s in sets for a in ("--set", s)]])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("setting,expected", [
    ("steps=2.5", "steps must be an integer >= 1; got 2.5"),
    ("steps=true", "steps must be an integer >= 1; got True"),
    ("max_len=0", "max_len must be an integer >= 16; got 0"),
    ("max_len=15", "max_len must be an integer >= 16; got 15"),
    ("ckpt_every=0", "ckpt_every must be an integer >= 1; got 0"),
    ("log_every=0", "log_every must be an integer >= 1; got 0"),
    ("keep_last=0", "keep_last must be an integer >= 1; got 0"),
    ("grad_accum=1.5", "grad_accum must be an integer >= 1; got 1.5"),
    ("batch_size=\"8\"", "batch_size must be an integer >= 1; got '8'"),
    ("layers=-1", "layers must be an integer >= 0; got -1"),
    ("queue_size=-16", "queue_size must be an integer >= 0; got -16"),
    ("tokenizer_vocab=0", "tokenizer_vocab must be an integer >= 1; got 0"),
    ("seed=0.5", "seed must be an integer >= 0; got 0.5"),
    ("lr=NaN", "lr must be a finite number > 0; got nan"),
    ("lr=Infinity", "lr must be a finite number > 0; got inf"),
    ("lr=0", "lr must be a finite number > 0; got 0"),
    ("weight_decay=-0.1", "weight_decay must be a finite number >= 0; got -0.1"),
    ("warmup=1", "warmup must be a finite number in [0, 1); got 1"),
    ("min_lr=1.5", "min_lr must be a finite number in [0, 1]; got 1.5"),
    ("clip_grad=-1", "clip_grad must be a finite number >= 0 (0: no clipping); got -1"),
    ("mask_prob=-0.5", "mask_prob must be -1 (keep the preset's) or a number in [0, 1]; got -0.5"),
    ("device=tpu", "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'"),
    ("bf16=False", "bf16 must be true or false; got 'False'"),
    ("mode=simclr", "mode must be one of clip, blip, klip, image; got 'simclr'"),
    ('scio={"round": 2}', "scio has unknown key(s) 'round'; ScioConfig fields are phases, rounds"),
    ('scio={"rounds": 2.5}', "scio.rounds must be an integer; got 2.5"),
    ('scio={"phases": [0.5, 0.6, 0.1]}', "scio: SCIO phases must be three non-negative fractions summing to 1"),
])
def test_bad_value_is_refused_naming_key_and_value(tmp_path, capsys, setting, expected):
    cfg = config(tmp_path, tmp_path / "no_data_needed")
    rc, err = train_cli(capsys, cfg, setting)
    assert rc == 2, err
    assert f"{cfg}: bad training config -- " in err and expected in err, err
    assert len(err.strip().splitlines()) == 1 and written(tmp_path / "run") == []


def test_missing_or_unreadable_inputs_name_the_path(data, tmp_path, capsys):
    cfg = config(tmp_path, data)
    for setting, expected in [(f"data={tmp_path / 'gone'}", f"{tmp_path / 'gone'}: training data folder not found"),
                              (f"corpus={tmp_path / 'nohcot'}", f"{tmp_path / 'nohcot' / 'corpus.parquet'}: corpus not found"),
                              ("model=huge", "huge: no such model config")]:
        rc, err = train_cli(capsys, cfg, setting)
        assert rc == 2 and expected in err, err
        assert written(tmp_path / "run") == [], setting
    (tmp_path / "bad").mkdir(); (tmp_path / "bad" / "corpus.parquet").write_bytes(b"PAR1 half a file")
    rc, err = train_cli(capsys, cfg, f"corpus={tmp_path / 'bad'}")
    assert rc == 2 and f"{tmp_path / 'bad' / 'corpus.parquet'}: cannot be read as a corpus" in err, err
    assert written(tmp_path / "run") == []                               # nothing was written for any of them


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu(data, tmp_path, capsys):
    rc, err = train_cli(capsys, config(tmp_path, data), "device=cuda")
    assert rc == 2 and "device: 'cuda' asked for, but this machine has no usable CUDA GPU" in err, err


def test_grad_accum_larger_than_an_epoch_is_refused(data, tmp_path):
    "About 70 training captions make 17 batches of 4: grad_accum 20 would leave an epoch with no step (the loop never ended)."
    r = run_cli("train", "--config", config(tmp_path, data), "--set", "grad_accum=20", timeout=120)
    assert r.returncode == 2 and "grad_accum: 20 is more than the 17 batches of an epoch" in r.stderr, r.stderr


def test_failed_first_start_does_not_block_the_corrected_rerun(data, tmp_path, capsys):
    cfg, run = config(tmp_path, data), tmp_path / "run"
    rc, err = train_cli(capsys, cfg, f"corpus={tmp_path / 'typo'}")       # fails before anything is written
    assert rc == 2 and "corpus not found" in err
    rc, err = train_cli(capsys, cfg, "batch_size=1000")                   # fails once the model is built
    assert rc == 2 and "samples are too few for batch 1000 x 1 processes" in err, err
    assert not (run / "config.json").exists() and not (run / ".lock").exists()
    rc, err = train_cli(capsys, cfg)                                      # the corrected config, same folder
    assert rc == 0, err
    assert json.loads((run / "config.json").read_text())["batch_size"] == 4 and not (run / ".lock").exists()
    rc, err = train_cli(capsys, cfg, "lr=0.001")                          # a run with a checkpoint keeps its config
    assert rc == 2 and "another config (differs in lr)" in err, err


def test_a_held_run_folder_is_refused_at_once_and_a_stale_lock_taken_over(data, tmp_path, capsys, caplog):
    cfg, run = config(tmp_path, data), tmp_path / "run"
    run.mkdir(); (run / ".lock").write_text(f"{os.getpid()} {socket.gethostname()}\n")       # a live process holds it
    rc, err = train_cli(capsys, cfg)
    assert rc == 2 and f"{run}: another training is running in this run folder (pid {os.getpid()} on" in err, err
    assert (run / ".lock").exists() and not (run / "metrics.jsonl").exists()
    gone = subprocess.Popen(["true"]); gone.wait()
    (run / ".lock").write_text(f"{gone.pid} {socket.gethostname()}\n")                        # its process is gone
    rc, err = train_cli(capsys, cfg)
    assert rc == 0, err
    assert any(f"taking over the lock of process {gone.pid}" in r.getMessage() for r in caplog.records)
    assert not (run / ".lock").exists()


def test_two_trainings_into_one_folder(data, tmp_path):
    cfg, run = config(tmp_path, data, steps=500, ckpt_every=100), tmp_path / "run"
    first = subprocess.Popen([EXE, "train", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()                                                 # wait until the first one is in its loop
        while not (run / "metrics.jsonl").exists() and first.poll() is None and time.time() - t0 < 120: time.sleep(0.01)
        assert first.poll() is None, first.stderr.read()[-2000:]
        second = run_cli("train", "--config", cfg, timeout=120)         # refused at once, not after the first one
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"{run}: another training is running in this run folder (pid {first.pid} on" in second.stderr, second.stderr
        assert first.poll() is None                                      # the first one runs on
    finally:
        first.kill(); first.wait()
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1))                       # every metrics line once: the second wrote none


def test_ddp_ranks_stop_together_when_the_folder_is_held(data, tmp_path):
    "Only rank 0 takes the lock; the other rank learns of its refusal instead of waiting at a barrier."
    cfg, run = config(tmp_path, data), tmp_path / "run"
    run.mkdir(); (run / ".lock").write_text(f"{os.getpid()} {socket.gethostname()}\n")
    r = subprocess.run([TORCHRUN, "--nproc-per-node", "2", "--no-python", EXE, "train", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode != 0
    assert f"another training is running in this run folder (pid {os.getpid()}" in r.stderr, r.stderr[-3000:]
    assert "rank 0 could not start the run" in r.stderr, r.stderr[-3000:]     # rank 1 stopped with it
    assert (run / ".lock").read_text().split()[0] == str(os.getpid())
