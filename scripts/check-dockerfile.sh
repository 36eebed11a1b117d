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
#     USER, and ENTRYPOINT is the path the binary was copied to.
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
trap 'rm -rf "$tmp"' EXIT
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

summary
