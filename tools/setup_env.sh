#!/usr/bin/env bash
# Create (or reuse) the pinned Python environment and install ktan_det into it in editable mode.
#
#   tools/setup_env.sh            -> a full environment in .venv
#   KTAN_ENV_CACHE=DIR tools/setup_env.sh
#                                 -> the packages in DIR/venv-<hash of the pins>, built once and
#                                    shared; .venv is a small environment of this checkout that
#                                    sees them and holds only its own editable ktan_det. Fresh
#                                    clones (CI) reuse the cache instead of each adding ~5.5 GB.
#
# Idempotent: when the environment matches the pins, this takes seconds.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
cd "$repo"

# The heavy stack (torch, mmcv compiled from source) is keyed by its pins; the test tools are
# added on top and keyed apart, so that changing them does not rebuild the stack.
pins_hash=$( { "$python" -c 'import sys; print(sys.version)'; cat requirements/build.txt requirements/runtime.txt; } \
    | sha256sum | cut -c1-16)
tests_hash=$(sha256sum requirements/tests.txt | cut -c1-16)

# Build the pinned stack into $1 unless it is there already (one builder at a time).
build_packages() {
    local venv=$1
    mkdir -p "$(dirname "$venv")"
    exec 9>"$venv.lock"
    flock 9
    if [ "$(cat "$venv/.ktan-pins" 2>/dev/null)" != "$pins_hash" ]; then
        local start
        start=$(date +%s)
        echo "setup_env: building $venv (first time: 11-33 min on 2 cores, most of it compiling mmcv)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        local pip="$venv/bin/python -m pip install --progress-bar off"
        $pip -r requirements/build.txt
        $pip torch torchvision -c requirements/runtime.txt
        # mmcv 2.1.0 is source-only on PyPI. torch 2.14's headers need C++20, but mmcv's
        # setup.py passes -std=c++17, so compile through a wrapper that rewrites the flag. With a
        # GPU and a CUDA toolkit present, mmcv's setup.py builds the CUDA ops as well (or set
        # FORCE_CUDA=1).
        cat > "$venv/bin/cxx20" <<'EOF'
#!/usr/bin/env bash
args=()
for a in "$@"; do [ "$a" = "-std=c++17" ] && a="-std=c++20"; args+=("$a"); done
exec "${KTAN_REAL_CXX:-g++}" "${args[@]}"
EOF
        chmod +x "$venv/bin/cxx20"
        CC="$venv/bin/cxx20" CXX="$venv/bin/cxx20" MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            PATH="$venv/bin:$PATH" $pip --no-build-isolation -c requirements/runtime.txt mmcv
        $pip -r requirements/runtime.txt
        echo "$pins_hash" > "$venv/.ktan-pins"
        echo "setup_env: packages built in $(( $(date +%s) - start )) s"
    fi
    if [ "$(cat "$venv/.ktan-tests" 2>/dev/null)" != "$tests_hash" ]; then
        "$venv/bin/python" -m pip install --progress-bar off -c requirements/runtime.txt \
            -r requirements/tests.txt
        echo "$tests_hash" > "$venv/.ktan-tests"
    fi
    touch "$venv/.ktan-pins"  # last use, for pruning
    flock -u 9
}

# A checkout set up over a shared cache keeps using it when the variable is not set again (as in
# `make bench-env` or `make demo` later), instead of replacing its .venv by a full 5.5 GB one.
if [ -z "${KTAN_ENV_CACHE:-}" ] && [ -f .venv/.ktan-shared ]; then
    KTAN_ENV_CACHE=$(dirname "$(cat .venv/.ktan-shared)")
fi

if [ -n "${KTAN_ENV_CACHE:-}" ]; then
    shared="$KTAN_ENV_CACHE/venv-$pins_hash"
    build_packages "$shared"
    # Environments of older pins unused for a week are dead weight (5.5 GB each).
    find "$KTAN_ENV_CACHE" -maxdepth 2 -name .ktan-pins -mtime +7 -printf '%h\n' 2>/dev/null \
        | while read -r old; do [ "$old" != "$shared" ] && rm -rf "$old" "$old.lock"; done
    if [ "$(cat .venv/.ktan-shared 2>/dev/null)" != "$shared" ]; then
        rm -rf .venv
        "$python" -m venv .venv
        site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        shared_site=$("$shared/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        echo "import site; site.addsitedir('$shared_site')" > "$site/ktan_shared_env.pth"
        echo "$shared" > .venv/.ktan-shared
        rm -f .venv/.ktan-editable
    fi
else
    build_packages "$repo/.venv"
fi

if [ "$(cat .venv/.ktan-editable 2>/dev/null)" != "$repo" ]; then
    .venv/bin/python -m pip install --progress-bar off --no-deps --no-build-isolation -e "$repo" >/dev/null
    echo "$repo" > .venv/.ktan-editable
fi
.venv/bin/python -c 'import importlib.util as u; assert u.find_spec("mmdet") and u.find_spec("ktan_det")'
echo "setup_env: ready (.venv${KTAN_ENV_CACHE:+, packages in $shared})"
