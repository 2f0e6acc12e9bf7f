#!/usr/bin/env bash
# A one-machine Ray cluster for `pipesdfa run --address`, bound to loopback, token auth on.
# Needs bash and Ray >= 2.52 (`ray` on PATH). Other Ray sessions on the machine are left alone.
#
#   launch/laptop.sh [start]   start a Ray head on 127.0.0.1 (token authentication on)
#   launch/laptop.sh env       the `export` lines a client needs: eval "$(launch/laptop.sh env)"
#   launch/laptop.sh status    `ray status` of that head
#   launch/laptop.sh stop      stop that head (its processes only, unlike `ray stop`)
#
# Settings (environment):
#   PIPESDFA_RAY_PORT      GCS port of the head (default 6379)
#   PIPESDFA_RAY_CPUS      CPUs the head offers (default: all of this machine's)
#   PIPESDFA_RAY_HOST      address to bind (default 127.0.0.1; anything else exposes Ray
#                          to the network: whoever reaches its ports can run code here)
#   PIPESDFA_RAY_TEMP_DIR  Ray's temporary/session folder for this head
#                          (default /tmp/pipesdfa-ray-$USER-$PIPESDFA_RAY_PORT; refused if
#                          a link or another user's, made 0700)
#   RAY_AUTH_TOKEN_PATH    the token file (default ~/.ray/auth_token; created, mode 600,
#                          if missing); or RAY_AUTH_TOKEN, the token itself
set -euo pipefail

port="${PIPESDFA_RAY_PORT:-6379}"
host="${PIPESDFA_RAY_HOST:-127.0.0.1}"
cpus="${PIPESDFA_RAY_CPUS:-}"
user="${USER:-$(id -un)}"
temp_dir="${PIPESDFA_RAY_TEMP_DIR:-/tmp/pipesdfa-ray-${user}-${port}}"
default_token="${HOME}/.ray/auth_token"
token_file="${RAY_AUTH_TOKEN_PATH:-${default_token}}"
address="${host}:${port}"

die() {
    echo "laptop.sh: $*" >&2
    exit 1
}

need_ray() {
    command -v ray >/dev/null 2>&1 || die "the 'ray' command is not on PATH (pip install 'ray>=2.52')"
}

is_loopback() {
    [[ "${host}" == "127.0.0.1" || "${host}" == "localhost" || "${host}" == "::1" ]]
}

# The environment of the head and of its clients:
# - token authentication (Ray >= 2.52): RAY_AUTH_MODE=token on every process, and the token
#   from RAY_AUTH_TOKEN or the file RAY_AUTH_TOKEN_PATH (created here if missing);
# - loopback: on Linux, Ray replaces 127.0.0.1 (as --node-ip-address and in a client's
#   address) by the machine's network address, and its servers then listen on every
#   interface, unless it runs in single-machine mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
#   the default on macOS and Windows).
setup_env() {
    if [[ -z "${RAY_AUTH_TOKEN:-}" ]]; then
        if [[ ! -s "${token_file}" ]]; then
            echo "Creating a Ray authentication token in ${token_file} (mode 600)" >&2
            mkdir -p "$(dirname "${token_file}")"
            (
                umask 077
                head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${token_file}"
            )
        fi
        chmod 600 "${token_file}"
        export RAY_AUTH_TOKEN_PATH="${token_file}"
    fi
    export RAY_AUTH_MODE=token
    if is_loopback; then
        export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
    fi
}

env_lines() {
    echo "export RAY_AUTH_MODE=token"
    if [[ -n "${RAY_AUTH_TOKEN:-}" ]]; then
        echo "# and RAY_AUTH_TOKEN=<the token this head was started with>"
    else
        printf 'export RAY_AUTH_TOKEN_PATH=%q\n' "${token_file}"
    fi
    if is_loopback; then
        echo "export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0"
    fi
}

# PIDs of this head's processes, and of what they started (workers, agents): the head's own
# processes name its session folder, which lies under ${temp_dir}, a folder no other Ray
# session uses. With "raylet", only the head's raylet.
head_pids() {
    ps -u "$(id -u)" -o pid=,ppid=,stat=,args= | LAPTOP_DIR="${temp_dir}/" ONLY="${1:-}" awk '
        $3 !~ /^Z/ {
            parent[$1] = $2
            if (index($0, ENVIRON["LAPTOP_DIR"]) && $0 !~ /laptop\.sh/ &&
                (ENVIRON["ONLY"] == "" || $4 ~ /\/raylet$/)) root[$1] = 1
        }
        END {
            grown = (ENVIRON["ONLY"] == "")
            while (grown) {
                grown = 0
                for (p in parent) if (!(p in root) && (parent[p] in root)) { root[p] = 1; grown = 1 }
            }
            for (p in root) print p
        }'
}

