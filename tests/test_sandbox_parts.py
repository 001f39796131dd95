"""The sandbox's host-side parts, without an engine: log capture, output extraction from real
tar streams, command placeholders, findings, and the provenance audit on real PNGs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.errors import GraderError
from grader.sandbox import audit_against_submitted, audit_spec, format_command
from grader.sandbox.collect import ChunkReader, Collected, extract_output
from grader.sandbox.diagnose import diagnose
from grader.sandbox.interface import BackendResult, OutputUsage, SandboxJob
from grader.sandbox.logs import LogCapture
from grader.sandbox.spec import SampleAudit, SampleSpec

MB = 1024**2


def _spec(**overrides) -> SampleSpec:
    values = {
        "source": "source",
        "produces": "images",
        "command": "python3 sample.py --out {output} --num {num} --seed {seed}",
        "num": 10,
    }
    values.update(overrides)
    return SampleSpec(**values)


# ---------------------------------------------------------------- logs


def test_log_capture_keeps_head_and_tail_of_a_huge_stream():
    log = LogCapture(100)
    log.drain(b"%06d\n" % i for i in range(200_000))  # 1.4 MB, never held at once
    text = log.text()
    assert log.truncated and log.total == 1_400_000
    assert text.startswith("000000\n")
    assert text.rstrip().endswith("199999")
    assert "1,399,900 bytes of output not kept" in text
    assert log.last_line() == "199999"


def test_log_capture_short_output_is_kept_whole():
    log = LogCapture(64)
    for chunk in (b"epoch 1\n", b"", b"Traceback: boom\n"):
        log.feed(chunk)
    assert not log.truncated
    assert log.text() == "epoch 1\nTraceback: boom\n"
    assert log.last_line() == "Traceback: boom"


def test_log_capture_survives_cut_multibyte_characters():
    log = LogCapture(9)
    log.feed("ééééééééééé".encode())
    assert log.truncated and "\ufffd" in log.text()


# ---------------------------------------------------------------- output extraction


def _tar(build) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        build(tar)
    buf.seek(0)
    return buf


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    tar.addfile(info)


def test_extract_writes_regular_files_and_drops_everything_else(tmp_path):
    victim = tmp_path / "host-secret.txt"
    victim.write_text("do not touch")

    def build(tar):
        _add(tar, ".", tarfile.DIRTYPE)
        _add_file(tar, "./00001.png", b"png bytes")
        _add(tar, "./sub", tarfile.DIRTYPE)
        _add_file(tar, "./sub/00002.png", b"more")
        _add(tar, "./00003.png", tarfile.SYMTYPE, str(victim))
        _add(tar, "./escape", tarfile.SYMTYPE, "../../..")
        _add(tar, "./hard", tarfile.LNKTYPE, "./00001.png")
        _add(tar, "./pipe", tarfile.FIFOTYPE)
        _add(tar, "./dev", tarfile.CHRTYPE)
        _add_file(tar, "../outside.txt", b"traversal")
        _add_file(tar, "/abs.txt", b"absolute")

    dest = tmp_path / "out"
    got = extract_output(_tar(build), dest, max_files=100, max_bytes=MB)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "00001.png",
        "sub",
        "sub/00002.png",
    ]
    assert (got.files, got.entries, got.bytes) == (2, 3, 13)
    assert got.symlinks == [f"00003.png -> {victim}", "escape -> ../../.."]
    assert got.special == ["dev (character device)", "hard (hard link)", "pipe (fifo)"]
    assert got.unsafe_names == ["../outside.txt", "/abs.txt"]
    assert victim.read_text() == "do not touch"
    assert not (tmp_path / "outside.txt").exists() and got.error is None


def test_extract_over_the_caps_keeps_nothing(tmp_path):
    def many(tar):
        for i in range(12):
            _add_file(tar, f"{i:05d}.png", b"x")

    got = extract_output(_tar(many), tmp_path / "a", max_files=10, max_bytes=MB)
    assert got.over_files and not got.over_bytes and list((tmp_path / "a").iterdir()) == []

    def big(tar):
        _add_file(tar, "big.bin", b"\0" * 3000)

    got = extract_output(_tar(big), tmp_path / "b", max_files=10, max_bytes=2048)
    assert got.over_bytes and list((tmp_path / "b").iterdir()) == []


def test_extract_reads_chunked_streams_and_reports_garbage(tmp_path):
    def one(tar):
        _add_file(tar, "00001.png", b"abc" * 5000)

    raw = _tar(one).getvalue()
    chunks = [raw[i : i + 777] for i in range(0, len(raw), 777)]
    got = extract_output(ChunkReader(chunks), tmp_path / "a", max_files=5, max_bytes=MB)
    assert got.files == 1 and (tmp_path / "a" / "00001.png").read_bytes() == b"abc" * 5000

    got = extract_output(io.BytesIO(b"not a tar stream" * 100), tmp_path / "b", 5, MB)
    assert got.error is not None and got.files == 0
    got = extract_output(io.BytesIO(b""), tmp_path / "c", 5, MB)
    assert got.error is not None and got.files == 0


# ---------------------------------------------------------------- command and spec


def test_format_command_fills_only_its_placeholders():
    assert format_command("python3 s.py {output} {num} {seed}", num=10000, seed=42) == (
        "python3 s.py /output 10000 42"
    )
    shell = 'cd src && OUT={output} python3 s.py --n {num} "${HOME}" {other}'
    assert format_command(shell, num=5, seed=0) == (
        'cd src && OUT=/output python3 s.py --n 5 "${HOME}" {other}'
    )


def test_job_environment_is_small_and_hostless(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak")
    env = SandboxJob.from_spec(_spec(cpus=3.5)).environment()
    assert "AWS_SECRET_ACCESS_KEY" not in env and env["HOME"] == "/tmp"
    assert env["OMP_NUM_THREADS"] == "3"
    assert sorted(env) == [
        "HOME",
        "LANG",
        "MKL_NUM_THREADS",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "PATH",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
    ]


def test_output_usage_knows_a_full_tmpfs():
    assert OutputUsage.parse("4096 1024 0 202 150").full
    assert not OutputUsage.parse("4096 1024 900 202 150").full
    assert OutputUsage.parse("4096 1024 900 202 0").out_of_inodes
    assert OutputUsage.parse("garbage") is None and OutputUsage.parse("1 2 3") is None


# ---------------------------------------------------------------- findings


def _result(**kw) -> BackendResult:
    log = LogCapture(1024)
    log.feed(kw.pop("log", b"wrote images\n"))
    values = {
        "backend": "docker",
        "exit_code": 0,
        "timed_out": False,
        "seconds": 1.0,
        "log": log,
        "collected": Collected(files=10, entries=10, bytes=1000),
    }
    values.update(kw)
    return BackendResult(**values)


def _codes(spec, result) -> list[str]:
    return sorted(f.code for f in diagnose(spec, SandboxJob.from_spec(spec), result))


def test_diagnose_clean_run_has_no_findings():
    assert _codes(_spec(), _result()) == []


def test_diagnose_names_each_failure():
    spec = _spec(timeout_s=60)
    assert _codes(spec, _result(timed_out=True, exit_code=137)) == ["sandbox.timeout"]
    crash = _result(exit_code=1, log=b"Traceback...\nRuntimeError: CUDA not available\n")
    findings = diagnose(spec, SandboxJob.from_spec(spec), crash)
    assert [f.code for f in findings] == ["sandbox.exit_code"]
    assert "exited with code 1" in findings[0].message
    assert "RuntimeError: CUDA not available" in findings[0].message
    killed = diagnose(spec, SandboxJob.from_spec(spec), _result(exit_code=137))
    assert "killed by SIGKILL" in killed[0].message
    oom = _result(exit_code=137, memory_exhausted=True)
    assert _codes(spec, oom) == ["sandbox.memory"]
    full = _result(exit_code=1, output_usage=OutputUsage.parse("4096 256 0 100 90"))
    assert _codes(spec, full) == ["sandbox.exit_code", "sandbox.output_too_large"]
    empty = _result(collected=Collected())
    assert _codes(spec, empty) == ["sandbox.no_output"]
    links = _result(
        collected=Collected(files=3, symlinks=["a -> /etc/shadow"], special=["p (fifo)"])
    )
    assert _codes(spec, links) == ["sandbox.special_file_in_output", "sandbox.symlink_in_output"]
    over = _result(collected=Collected(files=0, over_files=True), pids_exhausted=True)
    assert _codes(spec, over) == ["sandbox.pids", "sandbox.too_many_files"]


# ---------------------------------------------------------------- audit


def _write_set(folder: Path, seed: int, count: int, names: str = "{:05d}.png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, count + 1):
        rng = np.random.default_rng([seed, i])
        path = folder / names.format(i)
        Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_audit_exact_matches_identical_images(tmp_path):
    submitted = _write_set(tmp_path / "submitted", seed=1, count=10)
    _write_set(tmp_path / "regen", seed=1, count=4)
    audit = SampleAudit(count=4, mode="exact", tolerance=0.0)
    assert audit_against_submitted(tmp_path / "regen", submitted, audit) == []


def test_audit_exact_reports_differences_and_tolerance(tmp_path):
    submitted = _write_set(tmp_path / "submitted", seed=1, count=4)
    regen = tmp_path / "regen"
    _write_set(regen, seed=1, count=4)
    pixels = np.asarray(Image.open(regen / "00002.png")).copy()
    pixels[0, 0] = 255 - pixels[0, 0]  # one pixel changed: a tiny mean difference
    Image.fromarray(pixels).save(regen / "00002.png")
    Image.new("RGB", (32, 32)).save(regen / "00003.png")

    strict = audit_against_submitted(
        regen, submitted, SampleAudit(count=4, tolerance=0.0), artifact="images"
    )
    assert [f.code for f in strict] == ["sandbox.audit_mismatch"]
    assert "2 of 4 regenerated images differ" in strict[0].message
    assert "00003.png (size 32x32 vs 28x28)" in strict[0].message
    assert strict[0].artifact == "images"

    lenient = audit_against_submitted(regen, submitted, SampleAudit(count=4, tolerance=1.0))
    assert [f.code for f in lenient] == ["sandbox.audit_mismatch"]
    assert "1 of 4" in lenient[0].message and "00002.png" not in lenient[0].message


def test_audit_exact_unmatched_and_empty(tmp_path):
    submitted = _write_set(tmp_path / "submitted", seed=1, count=3, names="img_{}.png")
    _write_set(tmp_path / "regen", seed=1, count=3)
    found = audit_against_submitted(tmp_path / "regen", submitted, SampleAudit(count=3))
    assert [f.code for f in found] == ["sandbox.audit_unmatched"]
    (tmp_path / "none").mkdir()
    found = audit_against_submitted(tmp_path / "none", submitted, SampleAudit(count=3))
    assert [f.code for f in found] == ["sandbox.audit_no_images"]


def _mean_distance(a: list[Path], b: list[Path]) -> float:
    """A real (if crude) set distance for the hook: distance of the mean images."""

    def mean(paths):
        return np.mean([np.asarray(Image.open(p), dtype=float) for p in paths], axis=0)

    return float(np.abs(mean(a) - mean(b)).mean())


def test_audit_fid_mode_uses_the_given_function(tmp_path):
    submitted = _write_set(tmp_path / "submitted", seed=1, count=6)
    regen = tmp_path / "regen"
    _write_set(regen, seed=1, count=6)
    calls = []

    def fid(a, b):
        calls.append((len(a), len(b)))
        return _mean_distance(a, b)

    audit = SampleAudit(count=6, mode="fid", tolerance=5.0)
    assert audit_against_submitted(regen, submitted, audit, fid=fid) == []
    assert calls == [(6, 6)]
    for path in regen.iterdir():
        Image.new("RGB", (28, 28), "white").save(path)
    found = audit_against_submitted(regen, submitted, audit, fid=fid)
    assert [f.code for f in found] == ["sandbox.audit_fid"]
    with pytest.raises(GraderError, match="no FID function"):
        audit_against_submitted(regen, submitted, audit)


def test_audit_spec_reruns_k_images_with_the_same_seed():
    spec = _spec(num=10000, seed=3, audit=SampleAudit(count=64))
    rerun = audit_spec(spec)
    assert (rerun.num, rerun.seed, rerun.command) == (64, 3, spec.command)
    with pytest.raises(GraderError):
        audit_spec(_spec())
