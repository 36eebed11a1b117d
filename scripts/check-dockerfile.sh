#!/usr/bin/env bash
# check-dockerfile.sh — verify the Dockerfile by construction, without a
# Docker engine (CI has none).
#
# It reads the Dockerfile, runs its `go build` line as a plain command into a
# temporary directory, and checks that:
#   - the build stage uses Go's image at the go.mod minor version;
#   - the build is CGO_ENABLED=0, -trimpath, and stamps main.version;
#   - the binary is static (CGO_ENABLED=0 in its build info, no ELF
#     interpreter, no dynamic section) and `tenantdrift version` prints the
#     injected version;
#   - every file the final stage COPYs from the build context exists, and the
#     config it installs validates as the image would load it;
#   - the final stage is distroless/static :nonroot with a numeric non-root
#     USER, ENTRYPOINT is the path the binary was copied to, and CMD runs
#     the daemon (serve);
#   - the binary started as the image starts it (ENTRYPOINT + CMD, an empty
#     environment but for TENANTDRIFT_CONFIG = the image's config and the
#     secrets), against a throwaway PostgreSQL from `tenantdrift demo --keep`,
#     answers /healthz 200, /readyz 200, /metrics with tenantdrift_leader 1,
#     and exits 0 within 10 s of SIGTERM.
#
# Needs Go and the machine's PostgreSQL server binaries (as `make test` does).
#
# Usage: scripts/check-dockerfile.sh [Dockerfile]   (from anywhere)
# Exit status: 0 when every check passes, 1 otherwise.

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dockerfile="${1:-Dockerfile}"

passes=0
failures=0
pass() { printf 'PASS  %s\n' "$1"; passes=$((passes + 1)); }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND... : PASS when COMMAND succeeds
	local desc="$1"
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}

summary() {
	echo
	if ((failures == 0)); then
		echo "check-dockerfile: PASS (all ${passes} checks)"
		exit 0
	fi
	echo "check-dockerfile: FAIL (${failures} of $((passes + failures)) checks failed)"
	exit 1
}

if [[ ! -f "$dockerfile" ]]; then
	fail "Dockerfile exists at $dockerfile"
	summary
fi

# Instructions, one per line: comments dropped, continuation lines joined,
# runs of blanks squeezed.
instructions="$(
	awk '
		/^[[:space:]]*#/ { next }
		{
			line = $0
			if (sub(/\\[[:space:]]*$/, "", line)) { acc = acc line " "; next }
			acc = acc line
			if (acc ~ /[^[:space:]]/) print acc
			acc = ""
		}
		END { if (acc ~ /[^[:space:]]/) print acc }
	' "$dockerfile" | sed -E 's/[[:space:]]+/ /g; s/^ //; s/ $//'
)"