# Wait up to $1 seconds for the PIDs that follow to end (zombies count as ended); print those
# still running.
wait_gone() {
    local seconds="$1" pid alive _
    shift
    for _ in $(seq 1 "$((seconds * 5))"); do
        alive=()
        for pid in "$@"; do
            [[ "$(ps -o stat= -p "${pid}" 2>/dev/null | tr -d ' ' || true)" =~ ^[^Z] ]] &&
                alive+=("${pid}")
        done
        [[ ${#alive[@]} -eq 0 ]] && return 0
        sleep 0.2
    done
    echo "${alive[@]}"
}

# The head's folder is ours alone: under /tmp another user could make it first and plant
# files in it, so a link, or a folder someone else owns, is refused; ours is set 0700.
private_dir() {
    local dir="$1"
    [[ -L "${dir}" ]] && die "${dir} is a symbolic link; refusing to start a Ray head in it (set PIPESDFA_RAY_TEMP_DIR to a folder of yours)"
    (umask 077 && mkdir -p "${dir}")
    [[ -O "${dir}" ]] || die "${dir} belongs to another user; refusing to start a Ray head in it (set PIPESDFA_RAY_TEMP_DIR to a folder of yours)"
    chmod 700 "${dir}"
}

start() {
    need_ray
    if ! is_loopback; then
        echo "WARNING: binding Ray to ${host}: anyone who reaches its ports can run code on" \
            "this machine (token auth is on, but traffic is not encrypted)." >&2
    fi
    setup_env
    if [[ -n "$(head_pids)" ]]; then
        die "a head is already running from ${temp_dir} (launch/laptop.sh stop first)"
    fi
    private_dir "${temp_dir}"
    local args=(
        --head
        --node-ip-address "${host}"
        --port "${port}"
        --include-dashboard=false
        --dashboard-host 127.0.0.1
        --temp-dir "${temp_dir}"
        --disable-usage-stats
    )
    if [[ -n "${cpus}" ]]; then
        args+=(--num-cpus "${cpus}")
    fi
    ray start "${args[@]}"
    cat <<EOF

Ray head running at ${address} (token authentication on).
Token: ${RAY_AUTH_TOKEN_PATH:-in \$RAY_AUTH_TOKEN}; keep it private (mode 600).

Connect from this machine, in a shell with:
$(env_lines | sed 's/^/    /')
(or: eval "\$($0 env)"), then:
    pipesdfa run --address ${address} ...
    python -c "import ray; ray.init(address='${address}')"
Status: $0 status    Stop: $0 stop
EOF
}

status() {
    need_ray
    if [[ -z "$(head_pids)" ]]; then
        echo "No Ray head from ${temp_dir} is running."
        return 1
    fi
    setup_env
    ray status --address "${address}"
}

stop() {
    local all raylets left
    read -ra all <<<"$(head_pids | tr '\n' ' ')"
    if [[ ${#all[@]} -eq 0 ]]; then
        echo "No Ray head from ${temp_dir} is running."
        return 0
    fi
    echo "Stopping the Ray head at ${address} (${#all[@]} processes)"
    # The raylet first: it ends its workers and agents; then the GCS, monitors, dashboard.
    read -ra raylets <<<"$(head_pids raylet | tr '\n' ' ')"
    if [[ ${#raylets[@]} -gt 0 ]]; then
        kill -TERM "${raylets[@]}" 2>/dev/null || true
        wait_gone 5 "${raylets[@]}" >/dev/null || true
    fi
    kill -TERM "${all[@]}" 2>/dev/null || true
    left="$(wait_gone 5 "${all[@]}" || true)"
    if [[ -n "${left}" ]]; then
        # shellcheck disable=SC2086  # a list of PIDs
        kill -KILL ${left} 2>/dev/null || true
    fi
}

case "${1:-start}" in
    start) start ;;
    env) env_lines ;;
    status) status ;;
    stop) stop ;;
    -h | --help | help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" ;;
    *) die "unknown command '$1' (start | env | status | stop)" ;;
esac
