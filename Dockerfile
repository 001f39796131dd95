# The image that runs student samplers (grader/sandbox/docker.py).
#
# On a GPU host build it on a CUDA PyTorch base:
#   docker build --build-arg BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime \
#       -t grader-sampler:latest - < Dockerfile
# Without a registry, .ci/sandbox-setup.sh builds it on a local Debian base (python3, numpy,
# Pillow) imported from a debootstrap rootfs.
#
# The sandbox runs it with no network, a read-only root, the submission mounted read-only at
# /submission and a size-capped tmpfs at /output and /tmp. Nothing here needs the network at
# run time; the image copies no file of the grader or of any course.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}

# The student's code runs as this unprivileged user (uid/gid 10001, fixed: the sandbox asks
# for it by number). It owns nothing in the image.
RUN (getent group sampler >/dev/null || groupadd --gid 10001 sampler) \
    && (getent passwd sampler >/dev/null \
        || useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
            --shell /usr/sbin/nologin sampler) \
    && mkdir -p /submission /output

ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    TORCH_HOME=/tmp/torch \
    XDG_CACHE_HOME=/tmp/cache

USER 10001:10001
WORKDIR /submission
CMD ["sleep", "infinity"]