# Global ARG defaults (before the first FROM), for resolving FROM lines.
declare -A global_args=()
while IFS= read -r line; do
	[[ "$line" =~ ^FROM[[:space:]] ]] && break
	if [[ "$line" =~ ^ARG[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
		global_args["${BASH_REMATCH[1]}"]="${BASH_REMATCH[2]//\"/}"
	fi
done <<<"$instructions"

resolve() { # expand ${NAME} and $NAME from global ARG defaults
	local s="$1" name
	for name in "${!global_args[@]}"; do
		s="${s//\$\{$name\}/${global_args[$name]}}"
		s="${s//\$$name/${global_args[$name]}}"
	done
	printf '%s' "$s"
}

from_lines="$(grep -E '^FROM ' <<<"$instructions" || true)"
stages="$(grep -c . <<<"$from_lines" || true)"
first_from="$(head -n1 <<<"$from_lines")"
final_from="$(tail -n1 <<<"$from_lines")"
# The final stage: everything after the last FROM.
final_stage="$(awk '/^FROM / { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' <<<"$instructions")"

# --- stages and base images -------------------------------------------------

check "multi-stage build (${stages} FROM instructions)" test "${stages:-0}" -ge 2

build_image="$(resolve "$(awk '{ print $2 }' <<<"$first_from")")"
build_stage="$(awk 'toupper($3) == "AS" { print $4 }' <<<"$first_from")"
go_minor="$(awk '$1 == "go" { split($2, v, "."); print v[1] "." v[2] }' go.mod)"
check "build stage image ${build_image} is golang:${go_minor}-* (go.mod says go ${go_minor})" \
	grep -qE "^golang:${go_minor//./\\.}(-|$)" <<<"$build_image"

final_image="$(resolve "$(awk '{ print $2 }' <<<"$final_from")")"
check "final stage image ${final_image} is distroless static, :nonroot" \
	grep -qE '^gcr\.io/distroless/static(-debian[0-9]+)?:nonroot$' <<<"$final_image"

user="$(grep -E '^USER ' <<<"$final_stage" | tail -n1 | awk '{ print $2 }')"
uid="${user%%:*}"
check "final stage USER '${user:-<none>}' is a numeric non-root uid[:gid]" \
	bash -c '[[ "$1" =~ ^[0-9]+(:[0-9]+)?$ ]] && (( ${1%%:*} != 0 ))' _ "$user"

# --- the go build line ------------------------------------------------------

build_run="$(grep -E '^RUN .*go build' <<<"$instructions" || true)"
if [[ -z "$build_run" || "$(grep -c . <<<"$build_run")" -ne 1 ]]; then
	fail "exactly one RUN instruction runs go build"
	summary
fi
pass "exactly one RUN instruction runs go build"
# Drop RUN and any --mount/--network flags; keep the shell command.
build_cmd="$(sed -E 's/^RUN //; s/^(--[a-z]+=[^ ]+ )+//' <<<"$build_run")"
echo "      build command: ${build_cmd}"

check "build sets CGO_ENABLED=0" grep -qE '(^| )CGO_ENABLED=0 ' <<<"$build_cmd"
check "build uses -trimpath" grep -qE ' -trimpath( |$)' <<<"$build_cmd"
check "build injects -X main.version=\${VERSION}" grep -qF -- '-X main.version=${VERSION}' <<<"$build_cmd"
check "build stage declares ARG VERSION" grep -qE '^ARG VERSION(=|$)' <<<"$instructions"

out_path="$(grep -oE ' -o [^ ]+' <<<"$build_cmd" | awk '{ print $2 }')"
if [[ -z "$out_path" ]]; then
	fail "go build names its output with -o"
	summary
fi

# The binary's destination in the final stage: COPY --from=<build stage> <out_path> <dest>.
copy_bin="$(grep -E "^COPY .*--from=(${build_stage:-build}|0) " <<<"$final_stage" | grep -F " ${out_path} " | head -n1 || true)"
bin_dest="$(awk '{ print $NF }' <<<"$copy_bin")"
check "final stage copies ${out_path} from stage ${build_stage:-0} (to ${bin_dest:-nowhere})" test -n "$copy_bin"

entrypoint="$(grep -E '^ENTRYPOINT ' <<<"$final_stage" | tail -n1 | sed -E 's/^ENTRYPOINT //')"
entry0="$(sed -nE 's/^\[ *"([^"]+)".*$/\1/p' <<<"$entrypoint")"
check "ENTRYPOINT is exec form and runs ${bin_dest:-the copied binary} (got ${entrypoint:-none})" \
	test -n "$bin_dest" -a "$entry0" = "$bin_dest"

exec_form() { # exec_form '["a", "b"]': one element a line; fails unless exec (JSON) form
	[[ "$1" =~ ^\[.*\]$ ]] || return 1
	grep -oE '"([^"\\]|\\.)*"' <<<"$1" | sed -E 's/^"//; s/"$//'
}
cmd_line="$(grep -E '^CMD ' <<<"$final_stage" | tail -n1 | sed -E 's/^CMD //')"
entry_args=()
cmd_args=()
if exec_form "$entrypoint" >/dev/null; then mapfile -t entry_args < <(exec_form "$entrypoint"); fi
if exec_form "$cmd_line" >/dev/null; then mapfile -t cmd_args < <(exec_form "$cmd_line"); fi
check "CMD is exec form and runs the daemon, serve (got ${cmd_line:-none})" \
	test "${cmd_args[0]:-}" = serve

# --- files copied from the build context ------------------------------------

context_copies="$(grep -E '^COPY ' <<<"$final_stage" | grep -v -- '--from=' || true)"
config_dest=""
config_src=""
while IFS= read -r copy; do
	[[ -z "$copy" ]] && continue
	read -r -a words <<<"${copy#COPY }"
	words=("${words[@]/#--*/}") # drop --chown= etc.
	read -r -a words <<<"${words[*]}"
	dest="${words[-1]}"
	for src in "${words[@]:0:${#words[@]}-1}"; do
		if [[ -e "$src" ]]; then
			pass "COPY source ${src} exists"
		else
			fail "COPY source ${src} exists (the image build would fail)"
		fi
		case "$src" in *.yaml | *.yml) config_src="$src" config_dest="$dest" ;; esac
	done
done <<<"$context_copies"

env_config="$(sed -nE 's/^ENV TENANTDRIFT_CONFIG[= ]"?([^" ]+)"?.*$/\1/p' <<<"$final_stage" | tail -n1)"
check "ENV TENANTDRIFT_CONFIG (${env_config:-unset}) is the copied config (${config_dest:-none})" \
	test -n "$env_config" -a "$env_config" = "$config_dest"

# --- build it and inspect the binary ----------------------------------------

tmp="$(mktemp -d)"
serve_pid=""   # the daemon the smoke test starts
stop_cluster="" # the demo cluster's stop command, once it runs
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if [[ -n "$serve_pid" ]] && kill -0 "$serve_pid" 2>/dev/null; then
		kill -KILL "$serve_pid" 2>/dev/null || true
	fi
	if [[ -n "$stop_cluster" ]] && ! bash -c "$stop_cluster" >/dev/null 2>&1; then
		echo "      could not stop the demo cluster; run: $stop_cluster"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
version="check-dockerfile-$$"
local_cmd="${build_cmd//"-o ${out_path}"/-o ${tmp}/tenantdrift}"

echo "      running: VERSION=${version} ${local_cmd}"
# GOFLAGS=-buildvcs=false: the image's build context has no .git (see
# .dockerignore), so the container build stamps no VCS info either.
if (export VERSION="$version" GOFLAGS=-buildvcs=false && bash -euo pipefail -c "$local_cmd") >"$tmp/build.log" 2>&1; then
	pass "the Dockerfile's go build succeeds as a plain command"
else
	cat "$tmp/build.log"
	fail "the Dockerfile's go build succeeds as a plain command"
	summary
fi
binary="$tmp/tenantdrift"

buildinfo="$(go version -m "$binary")"
check "build info records CGO_ENABLED=0" grep -qP '^\s+build\s+CGO_ENABLED=0$' <<<"$buildinfo"
check "build info records -trimpath" grep -qP '^\s+build\s+-trimpath=true$' <<<"$buildinfo"

if command -v readelf >/dev/null 2>&1; then
	check "ELF has no INTERP program header (not dynamically linked)" \
		bash -c '! readelf -lW "$1" | grep -q "INTERP"' _ "$binary"
	check "ELF has no dynamic section" \
		bash -c 'readelf -d "$1" 2>&1 | grep -q "no dynamic section"' _ "$binary"
else
	echo "      readelf not found; static linkage judged from build info alone"
fi

got_version="$("$binary" version 2>&1 || true)"
check "'tenantdrift version' prints the injected version (got: ${got_version})" \
	grep -qF "$version" <<<"$got_version"

if [[ -n "$config_src" && -e "$config_src" ]]; then
	# As in the image: an empty environment but for the ENV line.
	if env -i TENANTDRIFT_CONFIG="$root/$config_src" "$binary" validate >"$tmp/validate.log" 2>&1; then
		pass "the image's config (${config_src}) passes 'tenantdrift validate'"
	else
		cat "$tmp/validate.log"
		fail "the image's config (${config_src}) passes 'tenantdrift validate'"
	fi
fi

# --- run it as the image would ----------------------------------------------
#
# ENTRYPOINT + CMD, in an empty environment but for what a deployment sets:
# TENANTDRIFT_CONFIG (the config the image installs), the landlord DSN and
# APP_KEY (secrets, from env), and TENANTDRIFT_LISTEN. The landlord is a
# throwaway PostgreSQL with a drifted registry, from `tenantdrift demo
# --keep`. The listen port is 127.0.0.1:0, read back from the "serving" log
# line: a free port without a race.

if [[ -z "$config_src" || ! -e "$config_src" || ${#entry_args[@]} -eq 0 || ${#cmd_args[@]} -eq 0 ]]; then
	fail "the image's ENTRYPOINT, CMD and config are known, to start the binary as the image does"
	summary
fi
image_args=("${entry_args[@]:1}" "${cmd_args[@]}")

echo "      starting a throwaway PostgreSQL: go run ./cmd/tenantdrift demo --keep --tenants 20"
if ! go run ./cmd/tenantdrift demo --keep --tenants 20 --format json >"$tmp/demo.json" 2>"$tmp/demo.log"; then
	cat "$tmp/demo.log"
	fail "tenantdrift demo --keep starts a throwaway PostgreSQL (needs the PostgreSQL server binaries)"
	summary
fi
# demo --keep prints to stderr:  psql "DSN", APP_KEY=..., and after "Stop and
# remove it with:" the command that does.
stop_cluster="$(sed -n '/^Stop and remove it with:$/{n;s/^  //;p;q;}' "$tmp/demo.log")"
landlord_dsn="$(sed -nE 's/^  psql "(.*)"$/\1/p' "$tmp/demo.log" | head -n1)"
app_key="$(sed -nE 's/^  APP_KEY=([^ ]+) .*$/\1/p' "$tmp/demo.log" | head -n1)"
if [[ -z "$stop_cluster" || -z "$landlord_dsn" || -z "$app_key" ]]; then
	cat "$tmp/demo.log"
	fail "demo --keep printed the landlord DSN, APP_KEY and stop command"
	summary
fi
pass "demo --keep started a throwaway landlord"

echo "      running: $bin_dest ${image_args[*]}  (as ${binary})"
env -i \
	TENANTDRIFT_CONFIG="$root/$config_src" \
	TENANTDRIFT_LANDLORD_DSN="$landlord_dsn" \
	APP_KEY="$app_key" \
	TENANTDRIFT_LISTEN=127.0.0.1:0 \
	"$binary" "${image_args[@]}" >"$tmp/serve.out" 2>"$tmp/serve.log" &
serve_pid=$!

addr=""
for _ in $(seq 1 150); do # up to 15 s
	addr="$(sed -nE 's/.*msg=serving addr=([0-9.]+:[0-9]+).*/\1/p' "$tmp/serve.log" | head -n1)"
	[[ -n "$addr" ]] && break
	kill -0 "$serve_pid" 2>/dev/null || break
	sleep 0.1
done
if [[ -z "$addr" ]]; then
	if ! kill -0 "$serve_pid" 2>/dev/null; then
		serve_rc=0
		wait "$serve_pid" || serve_rc=$?
		echo "      it exited with status ${serve_rc}"
	fi
	tail -n 20 "$tmp/serve.log" "$tmp/serve.out"
	fail "the image's command starts and listens (TENANTDRIFT_LISTEN=127.0.0.1:0)"
	summary
fi
pass "the image's command (${image_args[*]}) listens on ${addr}"

http_status=""
# shellcheck disable=SC2317 # called through report
http_get() { # http_get PATH: sets http_status, body in $tmp/body. No curl needed.
	http_status=""
	: >"$tmp/body"
	# HTTP/1.0: the server closes the connection after its response.
	timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$1" >&3
		cat <&3' _ "$addr" "$1" >"$tmp/response" 2>/dev/null || return 1
	http_status="$(head -n1 "$tmp/response" | awk '{ print $2 }')"
	sed '1,/^\r\{0,1\}$/d' "$tmp/response" >"$tmp/body"
}
# shellcheck disable=SC2317 # called through report
wait_for() { # wait_for SECONDS PATH STATUS [BODY_REGEX]: poll until it answers so
	local deadline=$((SECONDS + $1))
	while ((SECONDS < deadline)); do
		if http_get "$2" && [[ "$http_status" == "$3" ]] &&
			{ [[ -z "${4:-}" ]] || grep -qE "$4" "$tmp/body"; }; then
			return 0
		fi
		kill -0 "$serve_pid" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
report() { # report DESCRIPTION: PASS, or FAIL with the last answer and the log
	if "${@:2}"; then
		pass "$1"
	else
		fail "$1 (last answer: ${http_status:-none} $(head -c 300 "$tmp/body" | tr '\n' ' '))"
		tail -n 20 "$tmp/serve.log"
	fi
}
report "/healthz answers 200" wait_for 10 /healthz 200
report "/readyz answers 200 (state store migrated, checks on schedule)" wait_for 30 /readyz 200
report "/metrics shows tenantdrift_leader 1 (this replica took the lock)" \
	wait_for 30 /metrics 200 '^tenantdrift_leader 1$'

kill -TERM "$serve_pid"
started=$SECONDS
for _ in $(seq 1 100); do # up to 10 s
	kill -0 "$serve_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$serve_pid" 2>/dev/null; then
	kill -KILL "$serve_pid" 2>/dev/null || true
	wait "$serve_pid" 2>/dev/null || true
	tail -n 20 "$tmp/serve.log"
	fail "SIGTERM: the daemon exits within 10 s (killed after 10 s)"
else
	serve_rc=0
	wait "$serve_pid" || serve_rc=$?
	if ((serve_rc == 0)); then
		pass "SIGTERM: the daemon exits 0 within 10 s (took ~$((SECONDS - started)) s)"
	else
		tail -n 20 "$tmp/serve.log"
		fail "SIGTERM: the daemon exits 0 within 10 s (exit ${serve_rc})"
	fi
fi
serve_pid=""

if bash -c "$stop_cluster" >"$tmp/stop.log" 2>&1; then
	pass "the demo cluster is stopped and removed"
else
	cat "$tmp/stop.log"
	fail "the demo cluster is stopped and removed ($stop_cluster)"
fi
stop_cluster=""

summary
