# Sourced by the device scripts (bench/gpu_run.sh, bench/gdmtl_extras.sh, bench/plans/*.sh) on the GPU machine:
# installs the carried wheels once per machine and wheel folder (a warm machine keeps /tmp/site between calls;
# flock: several scripts may start at once) and sets the
# environment. WHEELS names the wheel folder (default .whl); NO_WHEELS=1 (a local smoke test) installs none.
[ "${NO_WHEELS:-0}" = 1 ] || ( flock 9; [ -e /tmp/site/.installed-$(basename ${WHEELS:-.whl}) ] || { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site ${WHEELS:-.whl}/*.whl && touch /tmp/site/.installed-$(basename ${WHEELS:-.whl}); } ) 9>/tmp/site.lock || exit 1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True JAX_PLATFORMS=cpu PYTHONPATH=/tmp/site:$PWD/src \
    PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 AUXIR_CACHE=/tmp/auxir-cache
