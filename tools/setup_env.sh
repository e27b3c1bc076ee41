#!/usr/bin/env bash
# Create (or reuse) the pinned Python environment and install ktan_det into it in editable mode.
#
#   tools/setup_env.sh            -> .venv in the repository
#   KTAN_ENV_CACHE=DIR tools/setup_env.sh
#                                 -> DIR/venv-<hash of the pins>, linked as .venv; fresh clones
#                                    reuse it instead of each adding ~5.5 GB to the disk (CI does this)
#
# Idempotent: when the environment matches the pins, only the editable install is checked (seconds).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
cd "$repo"

pins_hash=$( { "$python" -c 'import sys; print(sys.version)'; cat requirements/build.txt requirements/runtime.txt requirements/tests.txt; } \
    | sha256sum | cut -c1-16)

if [ -n "${KTAN_ENV_CACHE:-}" ]; then
    venv="$KTAN_ENV_CACHE/venv-$pins_hash"
    if [ -e .venv ] && [ ! -L .venv ]; then
        echo "setup_env: .venv exists and is not a link; remove it to use KTAN_ENV_CACHE" >&2
        exit 1
    fi
else
    venv="$repo/.venv"
fi
mkdir -p "$(dirname "$venv")"

# One builder at a time per environment; others wait and then reuse it.
exec 9>"$venv.lock"
flock 9

if [ "$(cat "$venv/.ktan-pins" 2>/dev/null)" != "$pins_hash" ]; then
    start=$(date +%s)
    echo "setup_env: building $venv (first time: ~15 min, most of it compiling mmcv)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    pip="$venv/bin/python -m pip install --progress-bar off"
    $pip -r requirements/build.txt
    $pip torch==2.14.1 torchvision==0.29.1 -c requirements/runtime.txt
    # mmcv 2.1.0 is source-only on PyPI. torch 2.14's headers need C++20, but mmcv's setup.py
    # passes -std=c++17, so compile through a wrapper that rewrites the flag. With a GPU and a
    # CUDA toolkit present, mmcv's setup.py builds the CUDA ops as well (or set FORCE_CUDA=1).
    cat > "$venv/bin/cxx20" <<'EOF'
#!/usr/bin/env bash
args=()
for a in "$@"; do [ "$a" = "-std=c++17" ] && a="-std=c++20"; args+=("$a"); done
exec "${KTAN_REAL_CXX:-g++}" "${args[@]}"
EOF
    chmod +x "$venv/bin/cxx20"
    CC="$venv/bin/cxx20" CXX="$venv/bin/cxx20" MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        PATH="$venv/bin:$PATH" $pip --no-build-isolation -c requirements/runtime.txt mmcv==2.1.0
    $pip -r requirements/runtime.txt -r requirements/tests.txt
    echo "$pins_hash" > "$venv/.ktan-pins"
    echo "setup_env: environment built in $(( $(date +%s) - start )) s"
    if [ -n "${KTAN_ENV_CACHE:-}" ]; then
        # Environments for older pins are dead weight (5.5 GB each).
        for old in "$KTAN_ENV_CACHE"/venv-*; do
            case "$old" in "$venv"|*.lock) ;; *) rm -rf "$old" "$old.lock" ;; esac
        done
    fi
fi

if [ "$(cat "$venv/.ktan-editable" 2>/dev/null)" != "$repo" ]; then
    "$venv/bin/python" -m pip install --progress-bar off --no-deps --no-build-isolation -e "$repo" >/dev/null
    echo "$repo" > "$venv/.ktan-editable"
fi
[ -n "${KTAN_ENV_CACHE:-}" ] && ln -sfn "$venv" .venv
echo "setup_env: ready ($venv)"
