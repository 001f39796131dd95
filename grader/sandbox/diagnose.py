"""A sandboxed run's facts, told as Findings a student can act on (codes under ``sandbox.``)."""

from __future__ import annotations

import signal

from grader.files import format_bytes
from grader.findings import Finding, compact_list, error, info, warning
from grader.sandbox.interface import OUTPUT_DIR, BackendResult, SandboxJob
from grader.sandbox.spec import SampleSpec


def _exit_words(code: int) -> str:
    if code > 128 and code - 128 < signal.NSIG:
        try:
            return f"was killed by {signal.Signals(code - 128).name} (exit code {code})"
        except ValueError:
            pass
    return f"exited with code {code}"


def diagnose(spec: SampleSpec, job: SandboxJob, result: BackendResult) -> list[Finding]:
    src, out = spec.source, spec.produces
    got = result.collected
    findings: list[Finding] = []
    last = result.log.last_line()
    tail = f"; last output: {last!r}" if last else ""

    if result.timed_out:
        findings.append(
            error(
                "sandbox.timeout",
                f"the sampler did not finish within {job.timeout_s:g} s and was stopped{tail}",
                artifact=src,
                hint=f"make `{spec.command}` finish within {job.timeout_s:g} s for {spec.num:,} "
                "images (batch the sampling; do not wait for input or the network)",
            )
        )
    elif result.memory_exhausted:
        findings.append(
            error(
                "sandbox.memory",
                f"the sampler ran out of memory (limit {format_bytes(job.memory_bytes)}) "
                f"and was stopped{tail}",
                artifact=src,
                hint="sample in smaller batches and free tensors you no longer need",
            )
        )
    elif result.exit_code is None:
        findings.append(
            error(
                "sandbox.exit_code",
                f"the sampler's exit status is unknown (its sandbox ended early){tail}",
                artifact=src,
            )
        )
    elif result.exit_code != 0:
        findings.append(
            error(
                "sandbox.exit_code",
                f"the sampler {_exit_words(result.exit_code)}{tail}",
                artifact=src,
                hint=f"run `{spec.command}` from your source folder and fix the error it shows",
            )
        )

    if result.pids_exhausted:
        findings.append(
            warning(
                "sandbox.pids",
                f"the sampler tried to run more than {job.pids} processes or threads at once",
                artifact=src,
                hint="use fewer DataLoader workers or threads",
            )
        )

    usage = result.output_usage
    if got.over_bytes or (usage is not None and usage.full):
        findings.append(
            error(
                "sandbox.output_too_large",
                f"the sampler filled its output folder's cap of {format_bytes(job.output_max_bytes)}"
                + (" and its output was discarded" if got.over_bytes else ""),
                artifact=out,
                hint=f"write only the {spec.num:,} images to {OUTPUT_DIR}, nothing else",
            )
        )
    if got.over_files or (usage is not None and usage.out_of_inodes):
        findings.append(
            error(
                "sandbox.too_many_files",
                f"the sampler created more than the {job.output_max_files:,} files its output "
                "folder allows" + (" and its output was discarded" if got.over_files else ""),
                artifact=out,
                hint=f"write only the {spec.num:,} images to {OUTPUT_DIR}",
            )
        )
    if got.symlinks:
        findings.append(
            error(
                "sandbox.symlink_in_output",
                f"the sampler left {len(got.symlinks)} symbolic link(s) in its output "
                f"({compact_list(got.symlinks, 3)}); they were dropped, never followed",
                artifact=out,
                hint="write image files, not links",
            )
        )
    if got.special or got.unsafe_names:
        items = got.special + [f"{n} (unsafe name)" for n in got.unsafe_names]
        findings.append(
            error(
                "sandbox.special_file_in_output",
                f"the sampler left {len(items)} "
                + ("entry that is" if len(items) == 1 else "entries that are")
                + f" not a regular file in its output ({compact_list(items, 3)}); "
                "they were dropped",
                artifact=out,
            )
        )
    if got.files == 0 and not got.over_limit:
        reason = f" ({got.error})" if got.error else ""
        findings.append(
            error(
                "sandbox.no_output",
                f"the sampler wrote no files to {OUTPUT_DIR}{reason}",
                artifact=out,
                hint=f"save the images into the folder given as {{output}} ({OUTPUT_DIR})",
            )
        )
    if result.log.truncated:
        findings.append(
            info(
                "sandbox.log_truncated",
                f"the sampler printed {format_bytes(result.log.total)}; the log keeps the first and last "
                f"{format_bytes(job.log_max_bytes // 2)}",
                artifact=src,
            )
        )
    return findings
