"""Fréchet distance at 2048 dims: the symmetric eigen route vs scipy's sqrtm (the course tools).

    nice python benchmarks/bench_frechet.py [--repeat 3]

Covariances are built like Inception feature covariances: a random rotation of a decaying
(power-law) spectrum, one full rank (the reference, as from 60,000 images) and one from
N samples (a student's set). Prints wall and CPU seconds and the relative difference.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import numpy as np
from pytorch_fid.fid_score import calculate_frechet_distance as scipy_route

from grader.metrics.frechet import ReferenceStats, feature_statistics, sqrtm_psd

DIMS = 2048


def _covariance_factor(rng, dims):
    q, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    spectrum = 3.0 / (1 + np.arange(dims)) ** 1.2
    return q * np.sqrt(spectrum)


def _timed(fn, repeat):
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return value, best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"load average {os.getloadavg()}, cpus {os.cpu_count()}, best of {args.repeat}")

    factor = _covariance_factor(rng, DIMS)
    ref_mu = rng.normal(size=DIMS)
    ref_sigma = factor @ factor.T

    _, wall, cpu = _timed(lambda: sqrtm_psd(ref_sigma), args.repeat)
    print(f"sqrtm(Σ_ref) by eigh, once per reference file:  {wall:7.2f} s wall {cpu:7.2f} s CPU")

    reference = ReferenceStats(ref_mu, ref_sigma)
    _ = reference.sqrt_sigma  # the cached part, as in a batch run
    for n in args.n:
        samples = rng.normal(size=(n, DIMS)) @ (factor * 1.1).T + 0.05
        _compare(n, samples, reference, args.repeat)


def _compare(n, samples, reference, repeat):
    mu, sigma = feature_statistics(samples)
    ours, wall, cpu = _timed(partial(reference.distance, mu, sigma), repeat)
    print(f"N={n:>6}  eigen route, (mu, Σ), root cached:     {wall:7.2f} s wall "
          f"{cpu:7.2f} s CPU  FID {ours:.9f}")
    if n <= DIMS:
        gram, wall, cpu = _timed(partial(reference.distance_to_features, samples), repeat)
        print(f"N={n:>6}  eigen route, N x N Gram, root cached:  {wall:7.2f} s wall "
              f"{cpu:7.2f} s CPU  FID {gram:.9f}")
    try:
        official, wall, cpu = _timed(
            partial(scipy_route, mu, sigma, reference.mu, reference.sigma), 1
        )
    except ValueError as exc:  # "Imaginary component ..." when N < 2048
        print(f"N={n:>6}  scipy sqrtm (pytorch-fid 0.3.0):       failed: {exc}")
        return
    rel = abs(ours - official) / official
    print(f"N={n:>6}  scipy sqrtm (pytorch-fid 0.3.0):       {wall:7.2f} s wall "
          f"{cpu:7.2f} s CPU  FID {official:.9f}  rel diff {rel:.1e}")


if __name__ == "__main__":
    main()
